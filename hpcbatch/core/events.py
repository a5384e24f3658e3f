"""Events: everything that can change the head's state, as frozen values.

Every event carries ``cause`` (the id that follows it into commands, log lines and the journal,
so ``hpcbatch describe --history`` can tell a job's story) and ``now`` (epoch ms: the core never
reads a clock). API events are validated for shape before they get here; ``step`` checks them
against the state and raises ``ClientError`` *before* changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpcbatch.core.model import (
    Caller,
    Dependency,
    Gpu,
    JobSpec,
    MultiNodeSpec,
    Resources,
    RetryStrategy,
    TimeLimitAction,
)
from hpcbatch.core.plan import Plan
from hpcbatch.core.pool_fit import PoolHost
from hpcbatch.core.shares import ShareWeight


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    cause: str
    now: int


# --- resources (API) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateComputeEnvironment(Event):
    name: str
    ce_type: str
    kind: str
    state: str = "ENABLED"
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    max_vcpus: int | None = None  # None: its nodes come from the head's config
    min_vcpus: int = 0
    desired_vcpus: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateComputeEnvironment(Event):
    ref: str
    state: str | None = None
    echo: dict[str, Any] = field(default_factory=dict)
    max_vcpus: int | None = None  # None here: unchanged
    min_vcpus: int | None = None
    desired_vcpus: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteComputeEnvironment(Event):
    ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateJobQueue(Event):
    name: str
    priority: int
    ce_order: tuple[tuple[int, str], ...]
    state: str = "ENABLED"
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    time_limit_actions: tuple[TimeLimitAction, ...] = ()
    policy_arn: str | None = None  # schedulingPolicyArn: a fair-share queue; None: FIFO


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateJobQueue(Event):
    ref: str
    priority: int | None = None
    state: str | None = None
    ce_order: tuple[tuple[int, str], ...] | None = None
    time_limit_actions: tuple[TimeLimitAction, ...] | None = None  # None: keep; (): clear
    echo: dict[str, Any] = field(default_factory=dict)
    policy_arn: str | None = None  # None: keep (a fair-share queue's policy can be replaced)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteJobQueue(Event):
    ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSchedulingPolicy(Event):
    """Exactly one kind: ``fairshare`` True (a ``fairsharePolicy``: the decay, reservation and
    shares) or ``quota_strategy`` set (a ``quotaSharePolicy``'s
    ``idleResourceAssignmentStrategy``)."""

    name: str
    decay_s: int = 0
    reservation: int = 0
    shares: tuple[ShareWeight, ...] = ()
    fairshare: bool = True
    quota_strategy: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSchedulingPolicy(Event):
    """Replaces the whole ``fairsharePolicy`` when ``fairshare`` is True, as AWS does, or the
    ``quotaSharePolicy`` when ``quota_strategy`` is set (neither: nothing changes)."""

    arn: str
    decay_s: int = 0
    reservation: int = 0
    shares: tuple[ShareWeight, ...] = ()
    fairshare: bool = True
    quota_strategy: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSchedulingPolicy(Event):
    arn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterJobDefinition(Event):
    name: str
    def_type: str
    spec: JobSpec
    parameters: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    multinode: MultiNodeSpec | None = None  # required when def_type is multinode
    caller: Caller | None = None  # None: no identity (the core's own tests); see core/owners.py


@dataclass(frozen=True, slots=True, kw_only=True)
class DeregisterJobDefinition(Event):
    ref: str
    caller: Caller | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TagResource(Event):
    arn: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class UntagResource(Event):
    arn: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateConsumableResource(Event):
    name: str
    total: int
    resource_type: str = "REPLENISHABLE"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateConsumableResource(Event):
    """``operation`` SET | ADD | REMOVE ``quantity`` of the total; a ``client_token`` seen with
    the same operation and quantity in the last 8 hours makes the update happen once."""

    ref: str
    operation: str
    quantity: int
    client_token: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteConsumableResource(Event):
    ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateQuotaShare(Event):
    name: str
    queue: str
    limits: tuple[tuple[str, int], ...]  # (capacityUnit, maxCapacity) as given
    strategy: str
    borrow_limit: int | None = None
    in_share_preemption: bool = False
    state: str = "ENABLED"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateQuotaShare(Event):
    """None: keep. ``sharing`` replaces strategy and borrowLimit together, as AWS's
    resourceSharingConfiguration structure does."""

    ref: str
    limits: tuple[tuple[str, int], ...] | None = None
    sharing: tuple[str, int | None] | None = None
    in_share_preemption: bool | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteQuotaShare(Event):
    ref: str


# --- jobs (API) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRangeOverride:
    """SubmitJob ``nodeOverrides.nodePropertyOverrides[i]``: ``targetNodes`` parsed by the API
    into ``first``/``last`` (inclusive; None = open end: "4:" is (4, None), ":3" (None, 3)),
    and what replaces the definition's for those nodes (None: keep it)."""

    first: int | None
    last: int | None
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()  # merged over the range's
    cpu_milli: int | None = None
    memory_mib: int | None = None
    gpus: int | None = None
    # consumableResourcePropertiesOverride: (name or ARN, quantity) per node, merged by resource
    consumables: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class NodeOverrides:
    """SubmitJob ``nodeOverrides``: a new node count and per-range overrides."""

    num_nodes: int | None = None
    ranges: tuple[NodeRangeOverride, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitJob(Event):
    """``job_id`` is made by the head (UUIDs are random; the core takes no randomness)."""

    job_id: str
    name: str
    queue: str
    definition: str
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    cpu_milli: int | None = None  # each replaces the definition's where given
    memory_mib: int | None = None
    gpus: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    array_size: int | None = None
    depends_on: tuple[Dependency, ...] = ()
    retry: RetryStrategy | None = None
    timeout_s: int | None = None
    priority: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)
    strict: bool = False
    node_overrides: NodeOverrides | None = None  # only for a multinode definition
    workdir: str | None = None  # where it runs (core/workdir.py); None: a per-attempt dir
    # consumableResourcePropertiesOverride: (name or ARN, quantity), merged over the definition's
    consumables: tuple[tuple[str, int], ...] = ()
    caller: Caller | None = None  # who submits: the job's owner and the user it runs as
    # AWS shareIdentifier: the quota share it joins on a queue with quota shares, its fair share
    # (required there) on a fair-share queue
    share_identifier: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelJob(Event):
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateJob(Event):
    job_id: str
    reason: str


