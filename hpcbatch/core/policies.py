"""Step handlers for scheduling policies (AWS's ``fairsharePolicy`` and ``quotaSharePolicy``),
the rules that tie queues and jobs to them, and each share's weight factor.

A queue created with ``schedulingPolicyArn`` keeps a policy for life (it can be replaced, never
removed); a queue created without one never gets one (AWS refuses both by UpdateJobQueue). A
fair-share policy makes a fair-share queue; a quota-share policy a queue whose jobs run in its
quota shares (core/quota_shares.py: as on a policy-less queue with quota shares, hpcbatch's
extension). A policy's kind never changes, and it is deleted only when no queue uses it.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.model import TERMINAL, JobQueue
from hpcbatch.core.quota_shares import check_no_shares
from hpcbatch.core.shares import SchedulingPolicy, ShareWeight
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError

MAX_DECAY_S = 604800
MAX_RESERVATION = 99
MAX_SHARES = 500
MIN_WEIGHT_E4, MAX_WEIGHT_E4 = 1, 9999999  # 0.0001 .. 999.9999
DEFAULT_WEIGHT_E4 = 10000
IDLE_STRATEGIES = ("FIFO",)  # quotaSharePolicy.idleResourceAssignmentStrategy: AWS's only one


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


def _check_kind(fairshare: bool, quota_strategy: str | None, creating: bool) -> None:
    """AWS: "Only one of fairsharePolicy or quotaSharePolicy can be set"; hpcbatch also asks
    for one at creation (a policy of neither kind would be a fair-share one by accident)."""
    if fairshare and quota_strategy is not None:
        raise ValidationError(
            "fairsharePolicy, quotaSharePolicy",
            "give one of them, not both: a policy is of one kind",
        )
    if creating and not fairshare and quota_strategy is None:
        raise ValidationError(
            "fairsharePolicy, quotaSharePolicy",
            "give one of them: a fairsharePolicy (fair share by decayed usage) or a "
            "quotaSharePolicy (the queue's jobs run in its quota shares)",
        )
    if quota_strategy is not None and quota_strategy not in IDLE_STRATEGIES:
        raise ValidationError(
            "quotaSharePolicy.idleResourceAssignmentStrategy",
            f"must be {' or '.join(IDLE_STRATEGIES)} (got {quota_strategy!r})",
        )


def create_policy(state: State, e: ev.CreateSchedulingPolicy) -> None:
    if e.name in state.policies:
        raise ConflictError(f"name: scheduling policy {e.name!r} already exists")
    _check_kind(e.fairshare, e.quota_strategy, creating=True)
    if e.fairshare:
        _check_policy(e.decay_s, e.reservation, e.shares)
    state.policies[e.name] = SchedulingPolicy(
        name=e.name,
        arn=state.arn("scheduling-policy", e.name),
        seq=state.next_seq(),
        decay_s=e.decay_s if e.fairshare else 0,
        reservation=e.reservation if e.fairshare else 0,
        shares=e.shares if e.fairshare else (),
        tags=dict(e.tags),
        has_fairshare=e.fairshare,
        quota_strategy=e.quota_strategy,
    )
    state.changes.touch("scheduling_policy", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", _detail(state.policies[e.name]))


def _users(state: State, policy: SchedulingPolicy) -> list[str]:
    return sorted(
        q.name for q in state.queues.values() if policy.name in (q.policy, q.quota_policy)
    )


def update_policy(state: State, e: ev.UpdateSchedulingPolicy) -> None:
    policy = resolve_policy(state, e.arn)
    _check_kind(e.fairshare, e.quota_strategy, creating=False)
    if not e.fairshare and e.quota_strategy is None:
        return
    if (e.quota_strategy is not None) != policy.is_quota:
        want = "fairsharePolicy" if policy.is_quota else "quotaSharePolicy"
        have = "quota-share" if policy.is_quota else "fair-share"
        users = _users(state, policy)
        used = f"; job queue(s) {', '.join(users)} use it" if users else ""
        raise ConflictError(
            f"{want}: scheduling policy {policy.name!r} is a {have} policy{used}; a policy's "
            "kind never changes (AWS): create a new policy of the other kind"
        )
    if e.quota_strategy is not None:
        policy.quota_strategy = e.quota_strategy
    else:
        _check_policy(e.decay_s, e.reservation, e.shares)
        policy.decay_s, policy.reservation, policy.shares = e.decay_s, e.reservation, e.shares
        policy.has_fairshare = True
    state.changes.touch("scheduling_policy", policy.name)
    state.journal(e.now, e.cause, policy.name, "UPDATED", _detail(policy))


def delete_policy(state: State, e: ev.DeleteSchedulingPolicy) -> None:
    policy = resolve_policy(state, e.arn)
    users = _users(state, policy)
    if users:
        raise ConflictError(
            f"arn: scheduling policy {policy.name!r} is used by job queue(s) {', '.join(users)}; "
            "delete those queues first (a queue's policy can be replaced, not removed)"
        )
    del state.policies[policy.name]
    state.changes.drop("scheduling_policy", policy.name)
    state.journal(e.now, e.cause, policy.name, "DELETED", "")


def _detail(policy: SchedulingPolicy) -> str:
    if policy.quota_strategy is not None:
        return f"quota share idleResourceAssignmentStrategy {policy.quota_strategy}"
    return (
        f"shareDecaySeconds {policy.decay_s} computeReservation {policy.reservation} "
        f"{len(policy.shares)} share weight(s)"
    )


def queue_policy(state: State, arn: str | None, queue: JobQueue | None) -> SchedulingPolicy | None:
    """The policy a CreateJobQueue/UpdateJobQueue sets (``queue`` None: a new queue), or None
    to keep what there is; raises when the ARN is unknown or the change is refused: a queue
    created without a policy never gets one (AWS), a fair-share policy never replaces a
    quota-share one while the queue has quota shares, nor a quota-share policy a fair-share one
    while the queue has unfinished (fair-share) jobs."""
    if arn is None:
        return None
    policy = resolve_policy(state, arn, "schedulingPolicyArn")
    if queue is None:
        return policy
    if queue.policy is None and queue.quota_policy is None:
        raise ValidationError(
            "schedulingPolicyArn",
            f"job queue {queue.name} is a FIFO queue (created without a scheduling policy); "
            "AWS does not give a queue one later (create a new queue with the policy)",
        )
    if not policy.is_quota and queue.quota_policy is not None:
        check_no_shares(state, queue.name)
    if policy.is_quota and queue.policy is not None:
        live = sum(
            1 for j in state.jobs.values() if j.queue == queue.name and j.status not in TERMINAL
        )
        if live:
            raise ConflictError(
                f"schedulingPolicyArn: job queue {queue.name!r} has {live} unfinished "
                f"fair-share job(s); a quota-share policy replaces its fair-share policy "
                f"({queue.policy}) only when they have finished"
            )
    return policy


def set_queue_policy(queue: JobQueue, policy: SchedulingPolicy) -> None:
    queue.policy, queue.quota_policy = (
        (None, policy.name) if policy.is_quota else (policy.name, None)
    )


def check_share(state: State, queue: JobQueue, share: str | None) -> None:
    """SubmitJob's rule on a queue without quota shares: a share on a fair-share queue, none
    on a FIFO queue; a queue with a quota-share policy takes jobs only into its quota shares."""
    if queue.quota_policy is not None:
        raise ValidationError(
            "shareIdentifier",
            f"job queue {queue.name} has a quota-share scheduling policy ({queue.quota_policy}) "
            "and no quota shares yet: create one (CreateQuotaShare) and name it here",
        )
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
