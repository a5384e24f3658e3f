"""Building blocks shared by the request models of the AWS Batch API.

Vocabulary:
- a *rule* is one plain sentence that says what a field must be and what was given; it becomes the
  ``rule`` of an ``hpcbatch.errors.ValidationError``;
- a *path* is AWS's own spelling of where a field sits (``containerOverrides.environment[2].name``);
- a *ref* is a field that names a resource by name or ARN (``jobQueue``, ``jobDefinition``).

Validators here raise pydantic's ``PydanticCustomError`` of type ``RULE_ERROR`` rather than our
own error, because pydantic then records *where* the value sat; ``hpcbatch.head.api.parse`` turns
the location plus the optional relative ``at`` path into the AWS path. Checks that span several
fields run in model validators and use ``at`` to point at the field that is wrong, not at the
object that holds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema, PydanticCustomError

from hpcbatch.head.api.models.integers import RULE_ERROR, bound_integers, check_loose

# Exotic AWS-only structures (EKS pods, ECS tasks, launch templates, ...) have no on-premises
# meaning: they are accepted as plain JSON objects so the head can store and echo them back.
# Their numbers are held to AWS's widest, Long (integers.py).
Loose = Annotated[dict[str, Any], AfterValidator(check_loose)]


class AwsModel(BaseModel):
    """Base of every request shape: AWS field names, no unknown fields, no type coercion.

    ``strict`` because AWS's JSON protocol never turns ``"5"`` into ``5``; a client that sends the
    wrong type deserves to hear so rather than have the value silently reinterpreted.
    Every integer is held to AWS's width for its field (``integers.py``): 32 bits unless the
    field is a ``Long``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        bound_integers(schema)
        return schema


def fail(rule: str, at: str = "") -> NoReturn:
    """Reject the value being validated; ``at`` is a path relative to it (``"[2].name"``)."""
    raise PydanticCustomError(RULE_ERROR, "{rule}", {"rule": rule, "at": at})


