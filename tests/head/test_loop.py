"""The head loop with the in-package fakes: group commit, refusals, and fail-stop."""

from __future__ import annotations

import asyncio
import time

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


def test_a_costly_pass_is_paced_while_events_wait_and_runs_once_none_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While events keep arriving, a pass that costs more than PACED_PASS_S (here 20 ms) is
    followed by the next no sooner than its cost / PASS_SHARE later (80 ms), however many
    batches need one meanwhile; once no event waits, the pending pass runs at once (the loop
    never idles with a pass to run), and it sees every event."""
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

    async def scenario() -> tuple[int, float, int]:
        loop = HeadLoop(State(), MemoryStore(), _nothing)
        loop.start()
        events, began = 0, time.perf_counter()
        while time.perf_counter() - began < 0.3:  # an event whenever the loop lets others run
            loop.post(_define(f"d{events}"))
            events += 1
            await asyncio.sleep(0)
        posted = time.perf_counter()
        deadline = posted + 10
        while not (passes and passes[-1][1] == events):
            assert time.perf_counter() < deadline, f"no pass saw every event: {passes}"
            await asyncio.sleep(0.001)
        await loop.stop()
        return loop.batches, posted, events

    batches, posted, events = asyncio.run(scenario())
    assert events > 100
    assert len(passes) < batches / 4, f"{len(passes)} passes for {batches} batches"
    paced = [b[0] - a[0] for a, b in zip(passes, passes[1:], strict=False) if b[0] < posted]
    assert paced, f"no pass ran while events came: {passes}"
    assert min(paced) >= 0.020 / loop_module.PASS_SHARE * 0.999, f"passes too close: {paced}"
    assert passes[-1][0] - posted < 0.5, "the last pass waited though no event did"


def test_a_cheap_pass_runs_in_every_batch_that_needs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small cluster's pass costs microseconds: each call's batch has its own pass, so what
    the call changed has been scheduled when it returns."""
    seen: list[int] = []
    real_schedule = loop_module.schedule

    def counted(state: State, now: int, backfill_depth: int = 200) -> Plan:
        seen.append(len(state.definitions.get("d", {})))
        return real_schedule(state, now, backfill_depth)

    monkeypatch.setattr(loop_module, "schedule", counted)

    async def scenario() -> None:
        loop = HeadLoop(State(), MemoryStore(), _nothing)
        loop.start()
        for i in range(20):
            await loop.call(_define(f"d{i}"))
            assert seen[-1] == i + 1, f"call {i + 1} returned before its pass: {seen}"
        await loop.stop()

    asyncio.run(scenario())
    assert seen == list(range(1, 21))
