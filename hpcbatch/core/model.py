"""The vocabulary of the scheduling core.

- **compute environment** (CE): a named pool of nodes of one kind (LOCAL or SSH; SLURM later).
- **node**: one agent's host (or virtual host) with a capacity: milli-vCPUs, MiB and GPUs.
- **GPU id**: what names one GPU everywhere (allocations, ``CUDA_VISIBLE_DEVICES``): its UUID
  (``GPU-...``) when its node knows it, else its index as a string (``"0"``).
- **job queue**: a priority-ordered list of RUNNABLE jobs that draws on up to 3 CEs in order.
- **job definition**: a named, revisioned template for jobs (``name:revision``).
- **job**: one unit of work; an *array parent* owns ``size`` children ``<parent>:<index>``.
- **attempt**: one try of a job on a node; a retry is a new attempt. ``attempt_id`` is
  ``<jobId>/<n>`` and is what agents know a process by.
- **allocation**: the resources one attempt holds on one node while STARTING or RUNNING.

Resources are integers: vCPUs in thousandths (``cpu_milli``) so fractions never drift, memory in
MiB, GPUs by id. Times are integer epoch milliseconds, always passed in, never read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})
ACTIVE = frozenset({JobStatus.STARTING, JobStatus.RUNNING})


class NodeState(StrEnum):
    ONLINE = "ONLINE"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"
    DOWN = "DOWN"


# An enum member read through its class costs ~0.1 µs on Python 3.11 (a plain attribute's
# third): the hot paths that run per node per pass or per status change read these instead.
_ONLINE = NodeState.ONLINE
RUNNABLE = JobStatus.RUNNABLE


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_milli: int = 0
    memory_mib: int = 0
    gpus: int = 0

    def fits_in(self, other: Resources) -> bool:
        return (
            self.cpu_milli <= other.cpu_milli
            and self.memory_mib <= other.memory_mib
            and self.gpus <= other.gpus
        )

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.memory_mib + other.memory_mib,
            self.gpus + other.gpus,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.memory_mib - other.memory_mib,
            self.gpus - other.gpus,
        )

    def describe(self) -> str:
        parts = [vcpus_text(self.cpu_milli), f"{self.memory_mib} MiB"]
        if self.gpus:
            parts.append(plural(self.gpus, "GPU"))
        return ", ".join(parts)


def plural(count: int, noun: str) -> str:
    """``1 GPU``, ``2 GPUs``, ``0 GPUs``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def vcpus_text(cpu_milli: int) -> str:
    """``1 vCPU``, ``0.5 vCPUs``, ``2 vCPUs``."""
    return f"{format_vcpus(cpu_milli)} vCPU" + ("" if cpu_milli == 1000 else "s")


def format_vcpus(cpu_milli: int) -> str:
    whole, frac = divmod(cpu_milli, 1000)
    return str(whole) if frac == 0 else f"{cpu_milli / 1000:g}"


DEFAULT_RESOURCES = Resources(cpu_milli=1000, memory_mib=512, gpus=0)


