"""An array's children that never changed are not stored (one document for a 10,000-child
array, not 10,001) and come back from their parent when the head loads its store: the state
loaded equals the state stored, child by child (head/persist.py, core/codec.py)."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import Dependency, JobStatus
from hpcbatch.errors import StoreError
from hpcbatch.head.persist import drain_changes, load_state
from hpcbatch.store import MemoryStore, WriteBatch
from tests.core.sim import Sim, dump


def jobs_of(docs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {d["job_id"]: d for d in docs["job"]}


def test_children_born_runnable_are_stored_only_once_they_change() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2)
    store = MemoryStore()
    plain = sim.submit(array_size=5)
    chained = sim.submit(array_size=5, depends_on=(Dependency(plain.job_id, "N_TO_N"),))
    launches = sim.schedule()  # two children of the plain array start
    sim.start(launches[0])
    store.write(drain_changes(sim.state))
    stored = {key for key, _ in store.load("job")}
    started = {launch.job_id for launch in launches}
    assert len(started) == 2 and started < stored
    # the plain array's other children are as they were born: not stored
    assert {f"{plain.job_id}:{i}" for i in range(5)} & stored == started
    # a dependent array's children wait on something: each is stored
    assert {f"{chained.job_id}:{i}" for i in range(5)} <= stored

    restored = load_state(store, sim.state.region, sim.state.account)
    check_invariants(restored)
    assert jobs_of(dump(restored)) == jobs_of(dump(sim.state))
    assert restored.jobs[f"{plain.job_id}:4"].status is JobStatus.RUNNABLE
    assert len(restored.runnable["q"]) == len(sim.state.runnable["q"]) == 3


def test_a_child_that_changed_and_its_unchanged_siblings_load_back_after_more_batches() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    store = MemoryStore()
    parent = sim.submit(array_size=4)
    store.write(drain_changes(sim.state))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.end(launch)
    store.write(drain_changes(sim.state))
    assert len(store.load("job")) == 2  # the parent and the child that ran
    restored = load_state(store, sim.state.region, sim.state.account)
    check_invariants(restored)
    assert jobs_of(dump(restored)) == jobs_of(dump(sim.state))
    summary = restored.child_counts[parent.job_id]
    assert summary[JobStatus.SUCCEEDED] == 1 and summary[JobStatus.RUNNABLE] == 3


def test_a_job_document_that_is_not_json_is_refused_naming_it() -> None:
    store = MemoryStore()
    batch = WriteBatch()
    batch.put("job", "j1", "{not json")
    store.write(batch)
    with pytest.raises(StoreError, match="not JSON: '{not json'"):
        load_state(store, "local", "000000000000")
