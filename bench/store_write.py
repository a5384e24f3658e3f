"""Benchmark: how fast SqliteStore writes batches shaped like the head's.

Prints one JSON line per scenario:
    {"bench": "store_write", "scenario": ..., "rows": ..., "seconds": ..., "rows_per_second": ...}

Scenarios, each for durability "process" (synchronous=NORMAL) and "power" (synchronous=FULL):
    submit_10k_jobs      one batch of 10,000 new ~1 KiB job docs (a large array SubmitJob)
    update_10k_jobs      the same 10,000 keys overwritten in one batch (a mass status change)
    steps_1000x10        1,000 batches of 10 upserts + 10 journal rows (the loop's steady state)

Usage: .venv/bin/python bench/store_write.py [--dir DIR] [--durability process|power]
The file lives in DIR (default: a fresh temporary directory); put DIR on the disk the head will
use, since an fsync on tmpfs costs nothing and makes "power" look free.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hpcbatch.store import Durability, SqliteStore, WriteBatch

DOC_BYTES = 1024


def job_doc(i: int, status: str) -> str:
    doc = {
        "jobId": f"{i:08d}-5c1e-4b7a-9a43-0f2d6e8b1c{i % 100:02d}",
        "jobName": f"sim-{i}",
        "jobQueue": "arn:aws:batch:onprem:000000000000:job-queue/gpu",
        "status": status,
        "container": {"vcpus": 4, "memory": 16384, "command": ["python", "run.py", str(i)]},
        "pad": "",
    }
    text = json.dumps(doc)
    doc["pad"] = "x" * max(0, DOC_BYTES - len(text))
    return json.dumps(doc)


def submit_batch(count: int, status: str) -> WriteBatch:
    batch = WriteBatch()
    for i in range(count):
        batch.put("job", f"job-{i:08d}", job_doc(i, status))
    return batch


def step_batches(count: int, per_batch: int) -> list[WriteBatch]:
    batches = []
    for b in range(count):
        batch = WriteBatch()
        for j in range(per_batch):
            i = b * per_batch + j
            batch.put("job", f"job-{i:08d}", job_doc(i, "RUNNING"))
            batch.log(
                1_700_000_000_000 + i, f"cause-{b}", f"job-{i:08d}", "RUNNING", '{"node":"n1"}'
            )
        batches.append(batch)
    return batches


def timed(store: SqliteStore, batches: list[WriteBatch]) -> float:
    """Seconds to write ``batches``; building them is kept out of the measurement."""
    start = time.perf_counter()
    for batch in batches:
        store.write(batch)
    return time.perf_counter() - start


def report(scenario: str, rows: int, seconds: float) -> None:
    line = {
        "bench": "store_write",
        "scenario": scenario,
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_second": round(rows / seconds),
    }
    print(json.dumps(line), flush=True)


def run(directory: Path, durability: Durability) -> None:
    scenarios: list[tuple[str, int, Callable[[], list[WriteBatch]]]] = [
        ("submit_10k_jobs", 10_000, lambda: [submit_batch(10_000, "SUBMITTED")]),
        ("update_10k_jobs", 10_000, lambda: [submit_batch(10_000, "RUNNABLE")]),
        ("steps_1000x10", 20_000, lambda: step_batches(1_000, 10)),
    ]
    store = SqliteStore(directory / f"bench-{durability}.db", durability=durability)
    try:
        for name, rows, make in scenarios:
            report(f"{name}/{durability}", rows, timed(store, make()))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, help="where the database files go")
    parser.add_argument("--durability", choices=["process", "power"], action="append")
    args = parser.parse_args()
    durabilities: list[Durability] = args.durability or ["process", "power"]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for durability in durabilities:
            run(Path(tmp), durability)


if __name__ == "__main__":
    main()
