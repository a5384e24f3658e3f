"""Jobs that push against their cgroup limits, run by bench/gpu_check.sh, each printing JSON lines.

    python3 bench/cgroup_probe.py info
    python3 bench/cgroup_probe.py oom [--mib 300]
    python3 bench/cgroup_probe.py cpu [--threads 4] [--seconds 3]
    python3 bench/cgroup_probe.py pids [--cap 10000]
    python3 bench/cgroup_probe.py escape [--hold 300]

Vocabulary:
    cgroup line  the first line every probe prints (``"probe": "cgroup"``): the job's own
                 /proc/self/cgroup and, for each hierarchy it is in, that dir's limit and
                 membership files (cpu.max / cpu.cfs_quota_us, memory.max, pids.max,
                 cgroup.procs, ...): the diagnostics the check prints when a limit did not hold,
                 written before the job can be killed; cpu and pids print it again at the end.
    busy thread  a thread hashing an 8 MiB buffer in a loop: hashlib drops the GIL while it
                 hashes, so four such threads use four CPUs where nothing limits them.
    result line  the probe's last line (``"probe": "<kind>"``) with what it measured.
    escapee      ``escape``'s grandchild: double-forked and setsid'd, so it is in neither the
                 job's process group nor its session, and it ignores SIGTERM (``trap "" TERM``
                 survives exec), so only a kill of the whole cgroup (or pid by pid) ends it.

Standard library only: it runs as a job on a bare host.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import sys
import threading
import time
from typing import Any

DIAG_FILES = (
    "cgroup.procs",
    "cgroup.events",
    "cpu.max",
    "cpu.stat",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "memory.max",
    "memory.swap.max",
    "memory.events",
    "memory.limit_in_bytes",
    "memory.oom_control",
    "pids.max",
    "pids.current",
    "pids.events",
)
PROCS_SHOWN = 20
MIB = 1024 * 1024


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


# --- the job's own cgroups ------------------------------------------------------------------


def cgroup_mounts(mountinfo: str) -> list[tuple[str, str, int, frozenset[str]]]:
    """(mount point, mount root, version, v1 controllers) of each cgroup mount."""
    mounts = []
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue
        before, after = line.split(" - ", 1)
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(","))
        version = 2 if tail[0] == "cgroup2" else 1
        mounts.append((fields[4], fields[3], version, options if version == 1 else frozenset()))
    return mounts


def cgroup_dirs(proc_cgroup: str, mountinfo: str) -> list[str]:
    """The directories of the cgroups this process is in, one per mounted hierarchy."""
    dirs: list[str] = []
    mounts = cgroup_mounts(mountinfo)
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        names = set(parts[1].split(",")) if parts[1] else set()
        path = parts[2]
        for point, root, version, controllers in mounts:
            if (version == 2 and not names) or (version == 1 and names and names <= controllers):
                relative = path[len(root) :] if root != "/" and path.startswith(root) else path
                directory = point + relative.rstrip("/") if relative != "/" else point
                if directory not in dirs:
                    dirs.append(directory)
                break
    return dirs


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def own_cgroups() -> dict[str, Any]:
    proc_cgroup = _read("/proc/self/cgroup") or ""
    files: dict[str, dict[str, str]] = {}
    for directory in cgroup_dirs(proc_cgroup, _read("/proc/self/mountinfo") or ""):
        found: dict[str, str] = {}
        for name in DIAG_FILES:
            text = _read(f"{directory}/{name}")
            if text is None:
                continue
            if name == "cgroup.procs":
                pids = text.split()
                text = " ".join(pids[:PROCS_SHOWN]) + (" ..." if len(pids) > PROCS_SHOWN else "")
            found[name] = text.strip()
        files[directory] = found
    return {"probe": "cgroup", "pid": os.getpid(), "proc_self_cgroup": proc_cgroup, "dirs": files}


def own_limit(name: str) -> str | None:
    """The value of limit file ``name`` (e.g. pids.max) of the job's own cgroup, where found."""
    for found in own_cgroups()["dirs"].values():
        if name in found:
            return str(found[name])
    return None


def throttled_periods() -> int | None:
    """nr_throttled from the job's own cpu.stat: > 0 once the quota held it back."""
    for found in own_cgroups()["dirs"].values():
        for line in found.get("cpu.stat", "").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "nr_throttled" and words[1].isdigit():
                return int(words[1])
    return None


