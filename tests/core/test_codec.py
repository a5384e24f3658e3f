"""State survives a round trip through stored documents, indexes and allocations included."""

from __future__ import annotations

import json

from hpcbatch.core import codec
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import Dependency
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from tests.core.sim import Sim, retry


def _dump(state: State) -> dict[str, list[dict]]:
    docs: dict[str, list[dict]] = {
        "compute_environment": [codec.ce_to_doc(c) for c in state.ces.values()],
        "queue": [codec.queue_to_doc(q) for q in state.queues.values()],
        "job_definition": [
            codec.definition_to_doc(d) for r in state.definitions.values() for d in r.values()
        ],
        "node": [codec.node_to_doc(n) for n in state.nodes.values()],
        "job": [codec.job_to_doc(j) for j in state.jobs.values()],
    }
    return json.loads(json.dumps(docs))  # exactly what the store keeps


def test_round_trip_keeps_jobs_indexes_and_allocations() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2, gpus=1)
    first = sim.submit(retry=retry(2), gpus=1)
    sim.submit(array_size=4, depends_on=(Dependency(first.job_id),))
    sim.submit(array_size=3)
    (a, b) = sim.schedule()
    sim.start(a)
    restored = State()
    codec.rebuild(restored, _dump(sim.state))
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