@dataclass(frozen=True, slots=True)
class RetryRule:
    action: str  # RETRY | EXIT
    on_exit_code: str | None = None
    on_reason: str | None = None
    on_status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RetryStrategy:
    attempts: int = 1
    rules: tuple[RetryRule, ...] = ()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job runs and needs, after definition + overrides + parameters are merged."""

    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()
    resources: Resources = DEFAULT_RESOURCES
    retry: RetryStrategy = RetryStrategy()
    timeout_s: int | None = None
    priority: int = 0
    user: str | None = None  # run as this user on the node (AWS containerProperties.user)
    # where the job starts on its node (an absolute path: core/workdir.py); None: a private
    # per-attempt directory. Set by the submission only, never by a definition.
    workdir: str | None = None
    # consumable resources each attempt takes (core/consumables.py): (resource name, quantity),
    # names resolved and each named once
    consumables: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class NodeRange:
    """Nodes ``first``..``last`` (inclusive) of a multi-node parallel job, and what each of
    them runs and needs (AWS ``nodeRangeProperties[i]``, ``targetNodes`` resolved)."""

    first: int
    last: int
    spec: JobSpec
    open_end: bool = False  # targetNodes "a:" or ":": ``last`` follows a numNodes override


@dataclass(frozen=True, slots=True)
class MultiNodeSpec:
    """A multi-node parallel (MNP) job's shape: ``num_nodes`` nodes, indexes 0..num_nodes-1,
    ``main_node`` among them, and ``ranges`` an exact partition of those indexes in node
    order (every node in exactly one range)."""

    num_nodes: int
    main_node: int
    ranges: tuple[NodeRange, ...]

    def spec_of(self, index: int) -> JobSpec:
        for node_range in self.ranges:
            if node_range.first <= index <= node_range.last:
                return node_range.spec
        raise IndexError(f"node {index} is in no range of a {self.num_nodes}-node job")


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU a node offers, as its agent reported it (nvidia-smi, or the host's config)."""

    id: str  # the UUID when known, else str(index): see the module's vocabulary
    index: int  # nvidia-smi's index on its host (PCI bus order)
    model: str | None = None
    memory_mib: int | None = None


@dataclass(slots=True)
class Node:
    """``gpus`` lists every GPU the node is known to have, in service or not (so
    ``capacity.gpus == len(gpus)``); ``gpus_out`` says why each out-of-service one is out;
    ``free_gpus`` are the ids in service that no attempt holds."""

    name: str
    ce: str
    capacity: Resources
    gpus: tuple[Gpu, ...] = ()
    gpus_out: dict[str, str] = field(default_factory=dict)  # GPU id -> why it is out of service
    gpus_reason: str | None = None  # the agent's word on its GPU inventory (nvidia-smi failed...)
    gpu_isolation: str = "env"  # "devices": the job's cgroup denies other GPUs; "env": variables
    gpu_isolation_reason: str | None = None
    state: NodeState = NodeState.ONLINE
    state_reason: str = ""
    state_changed_at: int = 0
    last_heartbeat: int | None = None
    enforcement: str = "none"
    address: str | None = None  # where other nodes reach it (MPI's main node address)
    launch_port: int | None = None  # its agent's MPI launch server (None: it runs none)
    placement_group: str | None = None  # from the config: gangs are kept inside one group
    fabric_env: tuple[tuple[str, str], ...] = ()  # its CE's fabric variables, for gangs
    retiring: str | None = None  # why it is leaving for good (core/retire.py); None: it stays
    machine: str | None = None  # the machine it shares with other nodes (core/shared_capacity)
    machine_capacity: Resources | None = None  # that machine's CPUs and memory
    allocated: Resources = Resources()
    free_gpus: set[str] = field(default_factory=set)
    attempts: set[str] = field(default_factory=set)  # attempt ids holding an allocation here
    # ``free``'s last answer and what it was computed from (Resources are immutable, so an
    # unchanged node is recognised by identity): a pass reads every node's free room, and on
    # 1,000 nodes building a new Resources for each was a third of a pass.
    _free: tuple[Resources, Resources, int, Resources] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def free(self) -> Resources:
        """What is left: a GPU out of service is neither held nor free."""
        c, a, gpus = self.capacity, self.allocated, len(self.free_gpus)
        known = self._free
        if known is not None and known[0] is c and known[1] is a and known[2] == gpus:
            return known[3]
        free = Resources(c.cpu_milli - a.cpu_milli, c.memory_mib - a.memory_mib, gpus)
        self._free = (c, a, gpus, free)
        return free

    @property
    def gpus_in_service(self) -> set[str]:
        return {gpu.id for gpu in self.gpus if gpu.id not in self.gpus_out}

    @property
    def schedulable(self) -> bool:
        return self.state is _ONLINE


