"""Quota-share accounting: what each share of a queue holds, lends and borrows.

Vocabulary (docs/quota-shares.md): a share's **use** is what its jobs' live attempts hold, per
capacity unit (VCPU in thousandths, GPU, MEMORY_MIB); its **quota** is ``maxCapacity`` of each
unit it names (a unit it does not name is not limited by it). Its running jobs, oldest first
(by start time, then submission), are **in its quota** while their running total stays within
the quota in every unit; the later ones are **borrowers**: they hold capacity that other shares
lend. A share's **idle** quota is quota minus use; LEND and LEND_AND_BORROW shares lend it,
RESERVE shares never do. A job over its share's quota may start only by borrowing: its share is
LEND_AND_BORROW, its borrowing stays within ``borrowLimit`` % of its quota (-1: unlimited), and
the queue's borrowing in all stays within what its lenders have idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcbatch.core.model import (
    QUOTA_UNITS,
    Attempt,
    Job,
    JobQueue,
    QuotaShare,
    Resources,
    format_vcpus,
)
from hpcbatch.core.state import State

Amounts = dict[str, int]  # capacity unit -> amount (VCPU in thousandths)
LENDERS = frozenset({"LEND", "LEND_AND_BORROW"})
PREEMPTED = "Preempted: "  # how every preemption's reason starts (core/preemption.py)


def amounts(need: Resources) -> Amounts:
    return {"VCPU": need.cpu_milli, "GPU": need.gpus, "MEMORY_MIB": need.memory_mib}


def quota_of(share: QuotaShare) -> Amounts:
    """The share's quota in the units ``amounts`` uses."""
    return {u: v * 1000 if u == "VCPU" else v for u, v in share.limits.items()}


def unit_text(unit: str, amount: int) -> str:
    if unit == "VCPU":
        return f"{format_vcpus(amount)} vCPUs"
    return f"{amount} GPUs" if unit == "GPU" else f"{amount} MiB"


def shares_of(state: State, queue: str) -> dict[str, QuotaShare]:
    """The queue's quota shares by name."""
    return {s.name: s for s in state.quota_shares.values() if s.queue == queue}


def share_of_job(state: State, job: Job) -> QuotaShare | None:
    if job.share is None:
        return None
    return state.quota_shares.get(f"{job.queue}/{job.share}")


def job_need(job: Job, largest: Resources) -> Resources:
    """What a job will hold when it runs. A multi-node job holds whole nodes, which ones only
    its placement tells: it counts as ``num_nodes`` of the largest node (``largest``), so its
    share never ends up over what was admitted."""
    if job.multinode is None:
        return job.spec.resources
    n = job.multinode.num_nodes
    return Resources(largest.cpu_milli * n, largest.memory_mib * n, largest.gpus * n)


def largest_node(state: State, queue: JobQueue) -> Resources:
    """Each resource's largest amount on one node of the queue's compute environments."""
    cpu = memory = gpus = 0
    for node in state.nodes.values():
        if node.ce in queue.ce_order:
            c = node.capacity
            cpu, memory, gpus = max(cpu, c.cpu_milli), max(memory, c.memory_mib), max(gpus, c.gpus)
    return Resources(cpu, memory, gpus)


@dataclass(slots=True)
class Running:
    job: Job
    attempt: Attempt

    @property
    def order(self) -> tuple[float, int, str]:
        started = self.attempt.started_at
        return (float("inf") if started is None else started, self.job.seq, self.job.job_id)


@dataclass(slots=True)
class ShareUse:
    """One share's running jobs, oldest first, split into those in its quota and borrowers."""

    share: QuotaShare
    running: list[Running] = field(default_factory=list)
    borrowers: list[Running] = field(default_factory=list)
    use: Amounts = field(default_factory=dict)

    def borrowed(self) -> Amounts:
        quota = quota_of(self.share)
        return {u: max(0, self.use.get(u, 0) - q) for u, q in quota.items()}

    def idle(self) -> Amounts:
        quota = quota_of(self.share)
        return {u: max(0, q - self.use.get(u, 0)) for u, q in quota.items()}


