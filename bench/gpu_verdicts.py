"""What bench/gpu_check.sh concludes from its jobs: pure functions from what it saw to verdicts.

Vocabulary:
    verdict     one row of the summary table: a check's name, PASS / FAIL / SKIP, and a
                detail that says what was seen (the numbers, not just the outcome).
    job         a job as DescribeJobs shows it: only ``status`` and ``statusReason`` are read.
    probe line  the JSON line a probe printed into its job's log (bench/gpu_probe.py,
                bench/cgroup_probe.py), found by its ``probe`` key; None when the job printed
                none (it never started, or was killed first).
    smi GPU     one line of ``nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader``.
    interval    a GPU probe's [start_ms, end_ms] (epoch ms): two probes given one GPU must not
                overlap.

Standard library only, no I/O: tests/gpu/ checks each rule with made-up results.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
CUDA_ERROR_NO_DEVICE = 100
CPU_PER_S_MAX = 1.5  # a 1-vCPU quota: ~1 CPU-s per wall second, with slack for the burst
PIDS_SLACK = 32  # tasks the job may hold besides its forked children (itself, a helper)
SMI_QUERY = ["--query-gpu=index,uuid,name", "--format=csv,noheader"]


@dataclass(frozen=True)
class Verdict:
    check: str
    status: str
    detail: str


@dataclass(frozen=True)
class SmiGpu:
    index: int
    uuid: str
    name: str


def parse_smi(text: str) -> list[SmiGpu]:
    """GPUs from nvidia-smi's CSV; ValueError names a line that is not ``index, uuid, name``."""
    gpus: list[SmiGpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",", 2)]
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].startswith("GPU-"):
            raise ValueError(f"not an nvidia-smi GPU line: {line!r}")
        gpus.append(SmiGpu(int(fields[0]), fields[1], fields[2]))
    return gpus