# --- the probes -----------------------------------------------------------------------------


def probe_oom(mib: int) -> int:
    """Touch ``mib`` MiB in 16 MiB steps; a memory limit below it must kill the job first."""
    held: list[bytes] = []
    for done in range(16, mib + 16, 16):
        held.append(b"\x01" * (16 * MIB))  # filled, so every page is really used
        if done % 64 == 0:
            print(f"allocated {done} MiB", flush=True)
    emit({"probe": "oom", "allocated_mib": len(held) * 16})
    return 0


def _burn(until: float, buffer: bytes) -> None:
    while time.monotonic() < until:
        hashlib.sha256(buffer).digest()


def busy_cpu(threads: int, seconds: float) -> dict[str, Any]:
    """CPU seconds per wall second used by ``threads`` busy threads over ``seconds``."""
    buffer = os.urandom(8 * MIB)  # a 1 MiB one spends too long waiting for the GIL
    before, start = os.times(), time.monotonic()
    workers = [
        threading.Thread(target=_burn, args=(start + seconds, buffer)) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    after, wall = os.times(), time.monotonic() - start
    cpu = (after.user - before.user) + (after.system - before.system)
    return {
        "threads": threads,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_per_s": round(cpu / wall, 3) if wall > 0 else None,
    }


def probe_cpu(threads: int, seconds: float) -> int:
    result = {"probe": "cpu", **busy_cpu(threads, seconds), "nr_throttled": throttled_periods()}
    emit(own_cgroups())  # again: cpu.stat after the work
    emit(result)
    return 0


def probe_pids(cap: int) -> int:
    """Fork children that wait on a pipe until a fork fails (or ``cap``); report the count."""
    limit = own_limit("pids.max")
    if limit is not None and limit.isdigit():
        cap = min(cap, int(limit) + 64)  # past the limit: the limit did not hold
    read_end, write_end = os.pipe()
    children: list[int] = []
    failure: OSError | None = None
    while len(children) < cap:
        try:
            pid = os.fork()
        except OSError as exc:
            failure = exc
            break
        if pid == 0:
            os.close(write_end)
            with contextlib.suppress(OSError):
                os.read(read_end, 1)  # returns at EOF: when the parent closes its end
            os._exit(0)
        children.append(pid)
    os.close(write_end)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    code = failure.errno if failure is not None else None
    emit(own_cgroups())  # again: pids.events after the forks
    emit(
        {
            "probe": "pids",
            "forked": len(children),
            "errno": errno.errorcode.get(code, str(code)) if code is not None else None,
            "error": str(failure) if failure is not None else None,
            "pids_max": limit,
            "cap": cap,
        }
    )
    return 0


def probe_escape(hold_s: float) -> int:
    """Leave an escapee behind, report it, then wait to be killed."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            os.close(read_end)
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            os.execv("/bin/sh", ["sh", "-c", 'trap "" TERM; exec sleep 300'])
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    escapee = int(os.read(read_end, 32).decode() or "0")
    os.close(read_end)
    emit(
        {
            "probe": "escape",
            "escapee": escapee,
            "escapee_sid": _sid(escapee),
            "job_sid": os.getsid(0),
            "job_pgid": os.getpgid(0),
        }
    )
    time.sleep(hold_s)  # the job's work: wait for the timeout or terminate to end it
    return 0


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info")
    oom = commands.add_parser("oom")
    oom.add_argument("--mib", type=int, default=300)
    cpu = commands.add_parser("cpu")
    cpu.add_argument("--threads", type=int, default=4)
    cpu.add_argument("--seconds", type=float, default=3.0)
    pids = commands.add_parser("pids")
    pids.add_argument("--cap", type=int, default=10_000)
    escape = commands.add_parser("escape")
    escape.add_argument("--hold", type=float, default=300.0)
    args = parser.parse_args(argv)
    emit(own_cgroups())
    if args.command == "oom":
        return probe_oom(args.mib)
    if args.command == "cpu":
        return probe_cpu(args.threads, args.seconds)
    if args.command == "pids":
        return probe_pids(args.cap)
    if args.command == "escape":
        return probe_escape(args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
