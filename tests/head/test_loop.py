"""The head loop with the in-package fakes: group commit, refusals, and fail-stop."""

from __future__ import annotations

import asyncio

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command
from hpcbatch.core.model import JobSpec
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, ServerError, StoreError
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
