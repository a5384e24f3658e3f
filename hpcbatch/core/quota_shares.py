"""Create, update and delete quota shares, and which share a submitted job joins.

A quota share belongs to one job queue; its ARN is
``arn:aws:batch:<region>:<account>:job-queue/<queue>/quota-share/<name>``, so its name is unique
within its queue (two queues may each have a share "a"). A queue with quota shares has a
quota-share scheduling policy (AWS's way) or none (hpcbatch's extension), never a fair-share
one (fair share orders by decayed usage, quota shares by guaranteed capacity: one queue follows
one of them). Every handler checks before it changes anything.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.model import QUOTA_UNITS, TERMINAL, JobQueue, QuotaShare
from hpcbatch.core.quotas import borrow_room, over, quota_of, share_uses
from hpcbatch.core.resolve import resolve_queue
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError

STRATEGIES = ("RESERVE", "LEND", "LEND_AND_BORROW")
SHARE_MARK = "/quota-share/"


def resolve_share(state: State, ref: str, field: str = "quotaShareArn") -> QuotaShare:
    """A share by its ARN (or ``<queue>/quota-share/<name>``, the ARN's resource part)."""
    resource = ref.partition(":job-queue/")[2] if ref.startswith("arn:") else ref
    queue, _, name = resource.partition(SHARE_MARK)
    if not queue or not name:
        raise NotFoundError(
            f"{field}: {ref!r} is not a quota share ARN "
            "(arn:aws:batch:<region>:<account>:job-queue/<queue>/quota-share/<name>)"
        )
    share = state.quota_shares.get(f"{queue}/{name}")
    if share is None:
        raise NotFoundError(f"{field}: job queue {queue!r} has no quota share named {name!r}")
    return share


def _limits(limits: tuple[tuple[str, int], ...]) -> dict[str, int]:
    if not limits:
        raise ValidationError("capacityLimits", "must name at least one capacity unit")
    out: dict[str, int] = {}
    for i, (unit, value) in enumerate(limits):
        if unit not in QUOTA_UNITS:
            raise ValidationError(
                f"capacityLimits[{i}].capacityUnit",
                f"must be one of {', '.join(QUOTA_UNITS)} (got {unit!r}): hpcbatch shares "
                "vCPUs, GPUs and memory in MiB, not instance types",
            )
        if unit in out:
            raise ValidationError(f"capacityLimits[{i}].capacityUnit", f"names {unit} twice")
        if value < 0:
            raise ValidationError(f"capacityLimits[{i}].maxCapacity", "must be 0 or more")
        out[unit] = value
    return out


def _sharing(strategy: str, borrow_limit: int | None) -> int:
    field = "resourceSharingConfiguration"
    if strategy not in STRATEGIES:
        raise ValidationError(f"{field}.strategy", f"must be one of {', '.join(STRATEGIES)}")
    if borrow_limit is None:
        return -1
    if strategy != "LEND_AND_BORROW":
        raise ValidationError(
            f"{field}.borrowLimit", f"only applies to strategy LEND_AND_BORROW (got {strategy})"
        )
    if borrow_limit < -1:
        raise ValidationError(f"{field}.borrowLimit", "must be -1 (unlimited) or 0 or more")
    return borrow_limit


def check_no_policy(queue: JobQueue) -> None:
    """Quota shares and a fair-share policy exclude each other on one queue."""
    if queue.policy is not None:
        raise ConflictError(
            f"jobQueue: {queue.name!r} has a fair-share scheduling policy "
            f"({queue.policy}); quota shares go on a queue with a quota-share policy (or none)"
        )


def check_no_shares(state: State, queue: str) -> None:
    """The other side of ``check_no_policy``: a queue with quota shares takes no fair-share
    policy."""
    names = sorted(s.name for s in state.quota_shares.values() if s.queue == queue)
    if names:
        raise ConflictError(
            f"schedulingPolicyArn: job queue {queue!r} has quota shares ({', '.join(names)}); "
            "a fair-share policy goes only on a queue without them (delete them first)"
        )


def create_share(state: State, e: ev.CreateQuotaShare) -> QuotaShare:
    if not e.name.isascii() or not e.name.isalnum() or len(e.name) > 128:
        raise ValidationError(
            "quotaShareName",
            f"must be 1-128 letters and digits (got {e.name!r}): jobs join a quota share by "
            "naming it in SubmitJob's shareIdentifier, which AWS limits to letters and digits",
        )
    queue = resolve_queue(state, e.queue)
    key = f"{queue.name}/{e.name}"
    if key in state.quota_shares:
        raise ConflictError(f"quotaShareName: job queue {queue.name!r} already has {e.name!r}")
    check_no_policy(queue)
    _check_no_loose_jobs(state, queue)
    limits = _limits(e.limits)
    borrow_limit = _sharing(e.strategy, e.borrow_limit)
    share = QuotaShare(
        name=e.name,
        queue=queue.name,
        arn=state.arn("job-queue", f"{queue.name}{SHARE_MARK}{e.name}"),
        limits=limits,
        strategy=e.strategy,
        borrow_limit=borrow_limit,
        in_share_preemption=e.in_share_preemption,
        state=e.state,
        seq=state.next_seq(),
        tags=dict(e.tags),
    )
    state.quota_shares[key] = share
    state.changes.touch("quota_share", key)
    state.journal(e.now, e.cause, key, "CREATED", _describe(share))
    return share


def _check_no_loose_jobs(state: State, queue: JobQueue) -> None:
    """A queue's first share comes while it has no unfinished jobs: then every job of a queue
    with shares has one, and the scheduler never meets a job outside them."""
    if any(s.queue == queue.name for s in state.quota_shares.values()):
        return
    loose = sum(
        1 for j in state.jobs.values() if j.queue == queue.name and j.status not in TERMINAL
    )
    if loose:
        raise ConflictError(
            f"jobQueue: {queue.name!r} has {loose} unfinished job(s) outside any quota share; "
            "give a queue its quota shares while it is empty (or make a new queue for them)"
        )


def _describe(share: QuotaShare) -> str:
    limits = ", ".join(f"{u} {v}" for u, v in share.limits.items())
    borrow = "" if share.strategy != "LEND_AND_BORROW" else f" borrowLimit {share.borrow_limit}"
    return f"quota share [{limits}] {share.strategy}{borrow} {share.state}"


def update_share(state: State, e: ev.UpdateQuotaShare) -> None:
    share = resolve_share(state, e.ref)
    limits = _limits(e.limits) if e.limits is not None else share.limits
    strategy, borrow_limit = share.strategy, share.borrow_limit
    if e.sharing is not None:
        strategy = e.sharing[0]
        borrow_limit = _sharing(*e.sharing)
    _check_holds(state, share, limits, strategy, borrow_limit)
    share.limits, share.strategy, share.borrow_limit = limits, strategy, borrow_limit
    if e.in_share_preemption is not None:
        share.in_share_preemption = e.in_share_preemption
    if e.state is not None:
        share.state = e.state
    state.changes.touch("quota_share", share.key)
    state.journal(e.now, e.cause, share.key, "UPDATED", _describe(share))


def _check_holds(
    state: State, share: QuotaShare, limits: dict[str, int], strategy: str, borrow_limit: int
) -> None:
    """A new configuration must hold what the share's jobs run now: hpcbatch does not preempt
    to shrink a share (wait for its jobs, or terminate some, then update)."""
    use = share_uses(state, share.queue)[share.key].use
    trial = QuotaShare(
        share.name, share.queue, share.arn, limits, strategy, borrow_limit, False, "ENABLED", 0
    )
    quota = quota_of(trial)
    if not over(use, quota):
        return
    borrowed = {u: max(0, use.get(u, 0) - q) for u, q in quota.items()}
    why = borrow_room(trial, borrowed)
    if why is not None:
        raise ConflictError(
            f"capacityLimits: quota share {share.name!r}'s running jobs hold more than the new "
            f"configuration allows ({why}); let them finish or terminate some first"
        )


def delete_share(state: State, e: ev.DeleteQuotaShare) -> None:
    share = resolve_share(state, e.ref)
    if share.state != "DISABLED":
        raise ConflictError(
            f"quotaShareArn: quota share {share.name!r} is {share.state}; disable it "
            "(UpdateQuotaShare state DISABLED) before deleting it"
        )
    live = sorted(
        j.job_id
        for j in state.jobs.values()
        if j.share == share.name and j.queue == share.queue and j.status not in TERMINAL
    )
    if live:
        shown = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
        raise ConflictError(
            f"quotaShareArn: quota share {share.name!r} still has {len(live)} unfinished "
            f"job(s): {shown}; wait for them or terminate them first"
        )
    del state.quota_shares[share.key]
    state.changes.drop("quota_share", share.key)
    state.journal(e.now, e.cause, share.key, "DELETED", "")


def quota_share_of(state: State, queue: JobQueue, share_identifier: str | None) -> str | None:
    """The quota share a job submitted to ``queue`` with ``share_identifier`` joins (its name),
    or None on a queue without quota shares (where the fair-share rules decide)."""
    names = {s.name: s for s in state.quota_shares.values() if s.queue == queue.name}
    if not names:
        return None
    known = ", ".join(sorted(names))
    if share_identifier is None:
        raise ValidationError(
            "shareIdentifier",
            f"is required on job queue {queue.name} (it has quota shares: {known})",
        )
    share = names.get(share_identifier)
    if share is None:
        raise ValidationError(
            "shareIdentifier",
            f"job queue {queue.name} has no quota share {share_identifier!r} (it has: {known})",
        )
    if share.state != "ENABLED":
        raise ValidationError(
            "shareIdentifier", f"quota share {share.name!r} is {share.state}: it takes no new jobs"
        )
    return share.name


def drop_queue_shares(state: State, queue: str) -> None:
    """A deleted queue takes its quota shares with it (its jobs have ended)."""
    for key in [k for k, s in state.quota_shares.items() if s.queue == queue]:
        del state.quota_shares[key]
        state.changes.drop("quota_share", key)
