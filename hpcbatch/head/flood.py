"""How many messages one agent may send the head: a token bucket per session, and the reason a
node reads in ``hpcbatch nodes`` when its agent spent more.

Vocabulary:
    message    one line an agent sends after its hello (``updates``, ``heartbeat``, ``gpus``,
               ``error``, a ``log_data`` nobody asked for): each becomes work for the head's one
               loop, whatever it carries. A ``log_data`` answering the head's own ``read_log``
               is not counted (the head's requests bound those), nor is the hello, however many
               attempts its spool replays.
    budget     a token bucket: ``burst`` tokens when full, refilled at ``rate`` a second; each
               message spends one, and a message that finds none left trips it.
    run        the messages since the bucket was last full: the ones that emptied it. The
               reason counts them and the seconds they took, which is the flood as it happened
               (a session's lifetime average would hide a flood after a day of quiet).

Why 10,000 a second, in bursts of 50,000 (``DEFAULT_LIMIT``; ``agent_message_rate`` and
``agent_message_burst`` in the head's config): an honest agent batches. It sends a heartbeat
every 2 s, one ``updates`` message a turn of its loop (however many attempts started or ended
in it), and replays its spool in the hello. A busy node of 8 vCPUs with 1-second jobs sends
about 16 messages a second; the most we can see an honest node send is a node of 256 vCPUs
with 0.1-second jobs — 2,560 ends a second, each possibly in its own turn, plus one message
per launch batch the head sends it — a few thousand a second. 10,000 is over twice that. The
bucket is spent when the head *reads*, not when the agent sends, so the burst must absorb what
piles up while the head is busy elsewhere: 50,000 is ten seconds of a node at 5,000 a second,
and hours of an ordinary one. A broken agent sending heartbeats in a tight loop is cut once it
has spent the burst: a real head at these defaults, flooded by bench/simnodes.py's flooding
node, read about 56,000 messages in 0.6 s and kept answering its API (median read time
unchanged, the slowest 0.2 s; 2026-11-30, 3 nodes, a shared 2-core machine); the supervisor then waits 5 s before it reconnects, so a
node that floods for ever costs the head about a tenth of its loop, not all of it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FloodLimit:
    """At most ``rate`` messages a second from one agent, in bursts of up to ``burst`` (both
    at least 1: the head's config checks them, config.py)."""

    rate: int = 10_000
    burst: int = 50_000

    def __str__(self) -> str:
        return f"limit: {self.rate:,}/s, bursts of {self.burst:,}"


DEFAULT_LIMIT = FloodLimit()


class MessageBudget:
    """One session's token bucket. Pure: ``now`` (seconds, any monotonic origin) is given to
    every call, so a test drives it with numbers and the session with ``time.monotonic``."""

    def __init__(self, limit: FloodLimit, now: float) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._at = now  # when _tokens was last brought up to date
        self._run_began = now  # when the bucket was last full
        self._run = 0  # messages since then

    def spend(self, now: float) -> bool:
        """Count one message at ``now``; False once the budget is spent (this message and every
        later one: a tripped budget does not recover, its session is to be closed)."""
        if self._tokens < 0:
            return False
        refilled = self._tokens + max(now - self._at, 0.0) * self.limit.rate
        self._at = max(now, self._at)
        if refilled >= self.limit.burst:
            self._tokens = float(self.limit.burst)
            self._run_began, self._run = now, 0
        else:
            self._tokens = refilled
        self._run += 1
        self._tokens -= 1
        return self._tokens >= 0

    @property
    def tripped(self) -> bool:
        return self._tokens < 0

    def reason(self) -> str:
        """What ``hpcbatch nodes`` says of a node whose agent tripped this budget."""
        seconds = max(self._at - self._run_began, 0.0)
        return (
            f"agent sent {self._run:,} messages in {_seconds(seconds)} s ({self.limit}): "
            "disconnected"
        )


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"
