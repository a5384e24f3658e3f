"""The per-session message budget (head/flood.py), driven by an injected clock: honest agents'
rates never trip it, a burst up to its size passes, a flood trips it, and the reason says how
many messages came in how long, against which limit."""

from __future__ import annotations

import re

from hpcbatch.head.flood import DEFAULT_LIMIT, FloodLimit, MessageBudget

SMALL = FloodLimit(rate=100, burst=1_000)
REASON = re.compile(
    r"agent sent ([\d,]+) messages in ([\d.]+) s \(limit: 100/s, bursts of 1,000\): disconnected"
)


def counted(budget: MessageBudget) -> tuple[int, float]:
    """The messages and seconds the reason gives (which must be the whole reason)."""
    match = REASON.fullmatch(budget.reason())
    assert match is not None, budget.reason()
    return int(match[1].replace(",", "")), float(match[2])


def spend(budget: MessageBudget, count: int, start: float, per_s: float) -> float | None:
    """Spend ``count`` messages sent at ``per_s`` from ``start``; the time of the first refused
    one, or None when all pass."""
    for i in range(count):
        now = start + i / per_s
        if not budget.spend(now):
            return now
    return None


def test_a_full_burst_passes_and_one_more_at_the_same_instant_trips() -> None:
    budget = MessageBudget(SMALL, now=10.0)
    assert all(budget.spend(10.0) for _ in range(1_000))
    assert not budget.tripped
    assert not budget.spend(10.0)
    assert budget.tripped
    assert budget.reason() == (
        "agent sent 1,001 messages in 0.00 s (limit: 100/s, bursts of 1,000): disconnected"
    )


def test_the_sustained_rate_never_trips_however_long() -> None:
    budget = MessageBudget(SMALL, now=0.0)
    assert spend(budget, 100_000, start=0.0, per_s=100) is None  # 1,000 s at the limit


def test_a_tripped_budget_stays_tripped() -> None:
    budget = MessageBudget(SMALL, now=0.0)
    assert spend(budget, 2_000, start=0.0, per_s=1e6) is not None
    assert not budget.spend(3_600.0)  # an hour later: the session is closed, not forgiven


def test_a_flood_trips_when_the_burst_and_the_refill_are_spent() -> None:
    """At 1,100/s against 100/s in bursts of 1,000 the bucket drains by 1,000 a second: it is
    spent 1 s in (1,000 + 100 refilled), and the reason counts those messages."""
    budget = MessageBudget(SMALL, now=0.0)
    tripped = spend(budget, 10_000, start=0.0, per_s=1_100)
    assert tripped is not None and 0.99 < tripped < 1.01
    messages, seconds = counted(budget)
    assert 1_100 <= messages <= 1_102 and seconds == 1.0


def test_the_reason_counts_the_flood_not_the_quiet_hours_before_it() -> None:
    budget = MessageBudget(SMALL, now=0.0)
    assert spend(budget, 36_000, start=0.0, per_s=10) is None  # an hour of honest chatter
    assert spend(budget, 5_000, start=3_600.0, per_s=1e5) is not None
    messages, seconds = counted(budget)  # not 37,000 in an hour: an average hides the flood
    assert 1_001 <= messages <= 1_003 and seconds == 0.01


def test_a_bucket_refills_after_a_burst() -> None:
    budget = MessageBudget(SMALL, now=0.0)
    assert spend(budget, 1_000, start=0.0, per_s=1e6) is None  # empty now
    assert spend(budget, 1_000, start=10.0, per_s=1e6) is None  # 10 s at 100/s: full again
    assert not budget.tripped


def test_a_clock_that_steps_back_refills_nothing() -> None:
    budget = MessageBudget(SMALL, now=100.0)
    assert spend(budget, 1_000, start=100.0, per_s=1e6) is None
    assert not budget.spend(50.0)


def test_the_default_holds_the_busiest_honest_node_we_know_of() -> None:
    """A node of 256 vCPUs running 0.1-s jobs ends 2,560 attempts a second, each possibly in a
    turn (and a message) of its own, and starts them in one message per launch batch: at
    5,000 messages a second for ten minutes, with a heartbeat every 2 s, it is never cut."""
    budget = MessageBudget(DEFAULT_LIMIT, now=0.0)
    assert spend(budget, 3_000_000, start=0.0, per_s=5_000) is None


def test_the_default_absorbs_a_backlog_read_after_the_head_was_busy() -> None:
    """The bucket is spent when the head reads: ten seconds of that busiest node, piled up in
    the socket while the head was busy elsewhere, arrive at once and still pass."""
    budget = MessageBudget(DEFAULT_LIMIT, now=0.0)
    assert spend(budget, 1_000, start=0.0, per_s=5_000) is None
    assert spend(budget, 50_000, start=10.0, per_s=1e7) is None


def test_the_default_cuts_a_tight_loop_within_a_second() -> None:
    budget = MessageBudget(DEFAULT_LIMIT, now=0.0)
    tripped = spend(budget, 200_000, start=0.0, per_s=100_000)
    assert tripped is not None and tripped < 1.0
