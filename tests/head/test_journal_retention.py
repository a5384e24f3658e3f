"""The journal keeps as long as the jobs do: lines older than ``retention_days`` are dropped
at the head's purge (the first a second after it starts, then every 10 minutes), so a
steady stream of jobs does not grow the store for ever; newer lines stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hpcbatch.head.config import load_config
from hpcbatch.head.loop import now_ms
from hpcbatch.head.service import Head
from hpcbatch.store import SqliteStore, WriteBatch

DEADLINE_S = 15.0


def test_journal_lines_older_than_the_retention_are_dropped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    batch = WriteBatch()
    eight_days_ago = now_ms() - 8 * 86_400_000
    batch.log(eight_days_ago, "c1", "old-job", "SUBMITTED", "long gone")
    batch.log(now_ms(), "c2", "new-job", "SUBMITTED", "recent")
    store.write(batch)
    store.close()

    async def main() -> None:
        config = load_config(None, data_dir=tmp_path, listen="127.0.0.1:0")
        config = type(config)(**{**config.__dict__, "local": type(config.local)(nodes=0)})
        head = Head(config)
        await head.start()
        try:
            deadline = time.monotonic() + DEADLINE_S
            while head.store.history("old-job"):
                assert time.monotonic() < deadline, "the old line was never pruned"
                await asyncio.sleep(0.05)
            assert [e.detail for e in head.store.history("new-job")] == ["recent"]
        finally:
            await head.stop()

    asyncio.run(main())
