"""Fair-share scheduling in the pure core: the order (hand-computed), computeReservation,
decayed usage across a restart, the rules on queues and jobs, and what ``explain`` says."""

from __future__ import annotations

import math

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.explain import Memo, explain
from hpcbatch.core.fairshare import front_of_queue, rank
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.shares import ShareWeight
from hpcbatch.core.usage import decayed, half_life_ms, run_usage, running_by_queue, share_usage
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError
from tests.core.sim import Sim

HALF_LIFE_MS = 600_000
ARN = "arn:aws:batch:local:000000000000:scheduling-policy/fair"


def fair_sim(
    shares: tuple[ShareWeight, ...] = (ShareWeight("A", 10000), ShareWeight("B", 30000)),
    nodes: int = 1,
    vcpus: int = 8,
    reservation: int = 0,
    decay_s: int = 600,
) -> Sim:
    sim = Sim()
    sim.do(
        ev.CreateSchedulingPolicy,
        name="fair",
        decay_s=decay_s,
        reservation=reservation,
        shares=shares,
    )
    sim.do(ev.CreateComputeEnvironment, name="local", ce_type="MANAGED", kind="LOCAL")
    sim.cluster(nodes=nodes, vcpus=vcpus, queue="fifo")
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "local"),), policy_arn=ARN)
    return sim


def shares_of(sim: Sim, job_ids: list[str]) -> str:
    return "".join(sim.state.jobs[j].share or "?" for j in job_ids)


def bid(value: float, adds: float) -> float:
    """A share's bid (core/fairshare.py): the mean value over the cycle its next job starts."""
    return 0.0 if value <= 0 else adds / math.log1p(adds / value)


def test_hand_computed_order_with_known_usage() -> None:
    """A (weight factor 1) ran 8 vCPUs for 30 s, a twentieth of the 600 s half-life: usage
    8 * T * (1 - 2^(-1/20)) = 235.9 vCPU-s (T = 600 / ln 2 = 865.6 s), and its typical run time
    is that attempt's, 30 s (twenty of it: the half-life stays 600 s); B (factor 3) has none of
    its own and takes the queue's, 30 s. A 1-vCPU job adds J = 30 * factor; a share bids
    J / ln(1 + J / value): A 250.6, B 0 -> B (value 90, bid 129.8) -> B (180: 222.0) -> B
    (270: 312.8) -> A (250.6; A 265.9: 280.6) -> A (295.9: 310.6) -> A (325.9: 340.7) -> B
    (312.8; B 360: 403.3) -> A: the share with no usage catches up first, then they interleave
    three to one."""
    sim = fair_sim(nodes=1, vcpus=8)
    seed = sim.submit(queue="q", vcpus=8, share_identifier="A")
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.now += 30_000
    sim.end(launch)
    usage = 8 * 600 / math.log(2) * (1 - 2 ** (-1 / 20))
    assert share_usage(sim.state, "q", "A", sim.now, None, HALF_LIFE_MS) == pytest.approx(usage)
    assert usage == pytest.approx(235.9, abs=0.1)
    assert seed.status.value == "SUCCEEDED"
    assert bid(usage, 30) == pytest.approx(250.6, abs=0.1)
    assert bid(270, 90) == pytest.approx(312.8, abs=0.1)
    for _ in range(6):  # A's jobs first: FIFO would run all of them before B's
        sim.submit(queue="q", share_identifier="A")
    for _ in range(6):
        sim.submit(queue="q", share_identifier="B")
    front = [j.job_id for j in front_of_queue(sim.state, sim.state.queues["q"], sim.now, None)]
    assert shares_of(sim, front[:8]) == "BBBAAABA"
    plan = schedule(sim.state, sim.now)
    assert [p.job_id for p in plan.placements] == front[:8]  # 8 vCPUs: the pass's own order


