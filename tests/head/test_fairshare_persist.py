"""Fair share survives a head restart through the store itself (head/persist.py): the policy,
the queue's tie to it, each job's share and the decayed usage records load back, and usage and
dispatch order computed after the restart equal those computed before it."""

from __future__ import annotations

from hpcbatch.core.fairshare import front_of_queue
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.usage import running_by_queue, share_usage
from hpcbatch.head.persist import drain_changes, load_state
from hpcbatch.store import MemoryStore
from tests.core.test_fairshare import HALF_LIFE_MS, fair_sim


def test_usage_and_order_survive_the_store() -> None:
    sim = fair_sim(nodes=1, vcpus=4)
    store = MemoryStore()
    for share in "AABB":
        sim.submit(queue="q", share_identifier=share)
    launches = sim.schedule()
    for launch in launches:
        sim.start(launch)
    sim.now += 120_000
    sim.end(launches[0])
    sim.end(launches[1])
    sim.now += 45_000
    for share in "ABAB":
        sim.submit(queue="q", share_identifier=share, array_size=2)
    store.write(drain_changes(sim.state))
    restored = load_state(store, sim.state.region, sim.state.account)
    check_invariants(restored)
    assert restored.policies.keys() == {"fair"} and restored.queues["q"].policy == "fair"
    assert restored.usage == sim.state.usage and restored.usage
    assert restored.run_times == sim.state.run_times and restored.run_times["q"].count == 2
    for state in (sim.state, restored):
        running = running_by_queue(state, sim.now).get("q")
        assert running is not None
    before = {
        s: share_usage(
            sim.state, "q", s, sim.now, running_by_queue(sim.state, sim.now)["q"], HALF_LIFE_MS
        )
        for s in "AB"
    }
    after = {
        s: share_usage(
            restored, "q", s, sim.now, running_by_queue(restored, sim.now)["q"], HALF_LIFE_MS
        )
        for s in "AB"
    }
    assert after == before
    order = [j.job_id for j in front_of_queue(sim.state, sim.state.queues["q"], sim.now, None)]
    again = [j.job_id for j in front_of_queue(restored, restored.queues["q"], sim.now, None)]
    assert again == order and len(order) == 8