# --- nodes (agents and admins) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeJoined(Event):
    """An agent said hello: its capacity, and what it knows of attempts (for reconciliation).
    Ids come from the agent: ones that are no attempt id, or name another node's attempts,
    are ignored."""

    node: str
    ce: str
    capacity: Resources  # its gpus count is the core's: len(node.gpus) after the join
    gpus: tuple[Gpu, ...] = ()  # what the agent offers now: it replaces the node's inventory
    gpus_reason: str | None = None  # the agent's word on its inventory (nvidia-smi failed ...)
    gpu_isolation: str = "env"  # "devices" | "env"
    gpu_isolation_reason: str | None = None
    enforcement: str = "none"
    address: str | None = None  # the host's address: an SSH host's, 127.0.0.(i+2) for LOCAL
    launch_port: int | None = None  # the agent's launch server port (hello node.launch_port)
    placement_group: str | None = None  # the node's placement-group label (head config)
    fabric_environment: tuple[tuple[str, str], ...] = ()  # its CE's fabric (head config)
    machine: str | None = None  # the machine it shares with other nodes (a LOCAL node: the head's)
    machine_capacity: Resources | None = None  # that machine's CPUs and memory, as measured
    known_attempts: tuple[str, ...] = ()
    running_attempts: tuple[str, ...] = ()  # the known ones whose process still runs


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolHostsKnown(Event):
    """The head's host pools and what it knows of their hosts' sizes (config, else measured):
    said at its start and whenever a pool host's measured size changes (core/pool_fit.py)."""

    pools: tuple[tuple[str, tuple[PoolHost, ...]], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHeartbeat(Event):
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeGpusChanged(Event):
    """A running agent's later look at its GPUs (a periodic nvidia-smi) differs from the last:
    a GPU missing from ``gpus`` goes out of service with a reason, one back in it returns to
    service, and ``reason`` replaces the node's word on its inventory."""

    node: str
    gpus: tuple[Gpu, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDown(Event):
    """A node stopped answering: nothing new goes there, but its attempts are held — they may
    still be running — until it comes back (results collected) or is declared lost."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLost(Event):
    """A node is gone: DOWN, and its attempts end as ``Host lost`` (retried per their
    strategy). ``ce`` lets a node that never connected (a wrong key, an unknown host
    key, an unreachable address) appear DOWN with its reason, with no capacity."""

    node: str
    reason: str
    ce: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainNode(Event):
    node: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeNode(Event):
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetireNode(Event):
    """A node leaves for good once its running attempts end (core/retire.py): drained now,
    removed when empty. ``reason`` says why (e.g. its host left the head's config)."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepNode(Event):
    """A retiring node stays after all (its host is back in the head's config): ONLINE again."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveNode(Event):
    """A node leaves the state and so its compute environment; refused while it holds
    attempts, so no job is ever lost to a removal."""

    node: str
    reason: str


# --- attempts (agents) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptStarted(Event):
    """``node`` is the node whose agent reported it: a node speaks only for attempts it holds."""

    node: str
    attempt_id: str
    started_at: int
    pid: int | None = None
    log_stream: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptQueued(Event):
    """The attempt waits in another scheduler (a SLURM compute environment's), which says why
    in ``reason``: the job stays STARTING and shows it. ``node`` as for AttemptStarted."""

    node: str
    attempt_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptEnded(Event):
    """The attempt's process ended, or never started (``started_at`` None, with a reason).
    ``node`` is the node whose agent reported it, as for AttemptStarted."""

    node: str
    attempt_id: str
    stopped_at: int
    exit_code: int | None
    reason: str | None = None
    started_at: int | None = None
    # An attempt that started and ended within one agent turn is reported once, by its end:
    # then these say what its start would have (see AttemptStarted).
    pid: int | None = None
    log_stream: str | None = None


# --- the head's own ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Event):
    """Time passed: head-side timeout backstop, and (when ``retention_ms`` is given) forgetting
    jobs finished longer ago than that."""

    retention_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanApplied(Event):
    """The loop applies a scheduling pass; each placement is checked again before it starts."""

    plan: Plan


# --- API users and their access keys (core/users.py) -------------------------------------------
# Key ids and secrets are made by the head (random); the core only records them.


@dataclass(frozen=True, slots=True, kw_only=True)
class AddUser(Event):
    name: str
    unix_user: str
    key_id: str
    secret: str
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddAccessKey(Event):
    user: str
    key_id: str
    secret: str
    disable_others: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SetAccessKeyActive(Event):
    user: str
    key_id: str
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveUser(Event):
    name: str