def test_equal_usage_interleaves_by_weight_within_one_pass() -> None:
    """No usage yet: factors 1 and 3, no attempt ended (a typical run time of 60 s). Both bid 0
    and the older job goes first: A (value 60: bid 86.6) -> B (180: 259.7) -> A (120: 148.0)
    -> A (180: 208.6) -> A (240: 268.9) -> B (360: 443.9) -> A (300: 329.1) -> A."""
    sim = fair_sim(nodes=2, vcpus=4)
    a = [sim.submit(queue="q", share_identifier="A").job_id for _ in range(8)]
    b = [sim.submit(queue="q", share_identifier="B").job_id for _ in range(8)]
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    assert shares_of(sim, placed) == "ABAAABAA"
    assert placed[:3] == [a[0], b[0], a[1]]


def test_priority_orders_within_a_share() -> None:
    sim = fair_sim(nodes=1, vcpus=2)
    low = sim.submit(queue="q", share_identifier="A")
    high = sim.submit(queue="q", share_identifier="A", priority=9)
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    assert placed == [high.job_id, low.job_id]


def test_trailing_star_gives_each_matching_share_the_weight() -> None:
    sim = fair_sim(shares=(ShareWeight("team*", 2500),), nodes=1, vcpus=5)
    for _ in range(5):
        sim.submit(queue="q", share_identifier="teamX")
    for _ in range(5):
        sim.submit(queue="q", share_identifier="other")
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    # both bid 0: teamX's job is older; then teamX (factor 0.25, a 1-vCPU job adds 15) bids
    # 21.6, 37.0, 52.1, 67.2 while other (factor 1) bids 86.6 once it has run one
    assert "".join(sim.state.jobs[j].share[0] for j in placed) == "tottt"  # type: ignore[index]


def test_compute_reservation_keeps_capacity_for_idle_shares() -> None:
    """computeReservation 50 on 8 vCPUs keeps 8 * 0.5**active for shares with no running job:
    one active share may use 4 vCPUs, two 6, three 7."""
    sim = fair_sim(nodes=1, vcpus=8, reservation=50, shares=())
    for _ in range(8):
        sim.submit(queue="q", share_identifier="A")
    assert len(sim.schedule()) == 4
    for _ in range(8):
        sim.submit(queue="q", share_identifier="B")
    assert len(sim.schedule()) == 2
    waiting = next(
        j for j in sim.state.jobs.values() if j.share == "B" and j.status.value == "RUNNABLE"
    )
    assert (explain(sim.state, waiting, now=sim.now) or "").startswith(
        'share "B" waits for computeReservation 50: 2 of the queue\'s 8 vCPUs are kept for '
        "shares with no running job (2 active, 6 vCPUs in use)"
    )
    for _ in range(2):
        sim.submit(queue="q", share_identifier="C")
    assert len(sim.schedule()) == 1  # a third share takes one of the two vCPUs kept


def test_explain_names_the_share_served_first_with_numbers() -> None:
    sim = fair_sim(nodes=1, vcpus=2)
    first = sim.submit(queue="q", share_identifier="A", vcpus=2)
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.now += 30_000
    waiting_a = sim.submit(queue="q", share_identifier="A")
    sim.submit(queue="q", share_identifier="B")
    reason = explain(sim.state, waiting_a, now=sim.now) or ""
    # no attempt has ended: the queue's typical run time is 60 s, the half-life 20 of it
    tau = 1200 / math.log(2)
    usage = 2 * tau * (1 - 2 ** (-30 / 1200))  # 2 vCPUs for 30 s, decayed: 59.5 vCPU-s
    ahead = 2 * 30  # its 2 vCPUs for the rest of the typical 60 s
    assert reason.startswith(
        f'share "A" is over its fair share: usage {usage:.1f} vCPU-s, 2 vCPUs running (60 '
        f"vCPU-s more expected), jobs ~60 s, weight factor 1: priority "
        f'{bid(usage + ahead, 60):.1f} vs "B" usage 0.0 vCPU-s, 0 vCPUs running, jobs ~60 s, '
        f"weight factor 3: priority 0.0, served first"
    )
    assert first.status.value in ("STARTING", "RUNNING")
    memo = Memo()  # one ranking serves every job of the queue
    assert explain(sim.state, waiting_a, now=sim.now, memo=memo) == reason
    assert explain(sim.state, waiting_a, now=sim.now, memo=memo) == reason
    assert list(memo.rankings) == ["q"]


