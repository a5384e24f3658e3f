"""parse_request itself: JSON decoding, size limits, error shapes, operations, echoing back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbatch.errors import ClientError, ValidationError
from hpcbatch.head.api.models import SubmitJobRequest, aws_fields
from hpcbatch.head.api.parse import OPERATIONS, parse_request
from tests.api.helpers import body, reject

SUBMIT = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}


def _error(operation: str, raw: bytes, **options: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_request(operation, raw, **options)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"{", "request body is not valid JSON: "),
        (b'{"jobName": "j",}', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"jobName": "a", "jobName": "b"}', 'key "jobName" appears twice'),
        (b"[]", "must be a JSON object (got [])"),
        (b'"submit"', "must be a JSON object"),
        (b"null", "must be a JSON object (got null)"),
        (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "recursion"),
    ],
)
def test_malformed_bodies(raw: bytes, phrase: str) -> None:
    error = _error("submitjob", raw)
    assert error.field == ""
    assert error.rule.startswith("request body is not valid JSON")
    assert phrase in error.rule


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}"])
def test_empty_body_is_an_empty_object(raw: bytes) -> None:
    parse_request("describejobqueues", raw)
    assert _error("submitjob", raw).field == "jobName"


@pytest.mark.parametrize(
    ("operation", "limit", "words"),
    [
        ("submitjob", 30 * 1024, "a SubmitJob request may be at most 30 KiB (30,720 bytes)"),
        ("registerjobdefinition", 24 * 1024, "at most 24 KiB (24,576 bytes)"),
        ("listjobs", 256 * 1024, "a ListJobs request may be at most 256 KiB (262,144 bytes)"),
    ],
)
def test_body_size_limits(operation: str, limit: int, words: str) -> None:
    error = _error(operation, b" " * (limit + 1))
    assert error.field == ""
    assert f"request body is {limit + 1:,} bytes" in error.rule
    assert words in error.rule
    # A body of exactly the limit is judged on its content, not its size.
    padded = body(SUBMIT).ljust(limit)
    if operation == "submitjob":
        assert isinstance(parse_request(operation, padded), SubmitJobRequest)


def test_unknown_operation() -> None:
    error = _error("launchjob", b"{}")
    assert (error.field, error.rule) == ("", 'unknown operation "launchjob"')


def test_operation_names_are_case_insensitive() -> None:
    assert isinstance(parse_request("SubmitJob", body(SUBMIT)), SubmitJobRequest)


def test_operations_table() -> None:
    assert len(OPERATIONS) == 38  # all 48 but the 10 SageMaker ones
    for key, (aws_name, model) in OPERATIONS.items():
        assert key == aws_name.lower()
        assert model.__name__ == f"{aws_name}Request"


def test_error_is_a_client_error_whose_message_starts_with_the_field() -> None:
    error = reject(
        "submitjob",
        {**SUBMIT, "arrayProperties": {"size": 1}},
        "arrayProperties.size",
        "from 2 to 10,000 (got 1)",
    )
    assert isinstance(error, ClientError)
    assert error.aws_type == "ClientException"
    assert error.http_status == 400
    assert error.message == "arrayProperties.size: must be an integer from 2 to 10,000 (got 1)"


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"jobName": None}, "jobName", "must be a string (got null)"),
        ({"jobName": ["j"]}, "jobName", 'must be a string (got ["j"])'),
        ({"dependsOn": {}}, "dependsOn", "must be a list (got {})"),
        ({"containerOverrides": []}, "containerOverrides", "must be an object (got [])"),
        (
            {"timeout": {"attemptDurationSeconds": 60.0}},
            "timeout.attemptDurationSeconds",
            "must be an integer (got 60.0)",
        ),
        ({"unknownThing": 1}, "unknownThing", "is not a known parameter of SubmitJob"),
        (
            {"containerOverrides": {"environment": [{"name": "A", "valu": "1"}]}},
            "containerOverrides.environment[0].valu",
            "is not a known parameter of SubmitJob",
        ),
    ],
)
def test_pydantic_errors_are_converted(patch: dict[str, Any], field: str, rule: str) -> None:
    error = _error("submitjob", body({**SUBMIT, **patch}))
    assert (error.field, error.rule) == (field, rule)


def test_a_quota_share_policy_needs_its_strategy_as_in_aws_model() -> None:
    """botocore's model makes ``idleResourceAssignmentStrategy`` required (boto3 never sends
    a quotaSharePolicy without it); a raw request without it is refused the same way."""
    error = _error("createschedulingpolicy", body({"name": "p", "quotaSharePolicy": {}}))
    assert (error.field, error.rule) == (
        "quotaSharePolicy.idleResourceAssignmentStrategy",
        "is required",
    )


def test_long_values_are_shortened_in_messages() -> None:
    error = _error("submitjob", body({**SUBMIT, "jobName": "x" * 500}))
    assert len(error.rule) < 250
    assert error.rule.endswith("...)")


def test_path_params_may_not_also_come_in_the_body() -> None:
    arn = "arn:aws:batch:us-east-1:1:job-queue/q"
    error = _error(
        "tagresource",
        body({"resourceArn": arn, "tags": {"a": "b"}}),
        path_params={"resourceArn": arn},
    )
    assert error.field == "resourceArn"
    assert "belongs in the URL path of TagResource" in error.rule


def test_aws_fields_keeps_what_was_given_and_drops_the_rest() -> None:
    data = {
        **SUBMIT,
        "containerOverrides": {"environment": [{"name": "A"}], "command": ["x"]},
        "tags": {"k": "v"},
        "eksPropertiesOverride": {"podProperties": {"metadata": {"labels": {"a": "b"}}}},
    }
    parsed = parse_request("submitjob", body(data))
    assert aws_fields(parsed) == data
    assert json.loads(json.dumps(aws_fields(parsed))) == data


# ---------------------------------------------------------------------------------------------
# Whatever arrives, only our ValidationError comes out

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=12)
    | st.sampled_from(["VCPU", "SEQUENTIAL", "0:", "RETRY", "q", "arn:aws:batch:r:1:job/x"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _request_like(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = list(OPERATIONS[operation][1].model_fields)
    return st.dictionaries(st.sampled_from(fields), _JSON, max_size=len(fields))


@pytest.mark.parametrize(
    "operation",
    [
        "submitjob",
        "registerjobdefinition",
        "listjobs",
        "createjobqueue",
        "createcomputeenvironment",
    ],
)
def test_no_other_exception_escapes(operation: str) -> None:
    @settings(max_examples=60, deadline=None, database=None)
    @given(_request_like(operation))
    def check(data: dict[str, Any]) -> None:
        try:
            parse_request(operation, body(data))
        except ValidationError as error:
            assert isinstance(error.field, str) and error.rule

    check()


SURROGATE = "is not valid Unicode: it holds a lone surrogate (a \\ud800-\\udfff escape)"


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        # refused by a rule: the rule's message, which shows the value, could not be built
        (b'{"jobName": "\\ud800"}', "jobName", SURROGATE),
        # accepted by every rule: the launch message to the agent could not be encoded, and
        # the head's loop stopped
        (
            b'{"containerOverrides": {"command": ["x\\udfffy"]}}',
            "containerOverrides.command[0]",
            SURROGATE,
        ),
        (b'{"tags": {"k": "\\uDBFF"}}', "tags.k", SURROGATE),
        (b'{"tags": {"\\ud800": "v"}}', "tags", f"a member's name {SURROGATE}"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_its_field(raw: bytes, field: str, rule: str) -> None:
    error = _error("submitjob", raw[:1] + b'"jobQueue": "q", "jobDefinition": "d", ' + raw[1:])
    assert (error.field, error.rule) == (field, rule)


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    raw = (
        b'{"jobName": "j", "jobQueue": "q", "jobDefinition": "d", "tags": {"k": "\\ud83d\\ude00"}}'
    )
    assert parse_request("submitjob", raw).tags == {"k": "\U0001f600"}  # type: ignore[attr-defined]
