"""The head loop with the in-package fakes: group commit, refusals, and fail-stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command
from hpcbatch.core.model import JobSpec
from hpcbatch.core.plan import Plan
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, ServerError, StoreError
from hpcbatch.head import loop as loop_module
from hpcbatch.head.loop import HeadLoop
from hpcbatch.store import MemoryStore, WriteBatch


class BrokenStore(MemoryStore):
    def write(self, batch: WriteBatch) -> None:
        raise StoreError("write /x/state.db: disk full")


async def _nothing(commands: list[Command]) -> None:
    del commands


def _define(cause: str) -> ev.RegisterJobDefinition:
    return ev.RegisterJobDefinition(
        cause=cause, now=1, name="d", def_type="container", spec=JobSpec(command=("true",))
    )


def test_concurrent_calls_share_one_commit_and_refusals_change_nothing() -> None:
    async def scenario() -> tuple[int, MemoryStore]:
        store = MemoryStore()
        loop = HeadLoop(State(), store, _nothing)
        loop.start()
        ce = ev.CreateComputeEnvironment(
            cause="c", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"
        )
        results = await asyncio.gather(
            loop.call(ce),
            loop.call(ce),
            *(loop.call(_define(f"d{i}")) for i in range(20)),
            return_exceptions=True,
        )
        await loop.stop()
        assert [type(r) for r in results[:2]] == [type(None), ConflictError]
        return loop.batches, store

    batches, store = asyncio.run(scenario())
    assert batches == 1
    assert len(store.load("job_definition")) == 20
    assert [k for k, _ in store.load("compute_environment")] == ["ce"]


def test_a_store_failure_fails_the_callers_and_stops_the_head() -> None:
    stopped: list[bool] = []

    async def scenario() -> None:
        loop = HeadLoop(State(), BrokenStore(), _nothing, on_fatal=lambda: stopped.append(True))
        loop.start()
        with pytest.raises(ServerError, match="state could not be stored"):
            await loop.call(_define("x"))
        await loop.stop()

    asyncio.run(scenario())
    assert stopped == [True]


def test_call_all_applies_events_in_one_batch_each_with_its_own_outcome() -> None:
    """What CancelJobs and TerminateJobs rely on: their events share one step pass and one
    commit, and a refused one fails alone, in its place."""

    async def scenario() -> tuple[list[object], int, MemoryStore]:
        store = MemoryStore()
        loop = HeadLoop(State(), store, _nothing)
        loop.start()
        ce = ev.CreateComputeEnvironment(
            cause="c", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"
        )
        outcomes = await loop.call_all([ce, _define("a"), ce, _define("b")])
        await loop.stop()
        return [type(o) for o in outcomes], loop.batches, store

    outcomes, batches, store = asyncio.run(scenario())
    assert outcomes == [type(None), type(None), ConflictError, type(None)]
    assert batches == 1
    assert len(store.load("job_definition")) == 2


def test_a_costly_pass_is_paced_and_a_deferred_pass_runs_without_more_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass that costs more than PACED_PASS_S (here 20 ms) is followed by the next no sooner
    than its cost / PASS_SHARE later (80 ms), however many batches need one meanwhile; the pass
    a batch needed still runs once due, though no event comes after it."""
    passes: list[tuple[float, int]] = []  # when each pass started, how many revisions it saw
    real_schedule = loop_module.schedule

    def slow_schedule(state: State, now: int, backfill_depth: int = 200) -> Plan:
        started = time.perf_counter()
        passes.append((started, len(state.definitions.get("d", {}))))
        plan = real_schedule(state, now, backfill_depth)
        while time.perf_counter() - started < 0.020:  # a pass as costly as 1,000 nodes' and more
            pass
        return plan

    monkeypatch.setattr(loop_module, "schedule", slow_schedule)

    async def until(check: Callable[[], bool]) -> None:
        deadline = time.perf_counter() + 10
        while not check():
            assert time.perf_counter() < deadline, f"not within 10 s; passes: {passes}"
            await asyncio.sleep(0.001)

    async def scenario() -> tuple[int, float]:
        loop = HeadLoop(State(), MemoryStore(), _nothing)
        loop.start()
        for i in range(40):
            await loop.call(_define(f"d{i}"))  # one batch each, each wanting a pass
        # The pass that saw the 40th has just ended (it holds the loop): the next is ~60 ms away.
        await until(lambda: passes[-1][1] == 40)
        await loop.call(_define("last"))
        answered = time.perf_counter()
        await until(lambda: passes[-1][1] == 41)
        await loop.stop()
        return loop.batches, answered

    batches, answered = asyncio.run(scenario())
    assert passes[-1][0] > answered, "the last batch's pass ran in the batch: not deferred"
    assert len(passes) < batches / 2, f"{len(passes)} passes for {batches} batches"
    gaps = [b[0] - a[0] for a, b in zip(passes, passes[1:], strict=False)]
    assert min(gaps) >= 0.020 / loop_module.PASS_SHARE * 0.999, f"passes too close: {gaps}"