def shown(value: object) -> str:
    """``(got ...)``: the offending value as JSON, shortened so a 30 KiB string stays readable."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"(got {text})"


def join_path(base: str, relative: str) -> str:
    """``join_path("dependsOn", "[0].type")`` -> ``dependsOn[0].type``."""
    if not relative:
        return base
    if not base or relative.startswith("["):
        return base + relative
    return f"{base}.{relative}"


# ---------------------------------------------------------------------------------------------
# Reusable validators


def int_range(lo: int, hi: int | None = None) -> AfterValidator:
    """An integer between ``lo`` and ``hi`` inclusive (no upper bound when ``hi`` is None)."""

    def check(value: int) -> int:
        if value < lo or (hi is not None and value > hi):
            bounds = f"from {lo:,} to {hi:,}" if hi is not None else f"of at least {lo:,}"
            fail(f"must be an integer {bounds} {shown(value)}")
        return value

    return AfterValidator(check)


def one_of(*choices: str, upper: bool = False) -> AfterValidator:
    """One of ``choices``; with ``upper`` the value is matched case-insensitively and upper-cased."""

    def check(value: str) -> str:
        candidate = value.upper() if upper else value
        if candidate not in choices:
            fail(f"must be one of {', '.join(choices)} {shown(value)}")
        return candidate

    return AfterValidator(check)


def text(lo: int, hi: int | None = None) -> AfterValidator:
    """A string of ``lo``..``hi`` characters; never a NUL, which no process argument can hold."""

    def check(value: str) -> str:
        if len(value) < lo or (hi is not None and len(value) > hi):
            size = f"{lo}-{hi:,} characters" if hi is not None else f"at least {lo} characters"
            fail(f"must be {size} long {shown(value)}")
        if "\x00" in value:
            fail(f"must not contain a NUL character {shown(value)}")
        return value

    return AfterValidator(check)


def list_size(lo: int, hi: int | None = None) -> AfterValidator:
    """A list of ``lo``..``hi`` entries."""

    def check(value: list[Any]) -> list[Any]:
        if len(value) < lo or (hi is not None and len(value) > hi):
            size = f"{lo}-{hi:,} entries" if hi is not None else f"at least {lo} entries"
            fail(f"must have {size} (got {len(value)})")
        return value

    return AfterValidator(check)


def only_one_of(model: BaseModel, names: Sequence[str], required: bool) -> None:
    """At most one (exactly one when ``required``) of the fields ``names`` may be given."""
    given = [name for name in names if getattr(model, name) is not None]
    choices = ", ".join(names[:-1]) + f" or {names[-1]}"
    if required and not given:
        fail(f"is required: give exactly one of {choices}", names[0])
    if len(given) > 1:
        fail(f"cannot be combined with {given[0]}: give exactly one of {choices}", given[1])


# ---------------------------------------------------------------------------------------------
# Names and references

NAME_PATTERN = r"[A-Za-z0-9_-]{1,128}"
NAME_RE = re.compile(NAME_PATTERN)
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
JOB_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
NAME_RULE = "must be 1-128 characters of letters, digits, hyphens and underscores"
JOB_NAME_RULE = NAME_RULE + ", starting with a letter or digit"

# Loose on purpose: the partition, region and account are whatever the head is configured with,
# but the service must be batch and the resource type must be the one the field is about.
ARN_RE = re.compile(r"arn:[A-Za-z0-9-]+:batch:[^:/\s]+:[^:/\s]+:(?P<type>[a-z-]+)/(?P<id>\S+)")


def split_arn(value: str) -> tuple[str, str] | None:
    """``(resource type, resource id)`` of a batch ARN, or None when ``value`` is no ARN."""
    match = ARN_RE.fullmatch(value)
    return (match["type"], match["id"]) if match else None


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        fail(f"{NAME_RULE} {shown(value)}")
    return value


def _check_job_name(value: str) -> str:
    if not JOB_NAME_RE.fullmatch(value):
        fail(f"{JOB_NAME_RULE} {shown(value)}")
    return value


def ref_name(value: str) -> str:
    """The resource name inside a name-or-ARN ref (``q1`` for ``arn:...:job-queue/q1``)."""
    parts = split_arn(value)
    return parts[1] if parts else value


def check_ref(resource: str, noun: str) -> Callable[[str], str]:
    """A check for a field that takes a name or an ARN of ``resource`` (e.g. ``job-queue``)."""
    rule = (
        f"must be a {noun} name (1-128 letters, digits, hyphens and underscores) or an ARN "
        f"arn:aws:batch:REGION:ACCOUNT:{resource}/NAME"
    )

    def check(value: str) -> str:
        parts = split_arn(value)
        wrong_type = parts is not None and parts[0] != resource
        name = parts[1] if parts else value
        if wrong_type or not NAME_RE.fullmatch(name):
            fail(f"{rule} {shown(value)}")
        return value

    return check


def check_arn(resource: str, noun: str) -> Callable[[str], str]:
    """A check for a field that takes only an ARN of ``resource``."""
    rule = f"must be a {noun} ARN arn:aws:batch:REGION:ACCOUNT:{resource}/NAME"

    def check(value: str) -> str:
        parts = split_arn(value)
        if not parts or parts[0] != resource or not NAME_RE.fullmatch(parts[1]):
            fail(f"{rule} {shown(value)}")
        return value

    return check


DEFINITION_REF_RE = re.compile(rf"(?P<name>{NAME_PATTERN})(?::(?P<revision>[1-9][0-9]{{0,9}}))?")


def split_definition_ref(value: str) -> tuple[str, int | None] | None:
    """``(name, revision or None)`` of a job definition ref, or None when it is malformed."""
    parts = split_arn(value)
    if parts is not None and parts[0] != "job-definition":
        return None
    match = DEFINITION_REF_RE.fullmatch(parts[1] if parts else value)
    if not match:
        return None
    return match["name"], int(match["revision"]) if match["revision"] else None


def check_definition_ref(require_revision: bool) -> Callable[[str], str]:
    """A check for a job definition ref: ``name``, ``name:revision`` or its ARN."""
    forms = "name:REVISION" if require_revision else "name, name:REVISION"
    rule = (
        f"must be a job definition {forms} or an ARN "
        "arn:aws:batch:REGION:ACCOUNT:job-definition/NAME:REVISION, where the name is 1-128 "
        "letters, digits, hyphens and underscores and the revision a positive integer"
    )

    def check(value: str) -> str:
        parts = split_definition_ref(value)
        if parts is None or (require_revision and parts[1] is None):
            fail(f"{rule} {shown(value)}")
        return value

    return check


_JOB_ID_RE = re.compile(r"\S{1,256}")


def job_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a job ID, or None. Job ids are UUIDs (``id:index`` for array
    children, ``id#node`` for nodes); an unknown id is the head's business, but an empty or
    blank one is malformed."""
    if _JOB_ID_RE.fullmatch(value):
        return None
    return f"must be a job ID: 1-256 characters without spaces {shown(value)}"