def probe_line(log: str, kind: str) -> dict[str, Any] | None:
    """The last JSON line of ``log`` whose ``probe`` is ``kind``."""
    found: dict[str, Any] | None = None
    for line in log.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("probe") == kind:
            found = record
    return found


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two [start, end] intervals share more than an end point."""
    return a[0] < b[1] and b[0] < a[1]


def _ended(name: str, job: dict[str, Any] | None, wanted: str = "SUCCEEDED") -> Verdict | None:
    """A FAIL when the job did not end as ``wanted``; None when it did."""
    if job is None:
        return Verdict(name, FAIL, "job not submitted")
    if job.get("status") != wanted:
        reason = job.get("statusReason") or "-"
        return Verdict(name, FAIL, f"job ended {job.get('status')} ({reason}), not {wanted}")
    return None


def expected_uuid(visible: str, gpus: list[SmiGpu]) -> str | None:
    """The UUID of the one GPU ``CUDA_VISIBLE_DEVICES`` names (a UUID, or an index into
    nvidia-smi's list), or None if it names none of them."""
    if visible.startswith("GPU-"):
        return visible if any(g.uuid.lower() == visible.lower() for g in gpus) else None
    if visible.isdigit():
        return next((g.uuid for g in gpus if g.index == int(visible)), None)
    return None


def gpu_job_verdict(
    name: str, job: dict[str, Any] | None, result: dict[str, Any] | None, gpus: list[SmiGpu]
) -> Verdict:
    """A 1-GPU job saw exactly one device, the one nvidia-smi names, and allocated on it."""
    failed = _ended(name, job)
    if failed is not None:
        return failed
    if result is None:
        return Verdict(name, FAIL, "the job printed no probe line")
    visible = result.get("cuda_visible_devices")
    seen = f"CUDA_VISIBLE_DEVICES={visible!r}"
    if result.get("error"):
        return Verdict(name, FAIL, f"{seen}: {result['error']}")
    if not visible or "," in visible:
        return Verdict(name, FAIL, f"{seen}: a 1-GPU job must be given exactly one GPU")
    if result.get("count") != 1:
        return Verdict(name, FAIL, f"{seen}: CUDA saw {result.get('count')} devices, not 1")
    wanted = expected_uuid(visible, gpus)
    if wanted is None:
        listed = ", ".join(f"{g.index}={g.uuid}" for g in gpus)
        return Verdict(name, FAIL, f"{seen} names no GPU nvidia-smi lists ({listed})")
    if str(result.get("uuid", "")).lower() != wanted.lower():
        return Verdict(name, FAIL, f"{seen}: CUDA's device is {result.get('uuid')}, not {wanted}")
    if not result.get("alloc_ok"):
        return Verdict(name, FAIL, f"{seen}: cuMemAlloc failed")
    held = (result["end_ms"] - result["start_ms"]) / 1000
    return Verdict(
        name, PASS, f"{seen}, 1 device {result['uuid']}, 256 MiB allocated, {held:.1f} s"
    )


def one_after_other(
    name: str, results: Sequence[dict[str, Any] | None], submitted_ms: Sequence[int | None]
) -> Verdict:
    """Jobs given the one GPU ran one after the other: no two intervals overlap, though each
    was submitted before the other ended (so the later one waited for the GPU)."""
    spans = [(r["start_ms"], r["end_ms"]) for r in results if r and r.get("end_ms") is not None]
    if len(spans) < len(results) or len(spans) < 2:
        return Verdict(name, FAIL, "a GPU job printed no interval")
    spans.sort()
    for first, second in itertools.pairwise(spans):
        if overlaps(first, second):
            after, before = (second[0] - first[0]) / 1000, (first[1] - second[0]) / 1000
            return Verdict(
                name,
                FAIL,
                f"held the GPU at once: the second started {after:.2f} s after the first, "
                f"{before:.2f} s before it ended",
            )
    last_submitted = max((t for t in submitted_ms if t is not None), default=None)
    if last_submitted is None or last_submitted >= spans[0][1]:
        return Verdict(name, FAIL, "inconclusive: the jobs were not submitted while both could run")
    gaps = ", ".join(f"{(b[0] - a[1]) / 1000:.2f} s" for a, b in itertools.pairwise(spans))
    waited = (spans[0][1] - last_submitted) / 1000
    return Verdict(
        name,
        PASS,
        f"{len(spans)} jobs, no overlap (gap {gaps}); the last was queued {waited:.1f} s "
        "before the first finished",
    )


def no_gpu_verdict(name: str, job: dict[str, Any] | None, result: dict[str, Any] | None) -> Verdict:
    """A job that asked for no GPU sees none: CUDA_VISIBLE_DEVICES set empty, and CUDA finds
    no device (cuInit fails, or counts 0)."""
    failed = _ended(name, job)
    if failed is not None:
        return failed
    if result is None:
        return Verdict(name, FAIL, "the job printed no probe line")
    visible = result.get("cuda_visible_devices")
    seen = f"CUDA_VISIBLE_DEVICES={visible!r} NVIDIA_VISIBLE_DEVICES="
    seen += repr(result.get("nvidia_visible_devices"))
    if visible != "":
        return Verdict(name, FAIL, f"{seen}: must be set and empty")
    init, count, error = result.get("init"), result.get("count"), result.get("error")
    if init is None:
        return Verdict(name, FAIL, f"{seen}: CUDA did not run: {error}")
    if init == 0 and count != 0:
        return Verdict(name, FAIL, f"{seen}: cuInit={init}, {count} devices")
    # 100 (CUDA_ERROR_NO_DEVICE) is what CUDA_VISIBLE_DEVICES="" gives; where the job's cgroup
    # also denies the boards, cuInit may fail otherwise: either way the job has no GPU.
    how = f"cuInit={init}" + (f" ({error})" if error else "")
    return Verdict(name, PASS, f"{seen}, {how}, no device")


def isolation_verdict(
    name: str,
    node: dict[str, Any] | None,
    gpu_results: Sequence[dict[str, Any] | None],
    no_gpu: dict[str, Any] | None,
) -> Verdict:
    """Where the node says its jobs' cgroups deny the boards they were not given
    (``gpuIsolation: devices``), a no-GPU job's open of every /dev/nvidia<N> is refused with
    EPERM, and a 1-GPU job's of all but one; elsewhere (``env``) only the variables keep jobs
    apart. Any other outcome of an open (ok, or the driver's own ENXIO) got past the cgroup."""
    isolation = (node or {}).get("gpuIsolation")
    if isolation != "devices":
        why = (node or {}).get("gpuIsolationReason") or "-"
        return Verdict(name, SKIP, f"the node reports gpuIsolation {isolation!r} ({why})")
    boards = (no_gpu or {}).get("boards") or {}
    if not boards:
        return Verdict(name, SKIP, "no /dev/nvidia<N> files the no-GPU job could try")
    reached = sorted(path for path, how in boards.items() if how != "EPERM")
    if reached:
        return Verdict(name, FAIL, f"the no-GPU job got past the cgroup to {', '.join(reached)}")
    for result in gpu_results:
        tried = (result or {}).get("boards") or {}
        own = sorted(path for path, how in tried.items() if how != "EPERM")
        if len(own) != 1:
            return Verdict(name, FAIL, f"a 1-GPU job reached {own or 'no board'}, not one board")
    denied = ", ".join(sorted(boards))
    return Verdict(name, PASS, f"EPERM for the no-GPU job on {denied}; one board per 1-GPU job")


def inventory_verdict(name: str, node: dict[str, Any] | None, gpus: list[SmiGpu]) -> Verdict:
    """The node offers the GPUs nvidia-smi lists (``gpus`` a count, or a list of GPUs)."""
    if node is None:
        return Verdict(name, FAIL, "no node")
    offered = node.get("gpus")
    count = len(offered) if isinstance(offered, list) else offered
    if count != len(gpus):
        return Verdict(name, FAIL, f"the node offers {offered!r}; nvidia-smi lists {len(gpus)}")
    return Verdict(name, PASS, f"{count} GPU(s): " + ", ".join(f"{g.name} {g.uuid}" for g in gpus))


def cgroups_verdict(name: str, enforcement: str, pure_v2: bool) -> Verdict:
    """The node enforces memory, cpu and pids, through v2 where the host has only v2."""
    missing = [c for c in ("memory", "cpu", "pids") if c not in enforcement]
    if not enforcement.startswith("cgroups") or missing:
        return Verdict(name, FAIL, f"{enforcement!r}: missing {', '.join(missing) or 'cgroups'}")
    if pure_v2 and not enforcement.startswith("cgroups v2"):
        return Verdict(name, FAIL, f"{enforcement!r} on a pure cgroup v2 host")
    host = "pure v2 host" if pure_v2 else "host with v1 hierarchies"
    return Verdict(name, PASS, f"{enforcement} ({host})")


def oom_verdict(name: str, job: dict[str, Any] | None) -> Verdict:
    failed = _ended(name, job, "FAILED")
    if failed is not None:
        return failed
    assert job is not None
    reason = job.get("statusReason") or ""
    if not reason.startswith("OutOfMemoryError"):
        return Verdict(name, FAIL, f"FAILED with {reason!r}, not OutOfMemoryError")
    return Verdict(name, PASS, f"FAILED: {reason}")


def cpu_verdict(
    name: str, job: dict[str, Any] | None, result: dict[str, Any] | None, control: float | None
) -> Verdict:
    """Busy threads under a 1-vCPU quota used at most CPU_PER_S_MAX CPU-s per second, and
    the quota is seen to bite: the cgroup throttled them, or the same threads unconfined
    (``control``, CPU-s per s) used more than the limit, so the job could have exceeded it."""
    failed = _ended(name, job)
    if failed is not None:
        return failed
    if result is None or result.get("cpu_per_s") is None:
        return Verdict(name, FAIL, "the job printed no cpu line")
    used, throttled = result["cpu_per_s"], result.get("nr_throttled")
    seen = (
        f"{result['threads']} threads: {result['cpu_s']} CPU-s in {result['wall_s']} s "
        f"= {used} per s; nr_throttled={throttled}; unconfined control "
        + (f"{control:.2f} per s" if control is not None else "not measured")
    )
    if used > CPU_PER_S_MAX:
        return Verdict(name, FAIL, f"{seen} (> {CPU_PER_S_MAX}: the quota did not hold)")
    if not throttled and (control is None or control <= CPU_PER_S_MAX):
        return Verdict(name, FAIL, f"{seen}: inconclusive, nothing shows the quota biting")
    return Verdict(name, PASS, seen)


def pids_verdict(
    name: str, job: dict[str, Any] | None, result: dict[str, Any] | None, expected_max: int
) -> Verdict:
    """Forking stopped with EAGAIN just below the job's pids.max, which is the agent's."""
    failed = _ended(name, job)
    if failed is not None:
        return failed
    if result is None:
        return Verdict(name, FAIL, "the job printed no pids line")
    forked, limit = result.get("forked", 0), str(result.get("pids_max"))
    seen = f"forked {forked}, then {result.get('errno') or 'no error'}; pids.max={limit}"
    if result.get("errno") != "EAGAIN":
        return Verdict(name, FAIL, f"{seen}: forking never failed with EAGAIN")
    if limit != str(expected_max):
        return Verdict(name, FAIL, f"{seen}: not the agent's --pids-max {expected_max}")
    if not expected_max - PIDS_SLACK <= forked < expected_max:
        return Verdict(name, FAIL, f"{seen}: EAGAIN came from elsewhere than pids.max")
    return Verdict(name, PASS, seen)


def escape_verdict(
    name: str,
    job: dict[str, Any] | None,
    result: dict[str, Any] | None,
    seen_running: Iterable[int],
    left: list[int],
    cleared_s: float | None,
) -> Verdict:
    """A grandchild that left the job's session was seen running with the job, and no
    process of the job is left once it was killed."""
    failed = _ended(name, job, "FAILED")
    if failed is not None:
        return failed
    if result is None:
        return Verdict(name, FAIL, "the job printed no escape line")
    escapee, seen = result.get("escapee"), sorted(set(seen_running))
    if result.get("escapee_sid") == result.get("job_sid"):
        return Verdict(name, FAIL, f"escapee {escapee} stayed in the job's session")
    if escapee not in seen:
        return Verdict(name, FAIL, f"escapee {escapee} not among the job's processes {seen}")
    if left or cleared_s is None:
        return Verdict(name, FAIL, f"still running after the job ended: {left}")
    return Verdict(
        name,
        PASS,
        f"the job's {len(seen)} processes, escapee {escapee} in a session of its own among "
        f"them, all gone {cleared_s:.2f} s after the job ended",
    )


def render(verdicts: list[Verdict]) -> str:
    """The summary table, one row per check."""
    width = max([len("check")] + [len(v.check) for v in verdicts])
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{v.check:<{width}}  {v.status:<6}  {v.detail}" for v in verdicts]
    return "\n".join(lines)


def any_failed(verdicts: Iterable[Verdict]) -> bool:
    return any(v.status == FAIL for v in verdicts)