def test_usage_survives_a_restart() -> None:
    sim = fair_sim(nodes=1, vcpus=4)
    for share in "AABB":
        sim.submit(queue="q", share_identifier=share, vcpus=1)
    launches = sim.schedule()
    for launch in launches:
        sim.start(launch)
    sim.now += 90_000
    sim.end(launches[0])
    sim.end(launches[2])
    sim.now += 30_000  # two still run: their usage counts up to now
    for share in "AB":
        sim.submit(queue="q", share_identifier=share)

    def usages() -> dict[str, float]:
        running = running_by_queue(sim.state, sim.now).get("q")
        return {s: share_usage(sim.state, "q", s, sim.now, running, HALF_LIFE_MS) for s in "AB"}

    def order() -> list[str]:
        return [j.job_id for j in front_of_queue(sim.state, sim.state.queues["q"], sim.now, None)]

    before, before_order = usages(), order()
    records = {k: (u.value, u.as_of, u.run_ms, u.run_var) for k, u in sim.state.usage.items()}
    assert before["A"] > 0 and before["B"] > 0
    assert records and all(r[2] == 90_000 for r in records.values())  # both ran 90 s
    sim.restart()
    assert usages() == before
    assert order() == before_order
    after = {k: (u.value, u.as_of, u.run_ms, u.run_var) for k, u in sim.state.usage.items()}
    assert after == records  # typical run times and their spread too


def test_share_rules_on_submit() -> None:
    sim = fair_sim()
    with pytest.raises(ValidationError, match="shareIdentifier: is required on job queue q"):
        sim.submit(queue="q")
    with pytest.raises(ValidationError, match="shareIdentifier: is only for fair-share"):
        sim.submit(queue="fifo", share_identifier="A")
    with pytest.raises(ValidationError, match="trailing"):
        sim.submit(queue="q", share_identifier="A*")


def test_array_children_and_gang_nodes_inherit_the_share() -> None:
    sim = fair_sim(nodes=4, vcpus=4)
    parent = sim.submit(queue="q", share_identifier="B", array_size=3)
    assert {c.share for c in sim.state.children_of(parent)} == {"B"}
    sim.gang_definition(nodes=2)
    gang = sim.submit_gang(queue="q", share_identifier="A")
    assert sim.node(gang, 0).share == sim.node(gang, 1).share == "A"
    sim.run_all()
    assert parent.status.value == "SUCCEEDED"


def test_queue_and_policy_rules() -> None:
    sim = fair_sim()
    with pytest.raises(NotFoundError, match="schedulingPolicyArn: no scheduling policy"):
        sim.do(
            ev.CreateJobQueue, name="q2", priority=1, ce_order=((1, "local"),), policy_arn=ARN + "x"
        )
    with pytest.raises(ValidationError, match="schedulingPolicyArn: job queue fifo is a FIFO"):
        sim.do(ev.UpdateJobQueue, ref="fifo", policy_arn=ARN)
    sim.do(ev.CreateSchedulingPolicy, name="other")
    sim.do(ev.UpdateJobQueue, ref="q", policy_arn=ARN.replace("fair", "other"))
    assert sim.state.queues["q"].policy == "other"
    with pytest.raises(ConflictError, match="used by job queue\\(s\\) q"):
        sim.do(ev.DeleteSchedulingPolicy, arn=ARN.replace("fair", "other"))
    sim.do(ev.DeleteSchedulingPolicy, arn=ARN)
    assert "fair" not in sim.state.policies
    with pytest.raises(ValidationError, match="overlaps"):
        sim.do(
            ev.CreateSchedulingPolicy,
            name="bad",
            shares=(ShareWeight("UserA*"), ShareWeight("UserA1")),
        )
    with pytest.raises(ValidationError, match="weightFactor"):
        sim.do(ev.CreateSchedulingPolicy, name="bad", shares=(ShareWeight("x", 0),))


