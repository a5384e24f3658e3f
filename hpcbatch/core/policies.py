"""Step handlers for scheduling policies (AWS's fair-share ``fairsharePolicy``), the rules that
tie queues and jobs to them, and each share's weight factor.

A queue created with ``schedulingPolicyArn`` is a fair-share queue for life (its policy can be
replaced, never removed); a queue created without one stays FIFO (AWS refuses to turn one into
the other by UpdateJobQueue). A policy is deleted only when no queue uses it.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobQueue
from hpcbatch.core.shares import SchedulingPolicy, ShareWeight
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError

MAX_DECAY_S = 604800
MAX_RESERVATION = 99
MAX_SHARES = 500
MIN_WEIGHT_E4, MAX_WEIGHT_E4 = 1, 9999999  # 0.0001 .. 999.9999
DEFAULT_WEIGHT_E4 = 10000


def resolve_policy(state: State, arn: str, field: str = "arn") -> SchedulingPolicy:
    head, _, name = arn.partition(":scheduling-policy/")
    policy = state.policies.get(name) if arn.startswith("arn:") and head else None
    if policy is None:
        known = ", ".join(sorted(p.arn for p in state.policies.values())) or "none yet"
        raise NotFoundError(f"{field}: no scheduling policy {arn!r} (policies: {known})")
    return policy


def _check_policy(decay_s: int, reservation: int, shares: tuple[ShareWeight, ...]) -> None:
    if not 0 <= decay_s <= MAX_DECAY_S:
        raise ValidationError(
            "fairsharePolicy.shareDecaySeconds", f"must be 0-{MAX_DECAY_S} (got {decay_s})"
        )
    if not 0 <= reservation <= MAX_RESERVATION:
        raise ValidationError(
            "fairsharePolicy.computeReservation", f"must be 0-{MAX_RESERVATION} (got {reservation})"
        )
    if len(shares) > MAX_SHARES:
        raise ValidationError(
            "fairsharePolicy.shareDistribution",
            f"may list at most {MAX_SHARES} share identifiers (got {len(shares)})",
        )
    seen: dict[str, int] = {}
    for i, share in enumerate(shares):
        at = f"fairsharePolicy.shareDistribution[{i}]"
        if not MIN_WEIGHT_E4 <= share.weight_e4 <= MAX_WEIGHT_E4:
            raise ValidationError(f"{at}.weightFactor", "must be 0.0001-999.9999")
        if share.identifier in seen:
            raise ValidationError(
                f"{at}.shareIdentifier",
                f"{share.identifier!r} is listed twice (also shareDistribution[{seen[share.identifier]}])",
            )
        seen[share.identifier] = i
    _check_overlap(shares)


def _check_overlap(shares: tuple[ShareWeight, ...]) -> None:
    """AWS: "The list of share identifiers in a fair-share policy can't overlap" (UserA* and
    UserA1), so at most one entry ever matches a share."""
    prefixes = [(i, s.identifier[:-1]) for i, s in enumerate(shares) if s.identifier.endswith("*")]
    for i, prefix in prefixes:
        for j, other in enumerate(shares):
            bare = other.identifier.rstrip("*")
            if j != i and bare.startswith(prefix):
                raise ValidationError(
                    f"fairsharePolicy.shareDistribution[{j}].shareIdentifier",
                    f"{other.identifier!r} overlaps {shares[i].identifier!r} "
                    f"(shareDistribution[{i}]); share identifiers may not overlap",
                )


def create_policy(state: State, e: ev.CreateSchedulingPolicy) -> None:
    if e.name in state.policies:
        raise ConflictError(f"name: scheduling policy {e.name!r} already exists")
    _check_policy(e.decay_s, e.reservation, e.shares)
    state.policies[e.name] = SchedulingPolicy(
        name=e.name,
        arn=state.arn("scheduling-policy", e.name),
        seq=state.next_seq(),
        decay_s=e.decay_s,
        reservation=e.reservation,
        shares=e.shares,
        tags=dict(e.tags),
        has_fairshare=e.fairshare,
    )
    state.changes.touch("scheduling_policy", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", _detail(state.policies[e.name]))


def update_policy(state: State, e: ev.UpdateSchedulingPolicy) -> None:
    policy = resolve_policy(state, e.arn)
    if not e.fairshare:
        return
    _check_policy(e.decay_s, e.reservation, e.shares)
    policy.decay_s, policy.reservation, policy.shares = e.decay_s, e.reservation, e.shares
    policy.has_fairshare = True
    state.changes.touch("scheduling_policy", policy.name)
    state.journal(e.now, e.cause, policy.name, "UPDATED", _detail(policy))


def delete_policy(state: State, e: ev.DeleteSchedulingPolicy) -> None:
    policy = resolve_policy(state, e.arn)
    users = sorted(q.name for q in state.queues.values() if q.policy == policy.name)
    if users:
        raise ConflictError(
            f"arn: scheduling policy {policy.name!r} is used by job queue(s) {', '.join(users)}; "
            "delete those queues first (a queue's policy can be replaced, not removed)"
        )
    del state.policies[policy.name]
    state.changes.drop("scheduling_policy", policy.name)
    state.journal(e.now, e.cause, policy.name, "DELETED", "")


def _detail(policy: SchedulingPolicy) -> str:
    return (
        f"shareDecaySeconds {policy.decay_s} computeReservation {policy.reservation} "
        f"{len(policy.shares)} share weight(s)"
    )


def queue_policy(state: State, arn: str | None, queue: JobQueue | None) -> str | None:
    """The policy name a CreateJobQueue/UpdateJobQueue sets (``queue`` None: a new queue), or
    None to keep what there is; raises when the ARN is unknown or AWS forbids the change."""
    if arn is None:
        return None
    policy = resolve_policy(state, arn, "schedulingPolicyArn")
    if queue is not None and queue.policy is None:
        raise ValidationError(
            "schedulingPolicyArn",
            f"job queue {queue.name} is a FIFO queue; AWS does not turn a FIFO queue into a "
            "fair-share one (create a new queue with the policy)",
        )
    return policy.name


def check_share(state: State, queue: JobQueue, share: str | None) -> None:
    """SubmitJob's rule: a share on a fair-share queue, none on a FIFO queue."""
    if queue.policy is None:
        if share is not None:
            raise ValidationError(
                "shareIdentifier",
                f"is only for fair-share job queues; {queue.name} has no scheduling policy "
                "(FIFO): leave it out",
            )
        return
    if share is None:
        raise ValidationError(
            "shareIdentifier",
            f"is required on job queue {queue.name}: it is a fair-share queue "
            f"(scheduling policy {queue.policy})",
        )
    if share.endswith("*"):
        raise ValidationError(
            "shareIdentifier",
            f"names one share; a trailing * ({share!r}) is only for a policy's shareDistribution",
        )


class Weights:
    """A policy's weight factors by share identifier: an exact entry, else the one prefix
    (``name*``) the share starts with, else 1.0. Built once per pass; O(distinct prefix
    lengths) per look-up."""

    def __init__(self, policy: SchedulingPolicy) -> None:
        self.exact = {
            s.identifier: s.weight_e4 for s in policy.shares if not s.identifier.endswith("*")
        }
        self.prefixes = {
            s.identifier[:-1]: s.weight_e4 for s in policy.shares if s.identifier.endswith("*")
        }
        self.lengths = sorted({len(p) for p in self.prefixes}, reverse=True)

    def of(self, share: str) -> int:
        """The weight factor in ten-thousandths."""
        found = self.exact.get(share)
        if found is not None:
            return found
        for length in self.lengths:
            found = self.prefixes.get(share[:length]) if len(share) >= length else None
            if found is not None:
                return found
        return DEFAULT_WEIGHT_E4
