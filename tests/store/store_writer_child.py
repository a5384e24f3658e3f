"""Child process for the kill -9 test: writes batches forever, printing each number once stored.

Run as ``python store_writer_child.py DB_PATH DURABILITY``. Batch ``i`` holds ``ROWS`` job records
keyed ``b{i:06d}-{j:04d}``, ``ROWS`` journal entries with subject ``b{i:06d}``, and sets meta
``last_batch`` to ``i``: the parent checks each batch is there whole or not at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hpcbatch.store import Durability, SqliteStore, WriteBatch

ROWS = 200
DOC = '{"pad":"' + "x" * 500 + '"}'


def make_batch(i: int) -> WriteBatch:
    batch = WriteBatch()
    for j in range(ROWS):
        batch.put("job", f"b{i:06d}-{j:04d}", DOC)
        batch.log(i, f"cause-{i}", f"b{i:06d}", f"E{j}")
    batch.set_meta("last_batch", str(i))
    return batch


def main() -> None:
    durability: Durability = "power" if sys.argv[2] == "power" else "process"
    store = SqliteStore(Path(sys.argv[1]), durability=durability)
    i = 0
    while True:
        store.write(make_batch(i))
        sys.stdout.write(f"{i}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    main()
