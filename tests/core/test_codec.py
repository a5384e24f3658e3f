"""State survives a round trip through stored documents, indexes and allocations included."""

from __future__ import annotations

from hpcbatch.core import codec
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import Dependency
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from tests.core.sim import Sim, dump, retry


def test_round_trip_keeps_jobs_indexes_and_allocations() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2, gpus=1)
    first = sim.submit(retry=retry(2), gpus=1)
    sim.submit(array_size=4, depends_on=(Dependency(first.job_id),))
    sim.submit(array_size=3)
    (a, b) = sim.schedule()
    sim.start(a)
    restored = State()
    codec.rebuild(restored, dump(sim.state))
    check_invariants(restored)
    assert {j: x.status for j, x in restored.jobs.items()} == {
        j: x.status for j, x in sim.state.jobs.items()
    }
    node = next(iter(restored.nodes.values()))
    assert node.allocated == next(iter(sim.state.nodes.values())).allocated
    assert restored.dependents == sim.state.dependents
    assert schedule(restored, sim.now) == schedule(sim.state, sim.now)
    assert restored.jobs[first.job_id].spec == first.spec
    assert restored.seq == sim.state.seq
