"""Slurm's command-line tools, as the SLURM compute environment drives them (standard library).

Every site's Slurm has its CLI, whatever its version; pyslurm matches one version only
(docs/slurm.md). Each call runs one command through a ``Run`` (a local subprocess here; the
same argv over SSH to a login node) and parses what Slurm 22.05 prints:

    sbatch --parsable        the new job's id (``123`` or ``123;cluster``)
    squeue -h -r -o FORMAT   one line per job or array task still in Slurm's queue
    scontrol show job -o ID  one line per job or task, ``Key=value`` pairs, while Slurm still
                             remembers it (``MinJobAge`` after its end): the final state and
                             exit code where there is no accounting
    scancel ID               cancel (a pending job) or kill (a running one)

Vocabulary: a **Slurm id** names one job or one array task as squeue prints it with ``-r``:
``123``, or ``123_4`` for task 4 of array 123. A **record** (``SlurmJob``) is what one line says.
Errors: ``SlurmError`` carries Slurm's own message (its stderr), to be quoted in status reasons.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# What runs one Slurm command: argv and stdin text in, (exit status, stdout, stderr) out.
Run = Callable[[Sequence[str], str | None], tuple[int, str, str]]

# squeue's fields, name last: a job name may hold the separator, a state or a time may not
SQUEUE_FORMAT = "%i|%T|%r|%S|%N|%P|%j"
ACTIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING",
     "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
)  # fmt: skip
# the start of one `Key=` of an `scontrol -o` line (a key may hold `/`, `:` and `_`)
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")
_KEY = re.compile(r"(?:^| )([A-Za-z][A-Za-z/:_]*)=")


class SlurmError(Exception):
    """A Slurm command failed; ``message`` is what Slurm said (its stderr, trimmed)."""

    def __init__(self, argv: Sequence[str], message: str) -> None:
        self.argv = list(argv)
        self.message = message
        super().__init__(f"{argv[0]} failed: {message}")


@dataclass(frozen=True)
class SlurmJob:
    slurm_id: str  # "123", or "123_4" for an array's task
    name: str
    state: str  # Slurm's JobState: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, NODE_FAIL...
    reason: str  # why it waits (or why it ended): Resources, Priority, NonZeroExitCode, None
    nodes: str  # Slurm's node list ("h[1-2]"), "" before it runs
    started_at_ms: int | None  # None before it starts
    partition: str = ""  # where it is queued or runs
    ended_at_ms: int | None = None  # scontrol only
    exit_code: int | None = None  # scontrol only, once ended: the batch script's status
    signal: int | None = None  # scontrol only: the signal that ended it, if one did

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def local(env: Mapping[str, str] | None = None) -> Run:
    """Slurm commands run on this machine, with ``env`` (its ``SLURM_CONF``) or this one's."""

    def run(argv: Sequence[str], stdin: str | None) -> tuple[int, str, str]:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=60, check=False,
            env=None if env is None else dict(env),
        )  # fmt: skip
        return done.returncode, done.stdout, done.stderr

    return run


def _call(run: Run, argv: Sequence[str], stdin: str | None = None) -> str:
    return _outputs(run, argv, stdin)[0]


