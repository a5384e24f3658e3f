"""Benchmark: what starting one job costs the agent, on each spawn path.

Spawns N jobs of ``true`` with the agent's own ``spawn.spawn_jobs`` (no agent process, no
cgroups: only the spawn itself), in batches, reaping each batch, and prints one JSON line
per path:

    {"bench": "spawn_paths", "path": ..., "n": ..., "wall_ms_per_job": ...,
     "agent_cpu_ms_per_job": ..., "job_cpu_ms_per_job": ...}

Paths: ``posix_spawn`` (a job as the agent's own user: the fast path), ``fork`` (a job as
another user: a fork child drops to it, then execs; needs root), and ``setpriv`` (the
earlier way to run as another user, for comparison: posix_spawn of ``setpriv --reuid
--regid --init-groups -- true``; needs root).

Usage: .venv/bin/python -m bench.spawn_paths [--n 2000] [--batch 100] [--user nobody]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

from hpcbatch_agent.cgroups import Cgroups
from hpcbatch_agent.spawn import SpawnRequest, spawn_jobs
from hpcbatch_agent.users import RunAs, run_as


def requests_for(path: str, who: RunAs | None, logs: str, n: int) -> list[SpawnRequest]:
    true = shutil.which("true") or "/bin/true"
    command = [true]
    if path == "setpriv" and who is not None:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        ids = ["--reuid", str(who.uid), "--regid", str(who.gid), "--init-groups", "--"]
        command = [setpriv, *ids, true]
    user = who if path == "fork" else None
    env = {"PATH": os.defpath}
    return [
        SpawnRequest(command[0], command, env, logs, f"{logs}/{i}.log", None, user, True)
        for i in range(n)
    ]


def measure(path: str, who: RunAs | None, n: int, batch: int) -> dict[str, object]:
    cgroups = Cgroups.disabled()
    with tempfile.TemporaryDirectory(prefix="hb-spawn-bench-") as logs:
        os.chmod(logs, 0o755)
        requests = requests_for(path, who, logs, n)
        before_self = resource.getrusage(resource.RUSAGE_SELF)
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for first in range(0, n, batch):
            outcomes = spawn_jobs(requests[first : first + batch], cgroups, logs)
            for outcome in outcomes:
                if isinstance(outcome, str):
                    raise SystemExit(f"{path}: a job did not start: {outcome}")
                os.waitpid(outcome[0], 0)
        wall = time.perf_counter() - start
        after_self = resource.getrusage(resource.RUSAGE_SELF)
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    agent_cpu = (after_self.ru_utime + after_self.ru_stime) - (
        before_self.ru_utime + before_self.ru_stime
    )
    job_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    return {
        "bench": "spawn_paths",
        "path": path,
        "n": n,
        "wall_ms_per_job": round(wall * 1000 / n, 3),
        "agent_cpu_ms_per_job": round(agent_cpu * 1000 / n, 3),
        "job_cpu_ms_per_job": round(job_cpu * 1000 / n, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.spawn_paths")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--user", default="nobody")
    args = parser.parse_args(argv)
    who = run_as(args.user) if os.geteuid() == 0 else None
    if isinstance(who, str):
        raise SystemExit(who)
    paths = ["posix_spawn"] + (["fork", "setpriv"] if who is not None else [])
    for path in paths:
        print(json.dumps(measure(path, who, args.n, args.batch)), flush=True)
    if who is None:
        print("not root: only the posix_spawn path was measured", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
