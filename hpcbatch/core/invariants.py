"""``check_invariants(state)``: the properties every step must keep, as code (run in tests).

No node over-committed; no GPU held twice; every node's allocation equals the sum of its live
attempts; every index (listing, runnable, child counts) agrees with the jobs; no live attempt on a
job that is not STARTING/RUNNING; a node held by a gang's node job holds nothing else; a
multi-node parent is STARTING/RUNNING only while its main node is; node jobs are never queued;
a retiring node is never ONLINE; a consumable resource's in-use count is what live attempts hold
and never exceeds its total, and ``State.needing`` lists exactly the jobs that need each one; an API-made compute environment keeps
0 <= minvCpus <= desiredvCpus <= maxvCpus; a quota share that does not borrow never runs over
its quota, and a borrowing one stays within its borrowLimit.
Fair share: every job of a queue with a fair-share policy has a share, every queue's policy
exists and is of its kind, and each fair-share queue's per-share RUNNABLE index holds exactly its RUNNABLE jobs.
"""

from __future__ import annotations

from collections import Counter

from hpcbatch.core.consumables import held_by_attempts, needs
from hpcbatch.core.model import (
    ACTIVE,
    Job,
    JobStatus,
    NodeState,
    Resources,
    attempt_id,
    node_job_id,
)
from hpcbatch.core.quotas import check_quotas
from hpcbatch.core.shared_capacity import overcommitted
from hpcbatch.core.state import RunnableKey, State, runnable_key


class InvariantViolation(AssertionError):
    pass


def _fail(message: str) -> None:
    raise InvariantViolation(message)


def check_invariants(state: State) -> None:
    _check_nodes(state)
    _check_indexes(state)
    _check_users(state)
    _check_consumables(state)
    _check_ce_bounds(state)
    _check_shares(state)
    shared = overcommitted(state)
    if shared is not None:
        _fail(shared)
    if state.quota_shares:
        problem = check_quotas(state)
        if problem is not None:
            _fail(problem)


def _check_consumables(state: State) -> None:
    held = held_by_attempts(state)
    for resource in state.consumables.values():
        if resource.in_use != held[resource.name]:
            _fail(
                f"consumable {resource.name}: in_use {resource.in_use} but live attempts hold "
                f"{held[resource.name]}"
            )
        if not 0 <= resource.in_use <= resource.total:
            _fail(f"consumable {resource.name}: {resource.in_use} in use of {resource.total}")
    for name in held:
        if name not in state.consumables:
            _fail(f"live attempts hold consumable {name}, which does not exist")
    expected: dict[str, set[str]] = {}
    for job in state.jobs.values():
        if job.node_index is None and (job.spec.consumables or job.multinode is not None):
            for name in needs(job):
                expected.setdefault(name, set()).add(job.job_id)
    indexed = {name: {key[2] for key in keys} for name, keys in state.needing.items()}
    if indexed != expected:
        _fail(f"the needing index {indexed} is not the jobs' needs {expected}")


def _check_ce_bounds(state: State) -> None:
    for ce in state.ces.values():
        if ce.max_vcpus is None:
            continue
        desired = ce.min_vcpus if ce.desired_vcpus is None else ce.desired_vcpus
        if not 0 <= ce.min_vcpus <= desired <= ce.max_vcpus:
            _fail(
                f"CE {ce.name}: vCPUs min {ce.min_vcpus} desired {ce.desired_vcpus} "
                f"max {ce.max_vcpus} out of order"
            )


def _check_shares(state: State) -> None:
    for queue in state.queues.values():
        for name, quota in ((queue.policy, False), (queue.quota_policy, True)):
            policy = state.policies.get(name) if name is not None else None
            if name is not None and (policy is None or policy.is_quota != quota):
                _fail(f"queue {queue.name} uses unknown scheduling policy {name} (quota {quota})")
        if queue.policy is not None and queue.quota_policy is not None:
            _fail(f"queue {queue.name} has both a fair-share and a quota-share policy")
    by_share: dict[str, dict[str, list[RunnableKey]]] = {}
    for job in state.jobs.values():
        home = state.queues.get(job.queue)
        if home is not None and home.policy is not None and job.share is None:
            _fail(f"{job.job_id} has no share on fair-share queue {job.queue}")
        fair = home is not None and home.policy is not None
        if job.status is JobStatus.RUNNABLE and job.share is not None and fair:
            by_share.setdefault(job.queue, {}).setdefault(job.share, []).append(runnable_key(job))
    indexed = {
        q: {s: list(keys) for s, keys in shares.items()}
        for q, shares in state.fair_runnable.items()
        if shares
    }
    expected = {
        q: {s: sorted(keys) for s, keys in shares.items()} for q, shares in by_share.items()
    }
    if indexed != expected:
        _fail("fair_runnable does not hold exactly the RUNNABLE jobs of each share")


