"""Why a RUNNABLE job of a quota share waits, with the share's numbers (for ``explain``).

``quota share "a" is at its quota: 8 of 8 vCPUs in use; nothing idle to borrow (borrowLimit
50 %: 4 of 4 vCPUs borrowed)``; or, for a job within its quota that found no room, that
borrowers are being preempted for it (a multi-node job: the jobs stopped on the nodes it will
get, a gang borrower counted once). None when the share is not why it waits.
"""

from __future__ import annotations

from hpcbatch.core.model import Job
from hpcbatch.core.quota_gang import victim_key
from hpcbatch.core.quota_pass import waiting_for
from hpcbatch.core.quotas import (
    ShareUse,
    amounts,
    job_need,
    largest_node,
    lendable,
    quota_of,
    share_uses,
    unit_text,
)
from hpcbatch.core.state import State


def quota_wait(state: State, job: Job) -> str | None:
    if job.share is None:
        return None
    uses = share_uses(state, job.queue)
    entry = uses.get(f"{job.queue}/{job.share}")
    if entry is None:
        return None
    quota = quota_of(entry.share)
    need = amounts(job_need(job, largest_node(state, state.queues[job.queue])))
    short = [u for u, q in quota.items() if entry.use.get(u, 0) + need.get(u, 0) > q]
    if not short:
        return _preempting(uses, job)
    unit = short[0]
    q = quota[unit]
    held = min(entry.use.get(unit, 0), q)
    text = (
        f'quota share "{entry.share.name}" is at its quota: {unit_text(unit, held).split()[0]} '
        f"of {unit_text(unit, q)} in use"
    )
    return f"{text}; {_borrowing(uses, entry, unit, need.get(unit, 0))}"


def _borrowing(uses: dict[str, ShareUse], entry: ShareUse, unit: str, need: int) -> str:
    share = entry.share
    if share.strategy != "LEND_AND_BORROW":
        return f"its strategy {share.strategy} does not borrow"
    borrowed = entry.borrowed().get(unit, 0)
    quota = quota_of(share)[unit]
    if share.borrow_limit < 0:
        limit = f"borrowLimit unlimited: {unit_text(unit, borrowed)} borrowed"
    else:
        cap = quota * share.borrow_limit // 100
        limit = (
            f"borrowLimit {share.borrow_limit} %: {unit_text(unit, borrowed).split()[0]} of "
            f"{unit_text(unit, cap)} borrowed"
        )
        if borrowed + need > cap:
            return limit
    others = {k: e for k, e in uses.items() if k != share.key}
    idle = lendable(others, share.key).get(unit, 0)
    lent = sum(e.borrowed().get(unit, 0) for e in others.values())
    free = max(0, idle - lent)
    if free == 0:
        return f"nothing idle to borrow ({limit})"
    return f"other shares lend only {unit_text(unit, free)} idle ({limit})"


def _preempting(uses: dict[str, ShareUse], job: Job) -> str | None:
    stopping = {  # a multi-node job being stopped is one job, whatever its number of nodes
        victim_key(r.job)
        for e in uses.values()
        for r in e.running
        if waiting_for(r.job.kill_reason) == job.job_id
    }
    if not stopping:
        return None
    return (
        f'within quota share "{job.share}"\'s quota: waiting for {len(stopping)} preempted '
        f"job(s) to stop ({', '.join(sorted(stopping)[:3])})"
    )