def share_uses(state: State, queue: str | None = None) -> dict[str, ShareUse]:
    """Every share's use (of one queue, or all), by share key; O(live attempts)."""
    uses = {
        key: ShareUse(share)
        for key, share in state.quota_shares.items()
        if queue is None or share.queue == queue
    }
    if not uses:
        return uses
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is None or job.share is None or not job.attempts:
                continue
            entry = uses.get(f"{job.queue}/{job.share}")
            if entry is not None:
                entry.running.append(Running(job, job.attempts[-1]))
    for entry in uses.values():
        _classify(entry)
    return uses


def _classify(entry: ShareUse) -> None:
    entry.running.sort(key=lambda r: r.order)
    quota = quota_of(entry.share)
    total = dict.fromkeys(QUOTA_UNITS, 0)
    for run in entry.running:
        for unit, amount in amounts(run.attempt.resources).items():
            total[unit] += amount
        if any(total[u] > q for u, q in quota.items()):
            entry.borrowers.append(run)
    entry.use = total


def over(use: Amounts, quota: Amounts) -> bool:
    return any(use.get(u, 0) > q for u, q in quota.items())


def plus(a: Amounts, b: Amounts) -> Amounts:
    return {u: a.get(u, 0) + b.get(u, 0) for u in QUOTA_UNITS}


def borrow_room(share: QuotaShare, borrowed: Amounts) -> str | None:
    """Why ``share`` may not borrow ``borrowed`` in all (None: it may)."""
    if share.strategy != "LEND_AND_BORROW":
        return f"its strategy {share.strategy} does not borrow"
    if share.borrow_limit < 0:
        return None
    for unit, q in quota_of(share).items():
        cap = q * share.borrow_limit // 100
        if borrowed.get(unit, 0) > cap:
            return (
                f"borrowLimit {share.borrow_limit} %: {unit_text(unit, borrowed[unit])} "
                f"would exceed {unit_text(unit, cap)}"
            )
    return None


def lendable(uses: dict[str, ShareUse], exclude: str) -> Amounts:
    """What the lenders among ``uses`` (other than share ``exclude``) have idle, per unit."""
    pool = dict.fromkeys(QUOTA_UNITS, 0)
    for key, entry in uses.items():
        if key != exclude and entry.share.strategy in LENDERS:
            for unit, amount in entry.idle().items():
                pool[unit] += amount
    return pool


def pools(uses: dict[str, ShareUse]) -> dict[str, tuple[Amounts, Amounts]]:
    """For each share of ``uses``: (what the other lenders have idle, what the other shares
    borrow), per unit, as ``lendable`` and a sum of ``borrowed`` give them, for all in
    O(shares)."""
    idle = {key: e.idle() if e.share.strategy in LENDERS else {} for key, e in uses.items()}
    borrowed = {key: e.borrowed() for key, e in uses.items()}
    idle_all = dict.fromkeys(QUOTA_UNITS, 0)
    borrowed_all = dict.fromkeys(QUOTA_UNITS, 0)
    for key in uses:
        for unit, amount in idle[key].items():
            idle_all[unit] += amount
        for unit, amount in borrowed[key].items():
            borrowed_all[unit] += amount
    return {
        key: (
            {u: a - idle[key].get(u, 0) for u, a in idle_all.items()},
            {u: a - borrowed[key].get(u, 0) for u, a in borrowed_all.items()},
        )
        for key in uses
    }


def check_quotas(state: State) -> str | None:
    """The invariant: a share that does not borrow never runs over its quota, and a borrower's
    borrowing stays within its borrowLimit (checked per placement by ``quota_pass``); the count
    of RUNNABLE jobs per share is exact."""
    counted: dict[str, int] = {}
    for key in state.runnable:
        for entry in state.runnable[key]:
            job = state.jobs[entry[3]]
            if state.in_quota_share(job):
                name = f"{job.queue}/{job.share}"
                counted[name] = counted.get(name, 0) + 1
    indexed = {k: len(v) for k, v in state.share_runnable.items() if v}
    if counted != indexed:
        return f"RUNNABLE jobs per share {indexed} are not {counted}"
    for key, entry in share_uses(state).items():
        borrowed = entry.borrowed()
        if any(borrowed.values()):
            why = borrow_room(entry.share, borrowed)
            if why is not None:
                return f"quota share {key} runs over its quota: {why}"
    return None
