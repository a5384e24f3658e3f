"""Quota shares inside one scheduling pass: who may start, and whom to preempt.

A queue with quota shares is scanned twice, in its usual order (schedulingPriority, then
submission). Phase ``quota`` considers only jobs that fit in their share's quota (use so far in
the pass included); phase ``borrow`` only jobs over it whose share may borrow (``quotas``). Jobs
that may not start now are skipped and block nobody. Running in-quota jobs first is what keeps a
lender's job ahead of a borrower that was requeued before it.

An in-quota job that cannot start (no node has room) preempts **borrowers** of the queue: on the
node where the fewest borrowers free enough room, newest borrower first; never a job within its
own share's quota. With ``inSharePreemption`` ENABLED, a job over its share's quota that could
not borrow preempts lower-schedulingPriority jobs of its own share on one node, lowest priority
and newest first, until it fits in both the node and the quota. Kills already under way count as
room being freed: a job waits for the kills made for it instead of asking for more.

A multi-node job (a gang) needs whole nodes: the same rules choose victims across the nodes of
one CE, the fewest jobs that make every node of the gang fit (``quota_gang``), and the nodes it
is given are held for it in the pass (as are, in later passes, the nodes its kills free), so a
later job does not take the room made for it.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hpcbatch.core.model import Job, JobQueue, Resources
from hpcbatch.core.pass_state import FreeNode, Hold, Pass
from hpcbatch.core.plan import Preemption, Reservation
from hpcbatch.core.quota_gang import Enough, choose, freed_by, tiers_of, victim_key
from hpcbatch.core.quotas import (
    PREEMPTED,
    Amounts,
    Running,
    ShareUse,
    amounts,
    borrow_room,
    job_need,
    largest_node,
    lendable,
    over,
    plus,
    pools,
    quota_of,
    share_uses,
)
from hpcbatch.core.state import RunnableKey, State

PHASES = ("quota", "borrow")
SMALLEST: Amounts = {"VCPU": 1, "MEMORY_MIB": 1, "GPU": 0}  # every job needs some CPU and memory
QuotaCheck = Callable[[list[Running]], bool]
_WAITS_RE = re.compile(r"\(job (?P<job>\S+) waits\)$")


def borrower_reason(share: str, waiting: str) -> str:
    return f'{PREEMPTED}quota share "{share}" needs its capacity back (job {waiting} waits)'


def in_share_reason(share: str, victim_priority: int, waiting: Job) -> str:
    return (
        f'{PREEMPTED}a job of quota share "{share}" with a higher schedulingPriority '
        f"({waiting.spec.priority} > {victim_priority}) needs the capacity (job {waiting.job_id} waits)"
    )


def waiting_for(kill_reason: str | None) -> str | None:
    """The job a preemption's kill is for, from its reason; None: no preemption."""
    if kill_reason is None or not kill_reason.startswith(PREEMPTED):
        return None
    match = _WAITS_RE.search(kill_reason)
    return match["job"] if match else None


