"""The protocol's vocabulary as types and constants: its version, the attempt states, the
shapes of a message's parts (TypedDicts) and ``MessageError``. protocol.py re-exports every
name here and holds the codec, the checks and the builders (see its docstring for the
vocabulary in prose). Standard library only.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

PROTOCOL_VERSION = 1
AGENT_VERSION = "0.1.0"

RUNNING = "RUNNING"
EXITED = "EXITED"
FAILED_TO_START = "FAILED_TO_START"
# handed to another scheduler (a SLURM compute environment's bridge) and waiting there; the
# update's reason says why, in that scheduler's words
QUEUED = "QUEUED"
ATTEMPT_STATES = (RUNNING, EXITED, FAILED_TO_START, QUEUED)

TIMEOUT_REASON = "Job attempt duration exceeded timeout"

Message = dict[str, Any]


class GpuInfo(TypedDict):
    index: int
    uuid: str | None
    name: str | None
    memory_mib: int | None


class NodeInfo(TypedDict):
    name: str
    vcpus: int
    memory_mib: int
    user: NotRequired[str]
    gpus: list[GpuInfo]
    cgroups: str  # the hierarchy kind enforcing job limits: "v2", "v1" or "none"
    hostname: str
    enforced: NotRequired[list[str]]  # of "memory", "cpu", "pids"; absent from older agents
    launch_port: NotRequired[int | None]  # the MPI launch server's TCP port (None: none runs)
    gpus_reason: NotRequired[str]  # why nvidia-smi gave no inventory (missing, hung, garbage)
    gpu_isolation: NotRequired[str]  # "devices" | "env"; absent from older agents: read "env"
    gpu_isolation_reason: NotRequired[str]  # why "env" on a host with GPUs


class _AttemptSpecOptions(TypedDict, total=False):
    user: str  # run the job as this user (only a root agent can switch)
    launch_key: str | None  # a gang try's launch secret, 64 lowercase hex (docs/mpi.md §5)


class AttemptSpec(_AttemptSpecOptions):
    attempt_id: str
    command: list[str]
    env: dict[str, str]
    cwd: str | None
    timeout_s: int | None
    gpus: list[str]  # GPU ids (gpu_id); the head sets CUDA_VISIBLE_DEVICES in env, not the agent
    vcpus: int
    memory_mib: int


class AttemptUpdate(TypedDict):
    attempt_id: str
    state: str
    pid: int | None
    started_at_ms: int | None
    stopped_at_ms: int | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    log_path: str
    cpu_s: NotRequired[float]  # final updates: the CPU seconds the attempt used (cpumeter.py)


class MessageError(ValueError):
    """A line breaks the protocol. ``fatal`` means the connection must be closed
    (another protocol version); otherwise the receiver answers ``error`` and goes on."""

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
