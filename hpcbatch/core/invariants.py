"""``check_invariants(state)``: the properties every step must keep, as code (run in tests).

No node over-committed; no GPU held twice; every node's allocation equals the sum of its live
attempts; every index (listing, runnable, child counts) agrees with the jobs; no live attempt on a
job that is not STARTING/RUNNING.
"""

from __future__ import annotations

from collections import Counter

from hpcbatch.core.model import ACTIVE, JobStatus, Resources, attempt_id
from hpcbatch.core.state import State, runnable_key


class InvariantViolation(AssertionError):
    pass


def _fail(message: str) -> None:
    raise InvariantViolation(message)


def check_invariants(state: State) -> None:
    _check_nodes(state)
    _check_indexes(state)


def _check_nodes(state: State) -> None:
    for node in state.nodes.values():
        total = Resources()
        gpus: list[int] = []
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is None or job.status not in ACTIVE:
                _fail(f"{node.name} holds {aid} of a job that is not STARTING/RUNNING")
                return
            attempt = job.attempts[-1]
            if attempt_id(job.job_id, attempt.number) != aid or attempt.node != node.name:
                _fail(f"{node.name} holds {aid}, not the job's live attempt")
            total = total + attempt.resources
            gpus.extend(attempt.gpu_indices)
        if total != node.allocated:
            _fail(f"{node.name} allocated {node.allocated} but its attempts hold {total}")
        if not node.allocated.fits_in(node.capacity):
            _fail(f"{node.name} over-committed: {node.allocated} > {node.capacity}")
        if len(gpus) != len(set(gpus)):
            _fail(f"{node.name} has a GPU held twice: {sorted(gpus)}")
        if set(gpus) & node.free_gpus:
            _fail(f"{node.name} lists held GPUs as free")


def _check_indexes(state: State) -> None:
    counts: dict[str, Counter[JobStatus]] = {}
    for job in state.jobs.values():
        listed = state.listing.get(state.owner(job), {}).get(job.status, {})
        if job.job_id not in listed:
            _fail(f"{job.job_id} ({job.status}) missing from its listing")
        if job.status is JobStatus.RUNNABLE and runnable_key(job) not in state.runnable[job.queue]:
            _fail(f"{job.job_id} RUNNABLE but not in queue {job.queue}'s order")
        if job.status in ACTIVE:
            aid = attempt_id(job.job_id, job.attempts[-1].number)
            node = state.nodes.get(job.attempts[-1].node)
            if node is not None and aid not in node.attempts:
                _fail(f"{job.job_id} is {job.status} but its node does not hold {aid}")
        if job.parent_id is not None:
            counts.setdefault(job.parent_id, Counter())[job.status] += 1
    total = sum(len(v) for v in state.runnable.values())
    runnable = sum(1 for j in state.jobs.values() if j.status is JobStatus.RUNNABLE)
    if total != runnable:
        _fail(f"{total} keys in queue orders but {runnable} RUNNABLE jobs")
    for parent, expected in counts.items():
        got = +state.child_counts.get(parent, Counter())
        if got != +expected:
            _fail(f"child counts of {parent}: {dict(got)} != {dict(expected)}")