def _check_job_id(value: str) -> str:
    problem = job_id_problem(value)
    if problem is not None:
        fail(problem)
    return value


def _check_token(value: str) -> str:
    if not value:
        fail('must be the nextToken of a previous response, not an empty string (got "")')
    return value


Name = Annotated[str, AfterValidator(_check_name)]
JobName = Annotated[str, AfterValidator(_check_job_name)]
JobId = Annotated[str, AfterValidator(_check_job_id)]
QueueRef = Annotated[str, AfterValidator(check_ref("job-queue", "job queue"))]
ComputeEnvironmentRef = Annotated[
    str, AfterValidator(check_ref("compute-environment", "compute environment"))
]
DefinitionRef = Annotated[str, AfterValidator(check_definition_ref(require_revision=False))]
DefinitionRevisionRef = Annotated[str, AfterValidator(check_definition_ref(require_revision=True))]
SchedulingPolicyArn = Annotated[
    str, AfterValidator(check_arn("scheduling-policy", "scheduling policy"))
]
NextToken = Annotated[str, AfterValidator(_check_token)]
DescribeMaxResults = Annotated[int, int_range(1, 100)]
NonEmpty = Annotated[str, text(1)]
Reason = Annotated[str, text(1, 1024)]
StringList = list[Annotated[str, text(0)]]

# ---------------------------------------------------------------------------------------------
# Tags and parameters


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if not 1 <= len(tags) <= 50:
        fail(f"must have 1-50 tags (got {len(tags)})")
    for key, value in tags.items():
        _check_tag_key(key, at=key)
        if len(value) > 256:
            fail(f"tag values must be at most 256 characters {shown(value)}", key)
    return tags


def _check_tag_key(key: str, at: str = "") -> str:
    if not 1 <= len(key) <= 128:
        fail(f"tag keys must be 1-128 characters {shown(key)}", at)
    if key.lower().startswith("aws:"):
        fail(f"tag keys starting with aws: are reserved for AWS {shown(key)}", at)
    return key


def _check_tag_keys(keys: list[str]) -> list[str]:
    if not 1 <= len(keys) <= 50:
        fail(f"must have 1-50 tag keys (got {len(keys)})")
    for index, key in enumerate(keys):
        _check_tag_key(key, at=f"[{index}]")
    return keys


def _check_parameters(parameters: dict[str, str]) -> dict[str, str]:
    # A value can become a whole argument of the command (``Ref::name``), and no process
    # argument can hold a NUL.
    for key, value in parameters.items():
        if not key:
            fail('parameter names must not be empty (got "")', key)
        if "\x00" in key:
            fail(f"parameter names must not contain a NUL character {shown(key)}")
        if "\x00" in value:
            fail(f"must not contain a NUL character {shown(value)}", key)
    return parameters


Tags = Annotated[dict[str, str], AfterValidator(_check_tags)]
TagKeys = Annotated[list[str], AfterValidator(_check_tag_keys)]
Parameters = Annotated[dict[str, str], AfterValidator(_check_parameters)]