@dataclass(slots=True)
class ComputeEnvironment:
    name: str
    arn: str
    ce_type: str  # MANAGED | UNMANAGED (AWS's); kind holds hpcbatch's
    kind: str  # LOCAL | SSH | SLURM
    state: str  # ENABLED | DISABLED
    seq: int
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "VALID"
    # The vCPU bounds of a CE made through the API (core/ce_capacity.py sizes its nodes from
    # them); ``max_vcpus`` None: its nodes come from the head's config (the embedded ``local``
    # CE, the SSH CEs of ``[[compute_environments]]``) and these bounds mean nothing.
    max_vcpus: int | None = None
    min_vcpus: int = 0
    desired_vcpus: int | None = None


@dataclass(frozen=True, slots=True)
class TimeLimitAction:
    """AWS's ``jobStateTimeLimitAction``: CANCEL a job RUNNABLE for longer than
    ``max_time_s`` whose explained reason starts with ``reason`` (see ``core/time_limits.py``)."""

    reason: str
    max_time_s: int
    state: str = "RUNNABLE"
    action: str = "CANCEL"


@dataclass(slots=True)
class JobQueue:
    name: str
    arn: str
    priority: int
    state: str
    ce_order: tuple[str, ...]  # CE names, by ascending ``order``
    seq: int
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "VALID"
    time_limit_actions: tuple[TimeLimitAction, ...] = ()
    policy: str | None = None  # its fair-share scheduling policy; None: not a fair-share queue
    quota_policy: str | None = None  # its quota-share scheduling policy (never with ``policy``)


QUOTA_UNITS = ("VCPU", "GPU", "MEMORY_MIB")  # capacityUnit values hpcbatch understands


@dataclass(slots=True)
class QuotaShare:
    """A quota share of a job queue (core/quota_shares.py): up to ``limits[unit]`` of each unit
    for its running jobs without borrowing (a unit it does not name is not limited by it);
    ``strategy`` RESERVE | LEND | LEND_AND_BORROW; ``borrow_limit`` a percentage of its own
    limits, -1 unlimited. Keyed ``<queue>/<name>`` in ``State.quota_shares``."""

    name: str
    queue: str
    arn: str
    limits: dict[str, int]  # capacityUnit -> maxCapacity (vCPUs, GPUs, MiB)
    strategy: str
    borrow_limit: int
    in_share_preemption: bool
    state: str  # ENABLED | DISABLED
    seq: int
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "VALID"

    @property
    def key(self) -> str:
        return f"{self.queue}/{self.name}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made an API request, as the head established it (docs/security.md): ``user`` is a
    Unix user name; ``admin`` is root or a member of the head's admin group."""

    user: str
    admin: bool


@dataclass(slots=True)
class AccessKey:
    key_id: str
    secret: str  # SigV4 needs the secret itself; it never leaves the store and the head
    active: bool
    created_at: int


@dataclass(slots=True)
class User:
    """An API user the head issued access keys to; requests signed with a key act as
    ``unix_user``. ``keys`` in the order they were made."""

    name: str
    unix_user: str
    created_at: int
    created_by: str
    keys: dict[str, AccessKey] = field(default_factory=dict)


@dataclass(slots=True)
class JobDefinition:
    name: str
    revision: int
    arn: str
    def_type: str  # container | multinode
    spec: JobSpec  # multinode: the job-level fields (retry, timeout, priority); no command
    parameters: dict[str, str]
    status: str = "ACTIVE"
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    multinode: MultiNodeSpec | None = None  # set when def_type is multinode
    owner: str | None = None  # the Unix user who registered it (None: before identities)


@dataclass(slots=True)
class Attempt:
    number: int
    node: str
    cpu_milli: int
    memory_mib: int
    gpus: tuple[str, ...]  # GPU ids
    started_at: int | None = None
    # when the scheduler placed it (RUNNABLE -> STARTING): AWS's JobSummary.scheduledAt;
    # None for attempts stored before it was kept
    scheduled_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_stream: str | None = None
    pid: int | None = None

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_milli, self.memory_mib, len(self.gpus))


@dataclass(frozen=True, slots=True)
class Dependency:
    job_id: str | None
    dep_type: str | None = None  # N_TO_N | SEQUENTIAL | None


