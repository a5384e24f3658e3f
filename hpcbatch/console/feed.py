"""What changed, batch by batch, for the console's live pages.

The loop tells its observer of each committed batch (``head/loop.py``); ``ConsoleFeed`` sits in
front of the head's metrics as that observer, passes every call on, and keeps a version number
that grows with each batch that journaled anything. A live page waits for the next version
(``wait``), at no cost while nothing changes, and renders on its own time. This runs on the
loop's commit path, so it only counts and wakes: it reads no journal line, renders nothing.
"""

from __future__ import annotations

import asyncio

from hpcbatch.head.loop import BatchObserver
from hpcbatch.store import JournalEntry


class ConsoleFeed:
    def __init__(self, inner: BatchObserver | None = None) -> None:
        self.inner = inner
        self.version = 0
        self.closed = False
        self._waiters: set[asyncio.Future[None]] = set()  # the pages waiting now

    # --- the loop's side (BatchObserver) ----------------------------------------------------

    def batch_committed(
        self, journal: list[JournalEntry], pass_s: float | None, commit_s: float | None
    ) -> None:
        if self.inner is not None:
            self.inner.batch_committed(journal, pass_s, commit_s)
        if not journal:
            return
        self.version += 1
        self._wake()

    def commands_sent(self, seconds: float) -> None:
        if self.inner is not None:
            self.inner.commands_sent(seconds)

    # --- the pages' side --------------------------------------------------------------------

    async def wait(self, version: int, timeout: float) -> None:
        """Return once the version is past ``version``, after ``timeout`` seconds, or at
        once when the feed is closed (the head is stopping). One future and one timer a wait:
        a hundred open pages cost a hundred of each per change, and nothing between."""
        if self.version > version or self.closed:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    def close(self) -> None:
        """The head is stopping: every live page's stream ends now, so the server's graceful
        stop does not wait on them (browsers reconnect to the next head)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            _settle(waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
