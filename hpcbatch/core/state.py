"""The head's whole state in memory, with the indexes the scheduler and the API read.

Vocabulary: a job's **listing key** is its queue for a top-level job and its parent's id for an array
child; ``listing[key][status]`` keeps ids in the order they entered that status (ListJobs).
``runnable[queue]`` holds ``(-priority, seq, index, job_id)`` of RUNNABLE jobs, sorted: the
queue's order; ``share_runnable["<queue>/<share>"]`` the same for one quota share's jobs;
``fair_runnable[queue][share]`` the same keys of a fair-share queue's RUNNABLE jobs, per share
(a share with none has no entry), for core/fairshare.py. ``needing[resource]`` holds the
``needing_key`` (submission order) of the jobs that need a consumable resource (top-level jobs
and array children; a multi-node job by its parent), for ListJobsByConsumableResource: a job's
needs never change, so ``add_job``/``remove_job`` keep it (and the load, through ``add_job``). All status changes go through ``set_status`` so every index stays
consistent — ``check_invariants`` proves it after every step in tests.

``changes`` collects what the loop must persist (dirty keys per kind) and journal lines; the loop
drains it after each batch of events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from hpcbatch.core.model import (
    RUNNABLE,
    ComputeEnvironment,
    ConsumableResource,
    Job,
    JobDefinition,
    JobQueue,
    JobStatus,
    Node,
    QuotaShare,
    User,
)
from hpcbatch.core.pool_fit import PoolHost
from hpcbatch.core.shares import QueueRunTime, SchedulingPolicy, ShareUsage

RunnableKey = tuple[int, int, int, str]


@dataclass(frozen=True, slots=True)
class JournalLine:
    time: int
    cause: str
    subject: str
    event: str
    detail: str


@dataclass(slots=True)
class Changes:
    dirty: dict[str, set[str]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)
    journal: list[JournalLine] = field(default_factory=list)

    def touch(self, kind: str, key: str) -> None:
        # get before setdefault: a touch per status change must not build a set each time
        dirty = self.dirty.get(kind)
        if dirty is None:
            dirty = self.dirty[kind] = set()
        dirty.add(key)
        gone = self.deleted.get(kind)
        if gone:
            gone.discard(key)

    def untouch(self, kind: str, keys: Iterable[str]) -> None:
        """Nothing of these to write (after all): ``submit``'s array children born RUNNABLE."""
        dirty = self.dirty.get(kind)
        if dirty:
            dirty.difference_update(keys)

    def drop(self, kind: str, key: str) -> None:
        self.deleted.setdefault(kind, set()).add(key)
        live = self.dirty.get(kind)
        if live:
            live.discard(key)


def consumables_named(job: Job) -> set[str]:
    """The consumable resources ``job`` needs, as ``State.needing`` files it: none for a node
    of a multi-node job (its parent holds the whole job's needs)."""
    if job.node_index is not None or (not job.spec.consumables and job.multinode is None):
        return set()
    names = {name for name, _ in job.spec.consumables}
    for node_range in job.multinode.ranges if job.multinode is not None else ():
        names.update(name for name, _ in node_range.spec.consumables)
    return names


def needing_key(job: Job) -> tuple[int, int, str]:
    """Submission order: an array's parent, then its children by index."""
    return (job.seq, -1 if job.array_index is None else job.array_index, job.job_id)


def runnable_key(job: Job) -> RunnableKey:
    index = -1 if job.array_index is None else job.array_index
    return (-job.spec.priority, job.seq, index, job.job_id)


