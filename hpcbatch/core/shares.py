"""The vocabulary of fair-share scheduling (AWS scheduling policies).

- **share**: a job's ``shareIdentifier`` on a queue with a scheduling policy; array children and
  the nodes of a multi-node job carry their parent's.
- **weight factor**: AWS's ``weightFactor``: a LOWER factor gets MORE capacity (0.125 gets 8 times
  what 1.0 gets). Kept in ten-thousandths (``weight_e4``) so it never drifts.
- **usage**: a share's vCPU-seconds on its queue, decayed with the policy's half-life
  (core/usage.py). ``ShareUsage`` holds the part from ended attempts, persisted per
  ``(queue, share)``; running attempts are added from their start times when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ShareWeight:
    """One ``shareDistribution`` entry: ``identifier`` (a trailing ``*`` makes it a prefix that
    gives each identifier starting with it this weight) and AWS's ``weightFactor`` in
    ten-thousandths (1.0 is 10000): a LOWER factor gets MORE capacity, as AWS defines it."""

    identifier: str
    weight_e4: int = 10000


@dataclass(slots=True)
class SchedulingPolicy:
    """A scheduling policy of one of AWS's two kinds. A fair-share policy (core/fairshare.py):
    ``decay_s`` is AWS's ``shareDecaySeconds`` as given (0 means AWS's default window, 600 s);
    ``reservation`` is ``computeReservation`` (0-99). A quota-share policy
    (``quota_strategy`` set: its ``idleResourceAssignmentStrategy``, only ``FIFO``) marks a
    queue whose jobs run in its quota shares (core/quota_shares.py); its fair-share fields
    are unused. A queue names a fair-share policy in ``JobQueue.policy``, a quota-share one in
    ``JobQueue.quota_policy``; a policy's kind never changes while a queue uses it."""

    name: str
    arn: str
    seq: int
    decay_s: int = 0
    reservation: int = 0
    shares: tuple[ShareWeight, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    has_fairshare: bool = True  # False: no fairsharePolicy (a quota-share policy, or a legacy one)
    quota_strategy: str | None = None  # set: a quota-share policy

    @property
    def is_quota(self) -> bool:
        return self.quota_strategy is not None


@dataclass(slots=True)
class ShareUsage:
    """The decayed vCPU-seconds of the ended attempts of one share of one queue, as of
    ``as_of`` (epoch ms): folded in when each attempt ends (core/usage.py)."""

    value: float = 0.0
    as_of: int = 0
    run_ms: float = 0.0  # the share's typical attempt run time (usage.RUN_AVERAGE); 0: none yet
    run_var: float = 0.0  # and how much run times vary about it (a moving variance, ms²)


@dataclass(slots=True)
class QueueRunTime:
    """A fair-share queue's typical attempt run time, over all its shares' ended attempts: their
    mean and variance for the first ``usage.QUEUE_RUN_AVERAGE``, a moving average from then on
    (core/usage.py). It sets the half-life in effect, so it moves slowly."""

    run_ms: float = 0.0
    run_var: float = 0.0  # ms²
    count: int = 0  # ended attempts counted, up to QUEUE_RUN_AVERAGE
