"""What a caller may do (docs/security.md, "Who may do what").

- Everyone authenticated: read anything but logs (Describe*, List*, nodes, history, top), submit
  jobs, register job definitions (core/owners.py keeps their ``user`` honest), ask whoami.
- A job's owner, or an admin: cancel, terminate, tag or untag it, read its logs (in
  CancelJobs and TerminateJobs, a job the caller may not touch is that job's own error).
- A definition's registrant, or an admin: deregister it, tag or untag it.
- Admins only (root and the config's ``admin_group``): compute environments, job queues,
  scheduling policies, consumable resources (licenses), nodes (drain, resume), users and their keys, and anything of a job or
  definition made before the head knew its callers (no owner).

Every refusal is ``AccessDeniedException`` naming the operation, the rule and the caller.
"""

from __future__ import annotations

from typing import Any

from hpcbatch.core.model import Job
from hpcbatch.core.resources import tag_target
from hpcbatch.core.state import State
from hpcbatch.errors import AccessDeniedError
from hpcbatch.head.auth.identify import Principal

ADMIN_OPERATIONS = {
    "CreateComputeEnvironment": "create compute environments",
    "UpdateComputeEnvironment": "change compute environments",
    "DeleteComputeEnvironment": "delete compute environments",
    "CreateJobQueue": "create job queues",
    "UpdateJobQueue": "change job queues",
    "DeleteJobQueue": "delete job queues",
    "CreateSchedulingPolicy": "create scheduling policies",
    "UpdateSchedulingPolicy": "change scheduling policies",
    "DeleteSchedulingPolicy": "delete scheduling policies",
    "CreateConsumableResource": "create consumable resources",
    "UpdateConsumableResource": "change consumable resources",
    "DeleteConsumableResource": "delete consumable resources",
}
JOB_OPERATIONS = {"CancelJob": "cancel", "TerminateJob": "terminate"}
# Each job of a bulk request is judged alone (job_refusal), as AWS asks batch:CancelJob or
# batch:TerminateJob for each: the request as a whole is anyone's.
BULK_JOB_OPERATIONS = {"CancelJobs": "cancel", "TerminateJobs": "terminate"}
TAG_OPERATIONS = {"TagResource": "tag", "UntagResource": "untag"}


def _who(principal: Principal) -> str:
    return f"you are {principal.user!r}"


def require_admin(principal: Principal, operation: str, what: str) -> None:
    if not principal.admin:
        raise AccessDeniedError(
            f"{operation}: only an admin may {what} (root and the head's admin_group); "
            f"{_who(principal)}"
        )


def job_refusal(principal: Principal, job: Job, operation: str, verb: str) -> str | None:
    """Why ``principal`` may not ``verb`` ``job``, or None when they may. The bulk operations
    (CancelJobs, TerminateJobs) report it as that job's own error; the others raise it."""
    if principal.admin or (job.owner is not None and job.owner == principal.user):
        return None
    owner = f"belongs to {job.owner!r}" if job.owner else "was submitted before the head knew users"
    return (
        f"{operation}: job {job.job_id} {owner}; only its owner or an admin may {verb} it; "
        f"{_who(principal)}"
    )


def require_job_owner(principal: Principal, job: Job, operation: str, verb: str) -> None:
    refusal = job_refusal(principal, job, operation, verb)
    if refusal is not None:
        raise AccessDeniedError(refusal)


def authorize(principal: Principal, operation: str, request: Any, state: State) -> None:
    """Raise AccessDeniedError unless ``principal`` may run ``operation`` with ``request``
    (a parsed model). An unknown job or ARN passes here: the handler says it is not found."""
    if operation in ADMIN_OPERATIONS:
        require_admin(principal, operation, ADMIN_OPERATIONS[operation])
    elif operation in JOB_OPERATIONS:
        job = state.jobs.get(request.jobId)
        if job is not None:
            require_job_owner(principal, job, operation, JOB_OPERATIONS[operation])
    elif operation in TAG_OPERATIONS:
        _authorize_tags(principal, operation, request.resourceArn, state)


def _authorize_tags(principal: Principal, operation: str, arn: str, state: State) -> None:
    if principal.admin:
        return
    kind, key, _ = tag_target(state, arn)  # an unknown ARN: the handler's own NotFound
    verb = TAG_OPERATIONS[operation]
    if kind == "job":
        require_job_owner(principal, state.jobs[key], operation, verb)
    elif kind == "job_definition":
        name, _, revision = key.partition(":")
        owner = state.definitions[name][int(revision)].owner
        if owner != principal.user:
            raise AccessDeniedError(
                f"{operation}: job definition {key} belongs to {owner or 'the head'}; only its "
                f"registrant or an admin may {verb} it; {_who(principal)}"
            )
    else:
        require_admin(principal, operation, f"{verb} {kind.replace('_', ' ')}s")
