"""The head's one writer: events in, ``step``, one durable commit per batch, commands out.

Every change to the state happens here, in one asyncio task. Events queue up while a batch is
being committed, so under load many SubmitJob calls share one SQLite transaction (group commit)
and a 10,000-child array costs one write, not 10,000. The order inside a batch is:

1. ``step`` each event (a refused one — ``ClientError`` — changes nothing and fails only its
   caller);
2. schedule once if anything could have freed or needed capacity, and apply the plan (while
   more events wait, a pass that cost more than ``PACED_PASS_S`` is followed by the next no
   sooner than ``PASS_SHARE`` allows: on 1,000 nodes a pass costs milliseconds, and a stream
   of events in small batches would spend most of the loop on passes that each place a few
   jobs; a deferred pass runs as soon as no event waits, or when due);
3. write everything the batch changed in one transaction;
4. only then answer the callers and send the commands — a launch is never sent for a job the
   head could forget, and a caller never hears "submitted" for a job that is not stored.

An ``observer`` (the head's metrics) hears of each committed batch (its journal lines, the
pass and commit durations) and of the time its commands took to send, on this task, so it may
read the State; it must be quick and must not raise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hpcbatch.core import events as ev
from hpcbatch.core import reserved
from hpcbatch.core.commands import Command
from hpcbatch.core.plan import Plan
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.errors import ClientError, HpcbatchError, ServerError, StoreError
from hpcbatch.head.persist import drain_changes
from hpcbatch.store import JournalEntry, Store

log = logging.getLogger("hpcbatch.loop")

MAX_BATCH = 5000
INLINE_WRITE_ROWS = 200
QUIET_EVENTS = (ev.NodeHeartbeat,)
PACED_PASS_S = 0.001  # a pass cheaper than this runs in every batch that needs one
PASS_SHARE = 0.25  # else passes take at most this share of the loop's time

Dispatch = Callable[[list[Command]], Awaitable[None]]
AfterCommit = Callable[[], None]


class BatchObserver(Protocol):
    def batch_committed(
        self, journal: list[JournalEntry], pass_s: float | None, commit_s: float | None
    ) -> None: ...

    def commands_sent(self, seconds: float) -> None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Item:
    event: ev.Event
    future: asyncio.Future[None] | None
    after_commit: AfterCommit | None


class HeadLoop:
    def __init__(
        self,
        state: State,
        store: Store,
        dispatch: Dispatch,
        backfill_depth: int = 200,
        on_fatal: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGTERM),
        observer: BatchObserver | None = None,
    ):
        self.state = state
        self.store = store
        self.dispatch = dispatch
        self.backfill_depth = backfill_depth
        self.on_fatal = on_fatal  # default: SIGTERM ourselves, for a graceful stop
        self.observer = observer
        self.plan = Plan()
        self.batches = 0
        self._pass_pending = False  # a batch needed a pass that has not run yet
        self._next_pass_at = 0.0  # perf_counter: when a pending pass may run (pacing)
        # A deque and an Event, not an asyncio.Queue: agents post several events a job, and
        # the Queue's bookkeeping per put was ~3 % of the head's CPU at 1,000 nodes.
        self._inbox: collections.deque[_Item] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- callers ----------------------------------------------------------------------------

    async def call(self, event: ev.Event) -> None:
        """Apply an event and return once it is durable; raises its ClientError if refused."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(_Item(event, future, None))
        await future

    async def call_all(self, events: Sequence[ev.Event]) -> list[ClientError | None]:
        """Apply several events as one: queued together, they share one batch (a step each,
        one scheduling pass, one commit) and return once durable, each with its own outcome
        (None, or the ClientError that refused it alone), in order."""
        running = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for event in events:
            future: asyncio.Future[None] = running.create_future()
            self._put(_Item(event, future, None))
            futures.append(future)
        outcomes: list[ClientError | None] = []
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, ClientError):
                outcomes.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                outcomes.append(None)
        return outcomes

    def post(self, event: ev.Event, after_commit: AfterCommit | None = None) -> None:
        """Queue an event from an agent or a timer; ``after_commit`` runs once it is durable."""
        self._put(_Item(event, None, after_commit))

    def _put(self, item: _Item) -> None:
        self._inbox.append(item)
        self._arrived.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="head-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._inbox:
                if self._pass_pending:
                    # What has arrived (agents' lines, requests) posts its events first; if none
                    # did, the pending pass runs now in a batch of no events: pacing keeps
                    # passes from crowding out events, it never leaves the loop idle.
                    await asyncio.sleep(0)
                else:
                    self._arrived.clear()
                    await self._arrived.wait()
            inbox = self._inbox
            items = [inbox.popleft() for _ in range(min(len(inbox), MAX_BATCH))]
            try:
                await self._batch(items)
            except Exception as error:
                # A store failure leaves memory ahead of the disk, and a bug may leave a step
                # half done: either way, fail-stop and let a restart reload the durable truth.
                kind = "state could not be stored" if isinstance(error, StoreError) else "bug"
                log.critical("%s; the head stops", kind, exc_info=error)
                self._fail(items, ServerError(f"{kind}; the head is stopping (see its log)"))
                self.on_fatal()
                return

    @staticmethod
    def _fail(items: list[_Item], error: ServerError) -> None:
        for item in items:
            if item.future is not None and not item.future.done():
                item.future.set_exception(error)

    async def _batch(self, items: list[_Item]) -> None:
        commands: list[Command] = []
        outcomes: list[HpcbatchError | None] = []
        busy = False
        for item in items:
            try:
                commands.extend(step(self.state, item.event))
                outcomes.append(None)
                busy = busy or not isinstance(item.event, QUIET_EVENTS)
            except ClientError as error:
                outcomes.append(error)
        pass_s = commit_s = None
        self._pass_pending = self._pass_pending or busy
        due = not items or time.perf_counter() >= self._next_pass_at
        if self._pass_pending and due:
            started = time.perf_counter()
            commands.extend(self._schedule())
            pass_s = time.perf_counter() - started
            self._pass_pending = False
            if pass_s > PACED_PASS_S:
                self._next_pass_at = started + pass_s / PASS_SHARE
        batch = drain_changes(self.state)
        started = time.perf_counter()
        if len(batch.upserts) + len(batch.journal) > INLINE_WRITE_ROWS:
            # A big write goes to a thread so API reads go on; this task stays the only writer.
            await asyncio.to_thread(self.store.write, batch)
            commit_s = time.perf_counter() - started
        elif batch:
            self.store.write(batch)  # small: cheaper than a hop to a thread
            commit_s = time.perf_counter() - started
        self.batches += 1
        if self.observer is not None:
            self.observer.batch_committed(batch.journal, pass_s, commit_s)
        for item, outcome in zip(items, outcomes, strict=True):
            if item.future is not None and not item.future.done():
                if outcome is None:
                    item.future.set_result(None)
                else:
                    item.future.set_exception(outcome)
            if item.after_commit is not None and outcome is None:
                item.after_commit()
        if commands:
            started = time.perf_counter()
            await self.dispatch(commands)
            if self.observer is not None:
                self.observer.commands_sent(time.perf_counter() - started)

    def _schedule(self) -> list[Command]:
        now = now_ms()
        self.plan = schedule(self.state, now, self.backfill_depth)
        quiet = not self.plan.placements and not self.plan.preemptions
        if quiet and not reserved.changes(self.state, self.plan):
            return []  # nothing to start, and the reserved jobs are those recorded
        return step(self.state, ev.PlanApplied(cause="schedule", now=now, plan=self.plan))