@dataclass(slots=True)
class QuotaLedger:
    queue: str
    uses: dict[str, ShareUse]  # by share name
    largest: Resources  # the queue's largest node: what a gang's node counts for (job_need)
    waiting: dict[str, int]  # RUNNABLE jobs per share at the pass's start
    jobs: dict[str, Job] = field(default_factory=dict)  # the state's jobs
    holds: dict[str, list[Hold]] = field(default_factory=dict)  # the pass's holds (shared)
    phase: str = PHASES[0]
    booked: dict[str, Amounts] = field(default_factory=dict)
    pending: dict[str, Resources] = field(default_factory=dict)  # node -> being freed for others
    claimed: set[str] = field(default_factory=set)  # nodes whose freed room a job claimed
    gang_nodes: set[str] = field(default_factory=set)  # nodes held whole for a waiting gang
    gang_failed: set[tuple[object, ...]] = field(default_factory=set)  # shapes none could free
    served: set[str] = field(default_factory=set)  # jobs kills are under way for
    victims: set[str] = field(default_factory=set)
    placed: set[str] = field(default_factory=set)  # in this pass: phase 2 skips them
    over_quota: list[Job] = field(default_factory=list)  # candidates for in-share preemption
    preemptions: list[Preemption] = field(default_factory=list)

    closed: set[str] = field(default_factory=set)  # shares none of whose jobs can start now
    failed: dict[str, list[Amounts]] = field(default_factory=dict)  # needs that could not borrow
    preempts: bool = True  # False: orders only (quota_front), no in-share preemption

    def use(self, name: str) -> Amounts:
        return plus(self.uses[name].use, self.booked.get(name, {}))

    def start(self, phase: str) -> None:
        self.phase = phase
        self.failed = {}
        pooled = None
        if phase != PHASES[0]:  # every share's pool at once: O(shares), not O(shares²)
            pooled = pools({n: ShareUse(e.share, use=self.use(n)) for n, e in self.uses.items()})
        self.closed = {name for name in self.uses if self._closed(name, pooled)}

    def order(self, state: State) -> Iterator[RunnableKey]:
        """The RUNNABLE jobs of the shares still open, in the queue's order: a closed share's
        jobs are never looked at, nor are a share's once it closes during the phase (``book``),
        so a pass costs O(jobs of open shares)."""
        heap = []
        for name in self.uses:
            order = iter(state.share_runnable.get(f"{self.queue}/{name}", ()))
            first = next(order, None)
            if name not in self.closed and first is not None:
                heap.append((first, name, order))
        heapq.heapify(heap)
        while heap:
            key, name, order = heap[0]
            if name not in self.closed:
                yield key
            after = next(order, None) if name not in self.closed else None
            if after is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (after, name, order))

    def all_closed(self) -> bool:
        """No job of any share can start in the rest of this phase: the scan may stop."""
        return len(self.closed) == len(self.uses)

    def _closed(self, name: str, pooled: dict[str, tuple[Amounts, Amounts]] | None = None) -> bool:
        entry = self.uses[name]
        if not self.waiting.get(name):
            return True  # no RUNNABLE job
        if self.phase == PHASES[0]:
            if entry.share.in_share_preemption and self.preempts and len(self.over_quota) < 50:
                return False  # its over-quota jobs are looked at for in-share preemption
            return over(plus(self.use(name), SMALLEST), quota_of(entry.share))
        return not self.may_borrow(entry, SMALLEST, None if pooled is None else pooled[name])

    def admits(self, job: Job) -> bool:
        if job.job_id in self.placed or job.share in self.closed:
            return False
        entry = self.uses.get(job.share or "")
        if entry is None:
            return self.phase == PHASES[0]
        need = amounts(job_need(job, self.largest))
        fits = not over(plus(self.use(entry.share.name), need), quota_of(entry.share))
        if self.phase == PHASES[0]:
            if not fits and entry.share.in_share_preemption and len(self.over_quota) < 50:
                self.over_quota.append(job)
                if len(self.over_quota) == 50:  # enough candidates: a full share may now close
                    self.closed |= {name for name in self.uses if self._closed(name)}
            return fits
        if fits:
            return False  # in its quota: phase 1 had it
        failed = self.failed.setdefault(entry.share.name, [])
        if any(all(need[u] >= f[u] for u in f) for f in failed):
            return False  # a need no smaller could not borrow: use only grows in a pass
        if self.may_borrow(entry, need):
            return True
        if len(failed) < 8:
            failed.append(need)
        return False

    def may_borrow(
        self, entry: ShareUse, need: Amounts, pooled: tuple[Amounts, Amounts] | None = None
    ) -> bool:
        """Whether the share may borrow to run ``need`` more; ``pooled``: ``pool``'s answer for
        it, when already known."""
        name = entry.share.name
        after = plus(self.use(name), need)
        quota = quota_of(entry.share)
        borrowed = {u: max(0, after.get(u, 0) - q) for u, q in quota.items()}
        if borrow_room(entry.share, borrowed) is not None:
            return False
        pool, total = self.pool(exclude=name) if pooled is None else pooled
        return all(total.get(u, 0) + b <= pool.get(u, 0) for u, b in borrowed.items() if b)

    def pool(self, exclude: str) -> tuple[Amounts, Amounts]:
        """(what the other lenders have idle, what the other shares borrow), in the pass."""
        now = {
            name: ShareUse(e.share, use=self.use(name))
            for name, e in self.uses.items()
            if name != exclude
        }
        total: Amounts = {}
        for entry in now.values():
            total = plus(total, entry.borrowed())
        return lendable(now, exclude), total

    def book(self, job: Job, held: Resources) -> None:
        """``job`` was placed in the pass, holding ``held`` (a gang: its whole nodes)."""
        self.placed.add(job.job_id)
        if job.share in self.uses:
            name = job.share
            self.booked[name] = plus(self.booked.get(name, {}), amounts(held))
            if self._closed(name):
                self.closed.add(name)

    def blocked(self, flat: list[FreeNode], job: Job) -> None:
        """An in-quota job found no room: claim room being freed, or preempt borrowers."""
        if self.phase != PHASES[0]:
            return
        if job.multinode is not None:
            self._blocked_gang(flat, job)
            return
        need = job.spec.resources
        for entry in flat:  # jobs come in queue order: the first blocked one claims freed room
            freed = self.pending.get(entry.node.name)
            if entry.node.name in self.gang_nodes:
                continue
            if freed is not None and need.fits_in(entry.free + freed):
                self.pending[entry.node.name] = freed - need
                self.claimed.add(entry.node.name)
                return
        if job.job_id in self.served:
            return  # its kills are under way (their room may be on a node of another shape)
        borrowers = [r for e in self.uses.values() for r in e.borrowers if self._may_stop(r)]
        borrowers.sort(key=lambda r: r.order, reverse=True)  # newest first
        share = job.share or ""
        self._preempt(flat, job, borrowers, lambda _: True, borrower_reason(share, job.job_id))

    def _may_stop(self, run: Running) -> bool:
        """Not being stopped already; a node of a multi-node job stands for its whole job."""
        job = run.job
        return victim_key(job) not in self.victims and job.kill_reason is None

    def _blocked_gang(self, flat: list[FreeNode], job: Job) -> None:
        """An in-quota gang found no room: hold the nodes its kills free, or preempt
        borrowers across nodes so that the whole gang fits (``quota_gang``)."""
        if job.job_id in self.served:  # its kills are under way: hold what they free
            self._gang_preempt(flat, job, [], _always, "")
            return
        shape = job.multinode
        assert shape is not None
        key = (shape.num_nodes, *((r.first, r.last, r.spec.resources) for r in shape.ranges))
        if key in self.gang_failed:
            return  # the pass only takes borrowers and nodes away: it would fail again
        borrowers = [r for e in self.uses.values() for r in e.borrowers if self._may_stop(r)]
        borrowers.sort(key=lambda r: r.order, reverse=True)  # newest first
        why = borrower_reason(job.share or "", job.job_id)
        if not self._gang_preempt(flat, job, borrowers, _always, why):
            self.gang_failed.add(key)

    def _gang_preempt(
        self, flat: list[FreeNode], job: Job, pool: list[Running], enough: Enough, why: str
    ) -> bool:
        """Stop the fewest jobs of ``pool`` (in order of preference) that free whole nodes for
        the gang ``job``, and hold those nodes for it for the rest of the pass."""
        shape = job.multinode
        assert shape is not None
        named: dict[str, Running] = {}
        for run in pool:  # the node of a gang that a preemption names: a node in the pool
            named.setdefault(victim_key(run.job), run)

        def freeing(other: Job) -> bool:  # stopping already, and not for another waiting job
            return other.kill_reason is not None and waiting_for(other.kill_reason) in (
                None,
                job.job_id,
            )

        blocked = self.claimed | self.gang_nodes | set(self.holds)
        keys = list(named)
        choice = choose(tiers_of(flat), shape, self.jobs, keys, freeing, blocked, enough)
        if choice is None or (pool and not choice.victims):
            return False  # no room can be made; or room is free but held for others
        for key in choice.victims:
            run = named[key]
            self.victims.add(key)
            self.preemptions.append(
                Preemption(run.job.job_id, run.attempt.number, run.attempt.node, job.job_id, why)
            )
        if choice.victims:
            self.served.add(job.job_id)
        for entry in choice.nodes:
            name = entry.node.name
            self.gang_nodes.add(name)
            hold = Hold(Reservation(job.job_id, name, None, entry.node.capacity), Resources())
            self.holds.setdefault(name, []).append(hold)
        return True

    def _preempt(
        self, flat: list[FreeNode], job: Job, pool: list[Running], enough: QuotaCheck, why: str
    ) -> bool:
        need = job.spec.resources
        rank = {id(r): i for i, r in enumerate(pool)}  # ``pool`` is in order of preference
        best: tuple[int, list[int], list[Running]] | None = None
        for entry in flat:
            if not need.fits_in(entry.node.capacity) or entry.node.name in self.gang_nodes:
                continue  # too small, or held whole for a waiting gang
            room = entry.free + self.pending.get(entry.node.name, Resources())
            chosen: list[Running] = []
            for run in (r for r in pool if r.attempt.node == entry.node.name):
                if need.fits_in(room) and enough(chosen):
                    break
                chosen.append(run)
                room = room + run.attempt.resources
            if not chosen or not need.fits_in(room) or not enough(chosen):
                continue
            # the fewest victims; between equals, the most preferred (the newest borrowers)
            key = (len(chosen), sorted(rank[id(r)] for r in chosen), chosen)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            return False
        for run in best[2]:
            self.victims.add(victim_key(run.job))
            self.preemptions.append(
                Preemption(run.job.job_id, run.attempt.number, run.attempt.node, job.job_id, why)
            )
        self.served.add(job.job_id)
        return True

    def finish(self, run: Pass, flat: list[FreeNode]) -> None:
        """After both phases: in-share preemption for over-quota jobs that did not start."""
        placed = {p.job_id for p in run.placements}
        for job in self.over_quota:
            if job.job_id in placed or job.job_id in self.served:
                continue
            entry = self.uses[job.share or ""]
            quota = quota_of(entry.share)
            need = amounts(job_need(job, self.largest))
            use = self.use(entry.share.name)
            pool = [
                r
                for r in entry.running
                if r.job.spec.priority < job.spec.priority and self._may_stop(r)
            ]
            pool.sort(key=lambda r: r.order, reverse=True)  # newest first,
            pool.sort(key=lambda r: r.job.spec.priority)  # within the lowest priority first
            low = min((r.job.spec.priority for r in pool), default=0)
            why = in_share_reason(entry.share.name, low, job)
            enough = _quota_room(use, need, quota, freed_by(entry.running))
            if pool and job.multinode is not None:
                self._gang_preempt(flat, job, pool, enough, why)
            elif pool:
                self._preempt(flat, job, pool, _by_runs(enough), why)


