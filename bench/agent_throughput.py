"""Benchmark: launches + exits per second through one real agent.

Starts ``python -m hpcbatch_agent serve`` in a temporary state dir, launches N attempts of
``true`` in batches (keeping a bounded window in flight, as the head's dispatcher would),
waits for every EXITED update, acks them, and prints one JSON line:

    {"bench": "agent_throughput", "n": ..., "seconds": ..., "per_second": ...}

Usage: .venv/bin/python bench/agent_throughput.py [--n 5000] [--batch 500] [--window 2000]
       [--no-cgroups]  (run the agent without cgroup enforcement, for comparison)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpcbatch_agent import protocol as p
from hpcbatch_agent.unixsock import connect, is_listening


def start_agent(state_dir: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpcbatch_agent",
            "serve",
            "--state-dir",
            str(state_dir),
            "--node-name",
            "bench",
            "--heartbeat-s",
            "5",
            *extra,
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not is_listening(state_dir / "agent.sock"):
        if time.monotonic() > deadline or agent.poll() is not None:
            agent.kill()
            raise SystemExit("agent did not start")
        time.sleep(0.01)
    return agent


def run(state_dir: Path, n: int, batch: int, window: int) -> float:
    sock = connect(state_dir / "agent.sock", timeout_s=60)
    stream = sock.makefile("rwb")
    stream.write(p.encode(p.head_hello("bench")))
    stream.flush()
    p.decode(stream.readline())
    spec = [p.attempt_spec(f"bench:{i}", ["true"]) for i in range(n)]
    sent = done = 0
    start = time.perf_counter()
    while done < n:
        while sent < n and sent - done < window:
            stream.write(p.encode(p.launch(spec[sent : sent + batch])))
            sent = min(n, sent + batch)
        stream.flush()
        message = p.decode(stream.readline())
        if message["type"] != "updates":
            continue
        finished = [u["attempt_id"] for u in message["updates"] if p.is_final(u)]
        bad = [u for u in message["updates"] if p.is_final(u) and u["exit_code"] != 0]
        if bad:
            raise SystemExit(f"unexpected result: {bad[0]}")
        done += len(finished)
        if finished:
            stream.write(p.encode(p.ack(finished)))
    seconds = time.perf_counter() - start
    stream.write(p.encode(p.shutdown(kill_jobs=True)))
    stream.flush()
    sock.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--no-cgroups", action="store_true", help="pass --no-cgroups to the agent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcbatch-bench-") as tmp:
        agent = start_agent(Path(tmp), ["--no-cgroups"] if args.no_cgroups else [])
        try:
            seconds = run(Path(tmp), args.n, args.batch, args.window)
            agent.wait(timeout=30)
        finally:
            if agent.poll() is None:
                os.kill(agent.pid, signal.SIGKILL)
                agent.wait()
    print(
        json.dumps(
            {
                "bench": "agent_throughput",
                "n": args.n,
                "seconds": round(seconds, 3),
                "per_second": round(args.n / seconds, 1),
                "cgroups": not args.no_cgroups,
            }
        )
    )


if __name__ == "__main__":
    main()