def _outputs(run: Run, argv: Sequence[str], stdin: str | None = None) -> tuple[str, str]:
    """The command's stdout and stderr; a SlurmError with Slurm's words when it fails."""
    try:
        status, out, err = run(argv, stdin)
    except FileNotFoundError:
        raise SlurmError(argv, f"{argv[0]} is not installed (not found on PATH)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(argv, f"{argv[0]} did not answer within 60 s") from None
    if status != 0:
        raise SlurmError(argv, _message(err) or f"exit status {status}")
    return out, err


def _message(stderr: str) -> str:
    """Slurm's error lines, the most telling last: ``sbatch: error: Batch job submission
    failed: Invalid partition name specified``."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "; ".join(lines[-2:])


def sbatch(run: Run, script: str, options: Sequence[str] = ()) -> str:
    """Submit ``script`` (a batch script, ``#!`` first) with sbatch ``options``; its job id."""
    out = _call(run, ["sbatch", "--parsable", *options], script).strip()
    job_id = out.split(";", 1)[0]
    if not job_id.isdigit():
        raise SlurmError(["sbatch"], f"printed no job id: {out!r}")
    return job_id


def squeue(run: Run, options: Sequence[str] = ()) -> list[SlurmJob]:
    """Every job and array task in Slurm's queue that ``options`` select (``-u``, ``-p``...)."""
    out = _call(run, ["squeue", "-h", "-r", "-o", SQUEUE_FORMAT, *options])
    return [parse_squeue_line(line) for line in out.splitlines() if line.strip()]


def parse_squeue_line(line: str) -> SlurmJob:
    slurm_id, state, reason, start, nodes, partition, name = line.rstrip("\n").split("|", 6)
    started = parse_time(start) if state not in ("PENDING", "CONFIGURING") else None
    return SlurmJob(slurm_id, name, state, reason, nodes, started, partition)


def show_job(run: Run, slurm_id: str) -> list[SlurmJob]:
    """What Slurm remembers of a job (each task of an array): [] once it has forgotten it."""
    try:
        out = _call(run, ["scontrol", "show", "job", "-o", slurm_id])
    except SlurmError as error:
        if "Invalid job id" in error.message:
            return []
        raise
    return [parse_scontrol_line(line) for line in out.splitlines() if line.strip()]


def show_jobs(run: Run) -> list[SlurmJob]:
    """Every job and task Slurm remembers (``scontrol show job -o``, no id)."""
    out = _call(run, ["scontrol", "show", "job", "-o"])
    return [parse_scontrol_line(line) for line in out.splitlines() if "JobId=" in line]


def parse_scontrol_line(line: str) -> SlurmJob:
    fields = scontrol_fields(line)
    array_task = fields.get("ArrayTaskId")
    slurm_id = fields["JobId"]
    if array_task is not None and "ArrayJobId" in fields:
        slurm_id = f"{fields['ArrayJobId']}_{array_task}"
    state = fields.get("JobState", "")
    exit_code = signal = None
    if state not in ACTIVE_STATES:
        code, _, sig = fields.get("ExitCode", "").partition(":")
        exit_code = int(code) if code.isdigit() else None
        signal = int(sig) if sig.isdigit() and sig != "0" else None
    started = parse_time(fields.get("StartTime", "")) if state != "PENDING" else None
    ended = parse_time(fields.get("EndTime", "")) if state not in ACTIVE_STATES else None
    return SlurmJob(
        slurm_id=slurm_id,
        name=fields.get("JobName", ""),
        state=state,
        reason=fields.get("Reason", ""),
        nodes=_null(fields.get("NodeList", "")),
        started_at_ms=started,
        partition=fields.get("Partition", ""),
        ended_at_ms=ended,
        exit_code=exit_code,
        signal=signal,
    )


def _null(text: str) -> str:
    return "" if text == "(null)" else text


def scontrol_fields(line: str) -> dict[str, str]:
    """``Key=value`` pairs of one ``scontrol ... -o`` line. A value runs to the next `` Key=``,
    so a job name with spaces reads whole; one holding `` Word=`` would be cut there (the
    names this project gives hold neither)."""
    line = line.rstrip("\n")
    marks = list(_KEY.finditer(line))
    fields: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        fields.setdefault(mark.group(1), line[mark.end() : end].strip())
    return fields


def parse_time(text: str) -> int | None:
    """Slurm's ``2026-12-01T03:54:09`` (the controller's local time) as epoch milliseconds;
    None for ``N/A``, ``Unknown``, ``None`` or empty."""
    try:
        return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")) * 1000)
    except ValueError:
        return None


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str  # sinfo's long state: idle, mixed, allocated, down*, drained...
    cpus: int
    memory_mib: int
    partition: str  # "batch*": the star marks the default partition
    gres: str = ""  # "gpu:2", "gpu:a100:4(S:0-1)", "(null)"

    @property
    def gpus(self) -> int:
        return gres_gpus(self.gres)


def gres_gpus(gres: str) -> int:
    """The GPUs one sinfo ``%G`` cell counts: ``gpu:2``, ``gpu:a100:4(S:0-1)``,
    ``gpu:2,mps:200``; 0 for ``(null)``."""
    return sum(int(count) for count in _GPU_GRES.findall(gres))


def sinfo_nodes(run: Run, partitions: Sequence[str] = ()) -> list[SlurmNode]:
    """The nodes of ``partitions`` (all: none given), each once."""
    options = ["-p", ",".join(partitions)] if partitions else []
    out = _call(run, ["sinfo", "-h", "-N", "-o", "%N|%T|%c|%m|%P|%G", *options])
    nodes: dict[str, SlurmNode] = {}
    for line in out.splitlines():
        name, state, cpus, memory, partition, gres = (line.split("|") + [""] * 6)[:6]
        if name and name not in nodes:
            nodes[name] = SlurmNode(name, state, _int(cpus), _int(memory), partition, gres)
    return list(nodes.values())


def _int(text: str) -> int:
    digits = text.strip().rstrip("+")
    return int(digits) if digits.isdigit() else 0


def scancel(run: Run, slurm_id: str) -> None:
    _call(run, ["scancel", slurm_id])


def release(run: Run, slurm_id: str) -> None:
    """Let a job submitted with ``--hold`` be scheduled."""
    _call(run, ["scontrol", "release", slurm_id])


def mpi_types(run: Run) -> set[str]:
    """The MPI plugin types ``srun --mpi=`` takes on this cluster (``srun --mpi=list``)."""
    out, err = _outputs(run, ["srun", "--mpi=list"])  # 22.05: on stdout; read both
    said = (out + "\n" + err).splitlines()
    return {line.strip() for line in said if line.startswith(("\t", " ")) and line.strip()}


# sacct's fields for how a job ended, the name last (it may hold the separator)
SACCT_FIELDS = "JobID,State,ExitCode,Start,End,NodeList,Partition,Reason,JobName"


def accounted(run: Run, slurm_ids: Sequence[str]) -> list[SlurmJob]:
    """What Slurm's accounting (slurmdbd) keeps of these jobs: one ``sacct`` for them all,
    whatever their age (``-j`` reads from the epoch). A job sacct has not heard of yet is
    missing; one whose end has not reached it yet reads as still active."""
    if not slurm_ids:
        return []
    argv = ["sacct", "-X", "-P", "-n", "-o", SACCT_FIELDS, "-j", ",".join(slurm_ids)]
    out = _call(run, argv)
    return [parse_sacct_line(line) for line in out.splitlines() if line.strip()]


def parse_sacct_line(line: str) -> SlurmJob:
    slurm_id, state, exit_code, start, end, nodes, partition, reason, name = line.split("|", 8)
    state = state.split(" ", 1)[0]  # "CANCELLED by 0"
    code = signal = None
    if state not in ACTIVE_STATES:
        text, _, sig = exit_code.partition(":")
        code = int(text) if text.isdigit() else None
        signal = int(sig) if sig.isdigit() and sig != "0" else None
    return SlurmJob(
        slurm_id=slurm_id,
        name=name,
        state=state,
        reason=reason,
        nodes=_null(nodes) if nodes != "None assigned" else "",
        started_at_ms=parse_time(start) if state != "PENDING" else None,
        partition=partition,
        ended_at_ms=parse_time(end) if state not in ACTIVE_STATES else None,
        exit_code=code,
        signal=signal,
    )


def accounting(run: Run) -> bool:
    """Slurm keeps accounting in slurmdbd (``scontrol show config``'s AccountingStorageType)."""
    out = _call(run, ["scontrol", "show", "config"])
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip() == "accounting_storage/slurmdbd"
    return False