def _check_users(state: State) -> None:
    """Every access key is indexed to its one user, and nothing else is indexed."""
    indexed = {k: u.name for u in state.users.values() for k in u.keys}
    if indexed != state.user_keys:
        _fail(f"access key index {state.user_keys} is not the users' keys {indexed}")


def _check_nodes(state: State) -> None:
    for node in state.nodes.values():
        total = Resources()
        gpus: list[str] = []
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is None or job.status not in ACTIVE:
                _fail(f"{node.name} holds {aid} of a job that is not STARTING/RUNNING")
                return
            attempt = job.attempts[-1]
            if attempt_id(job.job_id, attempt.number) != aid or attempt.node != node.name:
                _fail(f"{node.name} holds {aid}, not the job's live attempt")
            total = total + attempt.resources
            gpus.extend(attempt.gpus)
            shared = node.ce in state.ces and state.ces[node.ce].kind == "SLURM"  # slurm_gang
            if job.node_index is not None and len(node.attempts) > 1 and not shared:
                _fail(
                    f"{node.name} is held by gang node {aid} but also by {len(node.attempts) - 1}"
                )
        if node.retiring is not None and node.state is NodeState.ONLINE:
            _fail(f"{node.name} is retiring ({node.retiring}) yet ONLINE: jobs could land there")
        if total != node.allocated:
            _fail(f"{node.name} allocated {node.allocated} but its attempts hold {total}")
        if not node.allocated.fits_in(node.capacity):
            _fail(f"{node.name} over-committed: {node.allocated} > {node.capacity}")
        if len(gpus) != len(set(gpus)):
            _fail(f"{node.name} has a GPU held twice: {sorted(gpus)}")
        if set(gpus) & node.free_gpus:
            _fail(f"{node.name} lists held GPUs as free")
        known = [gpu.id for gpu in node.gpus]
        if len(known) != len(set(known)) or node.capacity.gpus != len(known):
            _fail(f"{node.name}: GPU inventory {known} does not match capacity {node.capacity}")
        if not set(gpus) <= set(known) or not node.free_gpus <= node.gpus_in_service:
            _fail(
                f"{node.name}: held {sorted(gpus)} / free {sorted(node.free_gpus)} not in service"
            )
        lost = node.gpus_in_service - set(gpus) - node.free_gpus
        if lost:
            _fail(f"{node.name}: GPUs {sorted(lost)} in service but neither free nor held")
        if not node.gpus_out.keys() <= set(known):
            _fail(f"{node.name}: out-of-service GPUs {sorted(node.gpus_out)} not in its inventory")


def _check_indexes(state: State) -> None:
    counts: dict[str, Counter[JobStatus]] = {}
    for job in state.jobs.values():
        listed = state.listing.get(state.listing_key(job), {}).get(job.status, {})
        if job.job_id not in listed:
            _fail(f"{job.job_id} ({job.status}) missing from its listing")
        if job.status is JobStatus.RUNNABLE and runnable_key(job) not in state.runnable[job.queue]:
            _fail(f"{job.job_id} RUNNABLE but not in queue {job.queue}'s order")
        if job.multinode is not None or job.node_index is not None:
            _check_gang_job(state, job)
        elif job.status in ACTIVE:
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


def _check_gang_job(state: State, job: Job) -> None:
    """A multi-node parent is ACTIVE only while its main node is; a node job is never queued on
    its own, and ACTIVE only with its attempt held, while its parent has started."""
    if job.multinode is not None:
        main = state.jobs.get(node_job_id(job.job_id, job.multinode.main_node))
        if main is None:
            _fail(f"{job.job_id} has no main node job")
        elif job.status in ACTIVE and main.status not in ACTIVE:
            _fail(f"{job.job_id} is {job.status} but its main node is {main.status}")
        return
    if job.status is JobStatus.RUNNABLE:
        _fail(f"node job {job.job_id} is RUNNABLE: only its parent is queued")
    if job.status in ACTIVE:
        attempt = job.attempts[-1]
        node = state.nodes.get(attempt.node)
        if node is not None and attempt_id(job.job_id, attempt.number) not in node.attempts:
            _fail(f"{job.job_id} is {job.status} but {attempt.node} does not hold it")
        parent = state.jobs.get(job.parent_id or "")
        if parent is None or parent.status in (JobStatus.PENDING, JobStatus.SUBMITTED):
            _fail(f"node job {job.job_id} placed before its parent started")