def test_explain_says_when_the_half_life_is_longer_than_share_decay_seconds() -> None:
    """A 60 s shareDecaySeconds against jobs of about 60 s (no attempt ended: the default):
    usage decays over twenty of them, and the reason says so; with 1200 s it does not."""
    for decay_s, hinted in ((60, True), (1200, False)):
        sim = Sim()
        sim.do(ev.CreateSchedulingPolicy, name="fair", decay_s=decay_s, shares=())
        sim.cluster(nodes=1, vcpus=1, queue="fifo")
        sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "local"),), policy_arn=ARN)
        running = sim.submit(queue="q", share_identifier="A")
        (launch,) = sim.schedule()
        sim.start(launch)
        waiting = sim.submit(queue="q", share_identifier="A")
        sim.submit(queue="q", share_identifier="B")
        reason = explain(sim.state, waiting, now=sim.now) or ""
        assert reason.startswith('share "A" is over its fair share: '), reason
        hint = (
            "; usage decays with a half-life of 1200 s, 20 of the queue's typical run time "
            "(~60 s), not shareDecaySeconds 60: "
        )
        assert (hint in reason) is hinted, reason
        assert running.status.value in ("STARTING", "RUNNING")


def test_the_half_life_spans_at_least_twenty_typical_run_times() -> None:
    """shareDecaySeconds 60 against jobs of 200 s and 100 s: the queue's typical run time is
    their mean, 150 s, and usage decays with a half-life of twenty of it, 3000 s, the same after
    a restart; with jobs of 2 s it is shareDecaySeconds again."""
    sim = fair_sim(nodes=1, vcpus=2, decay_s=60)
    policy, queue = sim.state.policies["fair"], sim.state.queues["q"]
    assert half_life_ms(sim.state, "q", policy) == 1_200_000  # no job ended: 20 * 60 s by default
    a, b = sim.submit(queue="q", share_identifier="A"), sim.submit(queue="q", share_identifier="B")
    launches = {sim.state.jobs[launch.job_id].share: launch for launch in sim.schedule()}
    for launch in launches.values():
        sim.start(launch)
    start = sim.now
    sim.now += 100_000
    sim.end(launches["B"])
    sim.now += 100_000
    sim.end(launches["A"])
    assert a.status.value == b.status.value == "SUCCEEDED"
    assert half_life_ms(sim.state, "q", policy) == 3_000_000
    sim.now += 50_000
    for share in "AB":
        sim.submit(queue="q", share_identifier=share)
    standing = rank(sim.state, queue, sim.now).order.standing
    # each attempt is folded with the half-life in effect once it counts, and decays with the
    # one in effect when asked: B's ended first, when the queue knew only B's 100 s (2000 s)
    a_usage = run_usage(1000, start, start + 200_000, sim.now, 3_000_000)
    b_usage = decayed(
        run_usage(1000, start, start + 100_000, start + 100_000, 2_000_000), 150_000, 3_000_000
    )
    assert standing["A"].usage == pytest.approx(a_usage)
    assert standing["B"].usage == pytest.approx(b_usage)
    reason = explain(sim.state, sim.state.jobs[max(sim.state.jobs)], now=sim.now) or ""
    typical = sim.state.run_times["q"]
    assert (typical.run_ms, typical.run_var, typical.count) == (150_000, 50_000**2, 2)
    sim.restart()
    assert sim.state.run_times == {"q": typical}
    assert half_life_ms(sim.state, "q", sim.state.policies["fair"]) == 3_000_000
    assert (explain(sim.state, sim.state.jobs[max(sim.state.jobs)], now=sim.now) or "") == reason

    short = fair_sim(nodes=1, vcpus=1, decay_s=60)
    job = short.submit(queue="q", share_identifier="A")
    (launch,) = short.schedule()
    short.start(launch)
    short.now += 2_000
    short.end(launch)
    assert job.status.value == "SUCCEEDED"
    assert half_life_ms(short.state, "q", short.state.policies["fair"]) == 60_000
