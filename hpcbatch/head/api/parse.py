"""Turn the raw body of an AWS Batch REST-JSON request into a validated request model.

``parse_request(operation, body)`` is the one door: it checks the body's size against AWS's
payload limits, decodes the JSON, validates it against the operation's model, and turns every
problem - malformed JSON, a missing or unknown field, a wrong type, a broken rule - into
``hpcbatch.errors.ValidationError(field, rule)``, with ``field`` spelled as AWS spells the path
(``containerOverrides.environment[2].name``). A pydantic error never escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from hpcbatch.errors import ValidationError
from hpcbatch.head.api import models as m
from hpcbatch.head.api.models.common import RULE_ERROR, join_path, shown
from hpcbatch.head.api.models.containers import DEFAULT_MIN_TIMEOUT_SECONDS
from hpcbatch.head.api.models.integers import width_rule

# Lower-cased path name (``/v1/submitjob``) -> (AWS operation name, request model).
OPERATIONS: dict[str, tuple[str, type[BaseModel]]] = {
    name.lower(): (name, model)
    for name, model in (
        ("CreateComputeEnvironment", m.CreateComputeEnvironmentRequest),
        ("DescribeComputeEnvironments", m.DescribeComputeEnvironmentsRequest),
        ("UpdateComputeEnvironment", m.UpdateComputeEnvironmentRequest),
        ("DeleteComputeEnvironment", m.DeleteComputeEnvironmentRequest),
        ("CreateJobQueue", m.CreateJobQueueRequest),
        ("DescribeJobQueues", m.DescribeJobQueuesRequest),
        ("UpdateJobQueue", m.UpdateJobQueueRequest),
        ("DeleteJobQueue", m.DeleteJobQueueRequest),
        ("RegisterJobDefinition", m.RegisterJobDefinitionRequest),
        ("DescribeJobDefinitions", m.DescribeJobDefinitionsRequest),
        ("DeregisterJobDefinition", m.DeregisterJobDefinitionRequest),
        ("SubmitJob", m.SubmitJobRequest),
        ("DescribeJobs", m.DescribeJobsRequest),
        ("ListJobs", m.ListJobsRequest),
        ("CancelJob", m.CancelJobRequest),
        ("TerminateJob", m.TerminateJobRequest),
        ("CancelJobs", m.CancelJobsRequest),
        ("TerminateJobs", m.TerminateJobsRequest),
        ("TagResource", m.TagResourceRequest),
        ("UntagResource", m.UntagResourceRequest),
        ("ListTagsForResource", m.ListTagsForResourceRequest),
        ("CreateConsumableResource", m.CreateConsumableResourceRequest),
        ("DescribeConsumableResource", m.DescribeConsumableResourceRequest),
        ("ListConsumableResources", m.ListConsumableResourcesRequest),
        ("UpdateConsumableResource", m.UpdateConsumableResourceRequest),
        ("DeleteConsumableResource", m.DeleteConsumableResourceRequest),
        ("ListJobsByConsumableResource", m.ListJobsByConsumableResourceRequest),
        ("CreateQuotaShare", m.CreateQuotaShareRequest),
        ("DescribeQuotaShare", m.DescribeQuotaShareRequest),
        ("ListQuotaShares", m.ListQuotaSharesRequest),
        ("UpdateQuotaShare", m.UpdateQuotaShareRequest),
        ("DeleteQuotaShare", m.DeleteQuotaShareRequest),
        ("CreateSchedulingPolicy", m.CreateSchedulingPolicyRequest),
        ("DescribeSchedulingPolicies", m.DescribeSchedulingPoliciesRequest),
        ("ListSchedulingPolicies", m.ListSchedulingPoliciesRequest),
        ("UpdateSchedulingPolicy", m.UpdateSchedulingPolicyRequest),
        ("DeleteSchedulingPolicy", m.DeleteSchedulingPolicyRequest),
        ("GetJobQueueSnapshot", m.GetJobQueueSnapshotRequest),
    )
}

KIB = 1024
# AWS's documented payload limits; everything else gets a generous bound against abuse.
BODY_LIMITS: dict[str, int] = {"submitjob": 30 * KIB, "registerjobdefinition": 24 * KIB}
DEFAULT_BODY_LIMIT = 256 * KIB  # what the head reads of any request at most (app.MAX_BODY)

_TYPE_RULES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def parse_request(
    operation: str,
    body: bytes,
    *,
    min_timeout_seconds: int = DEFAULT_MIN_TIMEOUT_SECONDS,
    path_params: Mapping[str, Any] | None = None,
) -> BaseModel:
    """Validate ``body`` as the request of ``operation`` (``"submitjob"``) and return its model.

    ``min_timeout_seconds`` lowers AWS's 60-second floor on ``timeout.attemptDurationSeconds``
    for test clusters. ``path_params`` carries what the tag operations send in the URL
    (``resourceArn``; ``tagKeys`` for UntagResource), already percent-decoded.
    Raises ``hpcbatch.errors.ValidationError`` for every problem.
    """
    key = operation.lower()
    if key not in OPERATIONS:
        raise ValidationError("", f"unknown operation {json.dumps(operation)}")
    aws_name, model = OPERATIONS[key]
    _check_size(key, aws_name, body)
    data = _load_object(body)
    for name, value in (path_params or {}).items():
        if name in data:
            raise ValidationError(name, f"belongs in the URL path of {aws_name}, not in the body")
        data[name] = value
    try:
        return model.model_validate(
            data, strict=True, context={"min_timeout_seconds": min_timeout_seconds}
        )
    except pydantic.ValidationError as error:
        raise to_validation_error(error.errors()[0], aws_name) from None


def _check_size(key: str, aws_name: str, body: bytes) -> None:
    limit = BODY_LIMITS.get(key, DEFAULT_BODY_LIMIT)
    if len(body) > limit:
        readable = f"{limit // KIB} KiB" if limit < 1024 * KIB else f"{limit // (1024 * KIB)} MiB"
        raise ValidationError(
            "",
            f"request body is {len(body):,} bytes, but a {aws_name} request may be at most "
            f"{readable} ({limit:,} bytes)",
        )


def _load_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` as boto3 sends for no parameters."""
    if not body.strip():
        return {}
    try:
        data = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ValidationError("", f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValidationError(
            "",
            f"request body is not valid JSON for this API: it must be a JSON object {shown(data)}",
        )
    if b"\\u" in body:  # only a \u escape can make a lone surrogate: UTF-8 bytes cannot
        _check_unicode(data, "")
    return data


SURROGATES = re.compile("[\ud800-\udfff]")
SURROGATE_RULE = "is not valid Unicode: it holds a lone surrogate (a \\ud800-\\udfff escape)"


def _check_unicode(value: Any, path: str) -> None:
    """Refuse a lone surrogate (``"\\ud800"``, half of a UTF-16 pair): JSON's grammar lets it
    through, but it is no character, and neither pydantic's messages, nor SQLite, nor a UTF-8
    log line can encode it; named here, it is a 400 instead of a failure further in."""
    if isinstance(value, str):
        if SURROGATES.search(value):
            raise ValidationError(path, SURROGATE_RULE)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if SURROGATES.search(key):
                raise ValidationError(path, f"a member's name {SURROGATE_RULE}")
            _check_unicode(item, join_path(path, key))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two equal keys; which one the caller meant is a guess.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {json.dumps(key)} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def to_validation_error(error: ErrorDetails, aws_name: str) -> ValidationError:
    """One pydantic error as our ValidationError, with the AWS path and a plain sentence."""
    path = format_path(error["loc"])
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == RULE_ERROR:
        return ValidationError(join_path(path, str(context.get("at", ""))), str(context["rule"]))
    if kind == "missing":
        return ValidationError(path, "is required")
    if kind == "extra_forbidden":
        return ValidationError(path, f"is not a known parameter of {aws_name}")
    width = width_rule(kind, context, error.get("input"))
    if width is not None:
        return ValidationError(path, width)
    if kind in _TYPE_RULES:
        return ValidationError(path, f"{_TYPE_RULES[kind]} {shown(error.get('input'))}")
    return ValidationError(path, f"{error['msg'].rstrip('.').lower()} {shown(error.get('input'))}")


def format_path(loc: tuple[int | str, ...]) -> str:
    """``("dependsOn", 0, "type")`` -> ``dependsOn[0].type``; pydantic's ``[key]`` marks dropped."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path = join_path(path, part)
    return path