class State:
    def __init__(self, region: str = "local", account: str = "000000000000") -> None:
        self.region = region
        self.account = account
        self.ces: dict[str, ComputeEnvironment] = {}
        self.queues: dict[str, JobQueue] = {}
        self.definitions: dict[str, dict[int, JobDefinition]] = {}
        self.jobs: dict[str, Job] = {}
        self.nodes: dict[str, Node] = {}
        self.consumables: dict[str, ConsumableResource] = {}  # by name (core/consumables.py)
        self.quota_shares: dict[str, QuotaShare] = {}  # by ``<queue>/<name>``
        self.users: dict[str, User] = {}  # API users by name (core/users.py)
        self.user_keys: dict[str, str] = {}  # access key id -> user name
        self.seq = 0
        self.runnable: dict[str, SortedList] = {}
        # "<queue>/<quota share>" -> its RUNNABLE jobs' keys, in the queue's order (quota_pass)
        self.share_runnable: dict[str, SortedList] = {}
        self.fair_runnable: dict[str, dict[str, SortedList]] = {}
        self.policies: dict[str, SchedulingPolicy] = {}  # scheduling policies by name
        self.usage: dict[tuple[str, str], ShareUsage] = {}  # (queue, share) -> ended attempts'
        self.run_times: dict[str, QueueRunTime] = {}  # fair-share queue -> (core/usage.py)
        self.listing: dict[str, dict[JobStatus, dict[str, None]]] = {}
        # consumable resource -> ``needing_key`` of the jobs needing it, in submission order
        self.needing: dict[str, SortedList] = {}
        self.child_counts: dict[str, Counter[JobStatus]] = {}
        self.dependents: dict[str, set[str]] = {}
        self.reserved_since: dict[str, int] = {}  # see ``reserved``: not persisted
        # job id -> when it became RUNNABLE, for ``time_limits``; not persisted: after a restart
        # (or for a job submitted RUNNABLE) the first time-limit check starts the clock.
        self.runnable_since: dict[str, int] = {}
        self.time_limits_checked_at: int | None = None
        # the head's host pools, their hosts' sizes where known (``PoolHostsKnown``, core/
        # pool_fit.py); not persisted: the head says them again at every start
        self.pool_hosts: dict[str, tuple[PoolHost, ...]] = {}
        # attempts with a timeout by deadline, a heap (core/overdue.py); not persisted: None
        # until the first tick builds it
        self.overdue: list[tuple[int, str]] | None = None
        self.changes = Changes()
        # sorted-index keys held back during ``bulk``: id(index) -> (index, keys)
        self._deferred: dict[int, tuple[SortedList, list[Any]]] | None = None

    # --- identity ---------------------------------------------------------------------------

    def arn(self, resource: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:{resource}/{name}"

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- jobs -------------------------------------------------------------------------------

    def listing_key(self, job: Job) -> str:
        return job.parent_id if job.parent_id is not None else job.queue

    def add_job(self, job: Job) -> None:
        """Index a new job (in whatever status it was built with)."""
        self.jobs[job.job_id] = job
        self._index(job, job.status)
        for name in consumables_named(job):
            keys = self.needing.get(name)
            if keys is None:
                keys = self.needing[name] = SortedList()
            self._sorted_add(keys, needing_key(job))
        if self._deferred is None:  # (a bulk load is nothing to write back)
            self.changes.touch("job", job.job_id)

    def set_status(self, job: Job, status: JobStatus, cause: str, now: int, detail: str) -> None:
        old = job.status
        if old == status:
            return
        self._unindex(job, old)
        job.status = status
        self._index(job, status)
        if status is RUNNABLE:
            self.runnable_since[job.job_id] = now
        elif old is RUNNABLE:
            self.runnable_since.pop(job.job_id, None)
        self.changes.touch("job", job.job_id)
        self.journal(now, cause, job.job_id, status.value, detail)

    def remove_job(self, job: Job) -> None:
        self._unindex(job, job.status)
        for name in consumables_named(job):
            keys = self.needing[name]
            keys.remove(needing_key(job))
            if not keys:
                del self.needing[name]
        del self.jobs[job.job_id]
        self.runnable_since.pop(job.job_id, None)
        self.dependents.pop(job.job_id, None)
        self.child_counts.pop(job.job_id, None)
        self.listing.pop(job.job_id, None)
        self.changes.drop("job", job.job_id)

    def journal(self, now: int, cause: str, subject: str, event: str, detail: str) -> None:
        self.changes.journal.append(JournalLine(now, cause, subject, event, detail))

    def _index(self, job: Job, status: JobStatus) -> None:
        # Plain gets first: setdefault would build a new dict, list or Counter per call, and
        # this runs for every status change of every job.
        owner = self.listing_key(job)
        by_status = self.listing.get(owner)
        if by_status is None:
            by_status = self.listing[owner] = {}
        bucket = by_status.get(status)
        if bucket is None:
            bucket = by_status[status] = {}
        bucket[job.job_id] = None
        if status is RUNNABLE:
            queue = self.runnable.get(job.queue)
            if queue is None:
                queue = self.runnable[job.queue] = SortedList()
            self._sorted_add(queue, runnable_key(job))
            if self._on_fair_queue(job):
                self._index_share(job)
            elif self.in_quota_share(job):
                share = f"{job.queue}/{job.share}"
                order = self.share_runnable.get(share)
                if order is None:
                    order = self.share_runnable[share] = SortedList()
                self._sorted_add(order, runnable_key(job))
        if job.parent_id is not None:
            counts = self.child_counts.get(job.parent_id)
            if counts is None:
                counts = self.child_counts[job.parent_id] = Counter()
            counts[status] += 1

    def _unindex(self, job: Job, status: JobStatus) -> None:
        bucket = self.listing.get(self.listing_key(job), {}).get(status)
        if bucket is not None:
            bucket.pop(job.job_id, None)
        if status is RUNNABLE:
            self.runnable[job.queue].remove(runnable_key(job))
            if job.share is not None and self._on_fair_queue(job):
                shares = self.fair_runnable[job.queue]
                keys = shares[job.share]
                keys.remove(runnable_key(job))
                if not keys:
                    del shares[job.share]
            elif self.in_quota_share(job):
                self.share_runnable[f"{job.queue}/{job.share}"].remove(runnable_key(job))
        if job.parent_id is not None:
            self.child_counts[job.parent_id][status] -= 1

    def in_quota_share(self, job: Job) -> bool:
        """A job of a quota share: a share on a queue without a fair-share policy (a queue has
        one or the other; a FIFO queue's jobs have no share)."""
        return job.share is not None and not self._on_fair_queue(job)

    def _on_fair_queue(self, job: Job) -> bool:
        """A job of a queue with a fair-share policy (a queue changes between fair share and
        quota shares only with no unfinished jobs, so this holds from a job's first index to
        its last)."""
        if job.share is None:
            return False
        queue = self.queues.get(job.queue)
        return queue is not None and queue.policy is not None

    def _index_share(self, job: Job) -> None:
        assert job.share is not None
        shares = self.fair_runnable.get(job.queue)
        if shares is None:
            shares = self.fair_runnable[job.queue] = {}
        keys = shares.get(job.share)
        if keys is None:
            keys = shares[job.share] = SortedList()
        self._sorted_add(keys, runnable_key(job))

    def _sorted_add(self, keys: SortedList, key: Any) -> None:
        if self._deferred is None:
            keys.add(key)
            return
        pending = self._deferred.get(id(keys))
        if pending is None:
            pending = self._deferred[id(keys)] = (keys, [])
        pending[1].append(key)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Add many jobs (a load from the store): their keys join the sorted indexes at the
        end, sorted once, instead of one insertion each; nothing is marked changed. Nothing
        may read the indexes meanwhile."""
        self._deferred = {}
        try:
            yield
        finally:
            deferred, self._deferred = self._deferred, None
            for keys, pending in deferred.values():
                keys.update(pending)

    # --- definitions ------------------------------------------------------------------------

    def latest_definition(self, name: str) -> JobDefinition | None:
        revisions = self.definitions.get(name, {})
        active = [d for d in revisions.values() if d.status == "ACTIVE"]
        return max(active, key=lambda d: d.revision) if active else None

    def children_of(self, parent: Job) -> list[Job]:
        size = parent.array_size or 0
        return [self.jobs[f"{parent.job_id}:{i}"] for i in range(size)]