@dataclass(slots=True)
class Job:
    job_id: str
    name: str
    queue: str
    definition_arn: str
    seq: int
    created_at: int
    spec: JobSpec
    status: JobStatus = JobStatus.SUBMITTED
    status_reason: str | None = None
    depends_on: tuple[Dependency, ...] = ()
    waiting_on: set[str] = field(default_factory=set)
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)
    array_size: int | None = None  # set on an array parent
    parent_id: str | None = None  # set on an array child and on a node of a multi-node job
    array_index: int | None = None
    multinode: MultiNodeSpec | None = None  # set on a multi-node parent (overrides applied)
    node_index: int | None = None  # set on a node ``<parent>#<index>`` of a multi-node job
    attempts: list[Attempt] = field(default_factory=list)
    started_at: int | None = None
    stopped_at: int | None = None
    is_cancelled: bool = False
    is_terminated: bool = False
    start_reason: str | None = None
    kill_reason: str | None = None  # set while a kill is in flight
    # the Unix user who submitted it (children and nodes: their parent's); None: a job stored
    # before the head knew its callers. Only the owner and admins cancel it or read its logs.
    owner: str | None = None
    # its shareIdentifier: the quota share it runs under on a queue with quota shares, its fair
    # share on a fair-share queue (children and nodes: their parent's); None: neither
    share: str | None = None

    @property
    def is_array_parent(self) -> bool:
        return self.array_size is not None

    @property
    def current(self) -> Attempt | None:
        if self.status in ACTIVE and self.attempts:
            return self.attempts[-1]
        return None


def array_child(parent: Job, index: int, created_at: int) -> Job:
    """Child ``index`` of array ``parent`` as it is born (its status and what it waits on are
    the submitter's to set): one definition for ``submit`` and for ``codec``, which rebuilds
    the children that were never stored."""
    return Job(
        job_id=f"{parent.job_id}:{index}",
        name=parent.name,
        queue=parent.queue,
        definition_arn=parent.definition_arn,
        seq=parent.seq,
        created_at=created_at,
        spec=parent.spec,
        parent_id=parent.job_id,
        array_index=index,
        owner=parent.owner,
        share=parent.share,
    )


def node_job_id(parent_id: str, index: int) -> str:
    """A multi-node job's node ``index`` is the job ``<parent>#<index>``, as AWS names them."""
    return f"{parent_id}#{index}"


def attempt_id(job_id: str, number: int) -> str:
    return f"{job_id}/{number}"


# Job ids are UUIDs, ``<parent>:<index>`` for array children, ``<parent>#<index>`` for the
# nodes of a multi-node job; numbers count from 1. ASCII only:
# ``int`` would also take " 1", "+1", "1_0" and other scripts' digits.
ATTEMPT_ID_RE = re.compile(
    r"(?P<job>[A-Za-z0-9][A-Za-z0-9:#._-]{0,299})/(?P<number>[1-9][0-9]{0,8})"
)


def parse_attempt_id(value: object) -> tuple[str, int] | None:
    """``(job id, number)`` of an attempt id an agent sent, or None when it is no attempt id."""
    if not isinstance(value, str):
        return None
    match = ATTEMPT_ID_RE.fullmatch(value)
    return (match["job"], int(match["number"])) if match else None


REPLENISHABLE = "REPLENISHABLE"
NON_REPLENISHABLE = "NON_REPLENISHABLE"


@dataclass(slots=True)
class ConsumableResource:
    """A named count of something outside the nodes (licenses, tokens): AWS's consumable
    resource, Slurm's license. A job's attempt takes ``quantity`` of it from STARTING on.

    ``total``: what exists now. A REPLENISHABLE resource's units come back when the attempt
    ends; a NON_REPLENISHABLE one's are used up at the start: ``total`` drops for good.
    ``in_use``: the REPLENISHABLE units held by live attempts (derived from them when the state
    is loaded, never stored). ``tokens``: recent UpdateConsumableResource client tokens ->
    ``[operation, quantity, epoch ms]``, so a repeated update happens once."""

    name: str
    arn: str
    total: int
    resource_type: str  # REPLENISHABLE | NON_REPLENISHABLE
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)
    in_use: int = 0
    tokens: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def available(self) -> int:
        return self.total - self.in_use