def _always(_: set[str]) -> bool:
    return True


def _quota_room(use: Amounts, need: Amounts, quota: Amounts, freed: dict[str, Resources]) -> Enough:
    """Whether stopping the victims (keys; a gang's every node) leaves room in the quota."""

    def enough(victims: set[str]) -> bool:
        total: Amounts = {}
        for key in victims:
            total = plus(total, amounts(freed.get(key, Resources())))
        after = {u: use.get(u, 0) + need.get(u, 0) - total.get(u, 0) for u in quota}
        return not over(after, quota)

    return enough


def _by_runs(enough: Enough) -> QuotaCheck:
    """``enough`` for a list of stopped attempts: a node of a multi-node victim stands for its
    whole job, whose every node's share of the quota is freed."""
    return lambda chosen: enough({victim_key(r.job) for r in chosen})


def ledger_for(run: Pass, queue: JobQueue) -> QuotaLedger | None:
    """The pass's ledger for ``queue``, or None when it has no quota shares."""
    return new_ledger(run.state, queue, run.holds)


def new_ledger(state: State, queue: JobQueue, holds: dict[str, list[Hold]]) -> QuotaLedger | None:
    """A ledger for ``queue`` at the state's use (None: no quota shares); ``holds``: the pass's
    holds (the snapshot's front, core/quota_front.py, passes its own empty ones)."""
    uses = share_uses(state, queue.name)
    if not uses:
        return None
    shares = {e.share.name: e for e in uses.values()}
    orders = state.share_runnable
    waiting = {name: len(orders.get(f"{queue.name}/{name}", ())) for name in shares}
    largest = largest_node(state, queue)
    ledger = QuotaLedger(queue.name, shares, largest, waiting, state.jobs, holds)
    for entry in uses.values():
        for running in entry.running:
            target = waiting_for(running.job.kill_reason)
            if target is not None:
                ledger.served.add(target)
                node = running.attempt.node
                held = ledger.pending.get(node, Resources())
                ledger.pending[node] = held + running.attempt.resources
    return ledger
