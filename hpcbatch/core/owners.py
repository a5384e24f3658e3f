"""Whose a job is and whom it runs as (docs/security.md).

Vocabulary: the **caller** (``model.Caller``) made the request; a job's **owner** is the caller
that submitted it; its **run-as user** is ``JobSpec.user``. The rule: a job runs as its owner,
unless its definition names another ``user`` (AWS ``containerProperties.user``) and the owner is
an admin. A non-admin's definition may name only its registrant. An event without a caller
(the core's own tests, and nothing the API sends) keeps the spec as it is.
"""

from __future__ import annotations

from dataclasses import replace

from hpcbatch.core.model import Caller, JobSpec, MultiNodeSpec
from hpcbatch.errors import AccessDeniedError


def check_user(spec: JobSpec, caller: Caller | None, operation: str, field: str) -> None:
    """Refuse a non-admin whose spec names a user other than themselves."""
    if caller is None or caller.admin or spec.user is None or spec.user == caller.user:
        return
    raise AccessDeniedError(
        f"{operation}: {field} is {spec.user!r}, but only an admin may run a job as another "
        f"user; you are {caller.user!r} (leave user out: jobs run as their submitter)"
    )


def run_as_owner(spec: JobSpec, caller: Caller | None, operation: str, field: str) -> JobSpec:
    """``spec`` with its run-as user settled: the caller's unless it names one it may use."""
    check_user(spec, caller, operation, field)
    if caller is None or spec.user is not None:
        return spec
    return replace(spec, user=caller.user)


def gang_run_as_owner(shape: MultiNodeSpec, caller: Caller | None, operation: str) -> MultiNodeSpec:
    ranges = tuple(
        replace(
            r,
            spec=run_as_owner(
                r.spec, caller, operation, f"nodeRangeProperties[{i}].container.user"
            ),
        )
        for i, r in enumerate(shape.ranges)
    )
    return replace(shape, ranges=ranges)


def check_definition_users(
    spec: JobSpec, shape: MultiNodeSpec | None, caller: Caller | None
) -> None:
    """A definition a non-admin registers may name only that user as ``user``."""
    check_user(spec, caller, "RegisterJobDefinition", "containerProperties.user")
    for i, node_range in enumerate(shape.ranges if shape else ()):
        check_user(
            node_range.spec,
            caller,
            "RegisterJobDefinition",
            f"nodeProperties.nodeRangeProperties[{i}].container.user",
        )
