"""Retention under a steady stream (issue 15, point 2): a real head (bench/simhead.py) with a
short ``retention_days`` runs a steady stream of short jobs on simulated nodes for a while;
every ``--sample-s`` the job documents and journal lines in its SQLite store (read through a
read-only connection beside the head, as WAL allows), the store's files and the head's RSS
are sampled. Bounded: once the stream has run a retention and a purge interval, the rows stop
growing while the jobs submitted keep growing. One JSON line: the samples and a verdict.

    .venv/bin/python -m bench.retention_stream [--retention-s 30] [--duration-s 180]
        [--rate 2000] [--array 500]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.head_memory import rss_mb
from bench.rawhttp import RawClient
from bench.simcluster import SimCluster
from hpcbatch.head.config import HeadConfig


def rows(db: Path) -> tuple[int, int]:
    """Job documents and journal lines in the store now."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        jobs = conn.execute("SELECT count(*) FROM record WHERE kind = 'job'").fetchone()[0]
        journal = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        conn.close()
    return int(jobs), int(journal)


def files_mb(data: Path) -> float:
    return sum(p.stat().st_size for p in data.glob("*.db*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--retention-s", type=float, default=30)
    parser.add_argument("--duration-s", type=float, default=180)
    parser.add_argument("--rate", type=int, default=2000, help="jobs submitted a second")
    parser.add_argument("--array", type=int, default=500, help="children an array submission")
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    days = args.retention_s / 86_400
    with SimCluster(
        nodes=args.nodes, vcpus=8, run_ms=100, head_config=f"retention_days = {days!r}\n"
    ) as cluster:
        assert cluster.head is not None
        data = cluster.dir / "data"
        (db,) = [p for p in data.glob("*.db") if p.is_file()]
        every = args.array / args.rate
        body = {"jobName": "r", "jobQueue": "sim", "jobDefinition": "default"}
        body["arrayProperties"] = {"size": args.array}  # type: ignore[assignment]
        samples: list[dict[str, Any]] = []
        submitted = 0
        with RawClient(cluster.endpoint) as client:
            request = client.request("/v1/submitjob", body)
            began = time.monotonic()
            next_submit = next_sample = began
            while (now := time.monotonic()) - began < args.duration_s:
                if now >= next_submit:
                    status, answer = client.send(request)
                    if status != 200:
                        raise RuntimeError(f"SubmitJob: HTTP {status}: {answer[:300]!r}")
                    submitted += args.array
                    next_submit += every
                if now >= next_sample:
                    jobs, journal = rows(db)
                    samples.append(
                        {
                            "t_s": round(now - began),
                            "submitted": submitted,
                            "job_docs": jobs,
                            "journal_lines": journal,
                            "store_mb": round(files_mb(data), 1),
                            "head_rss_mb": round(rss_mb(cluster.head.pid)),
                        }
                    )
                    next_sample += args.sample_s
                time.sleep(max(0.0, min(next_submit, next_sample) - time.monotonic()))
        # Bounded: past a retention plus a purge interval (and a margin), the rows of the
        # last third of the run are no more than those of the middle third's peak, give or take
        # what one purge interval of the stream adds.
        purge_s = HeadConfig(retention_days=days).purge_every_s
        settled = [s for s in samples if s["t_s"] >= args.retention_s + purge_s + 10]
        third = len(settled) // 2
        early = max(s["job_docs"] for s in settled[: third or 1])
        late = max(s["job_docs"] for s in settled[third:] or settled)
        slack = args.rate * (purge_s + args.sample_s)
        print(
            json.dumps(
                {
                    "bench": "retention_stream",
                    "retention_s": args.retention_s,
                    "purge_every_s": purge_s,
                    "rate_per_s": args.rate,
                    "submitted": submitted,
                    "samples": samples,
                    "job_docs_peak_settled_first_half": early,
                    "job_docs_peak_settled_second_half": late,
                    "bounded": late <= early + slack,
                }
            )
        )


if __name__ == "__main__":
    main()
