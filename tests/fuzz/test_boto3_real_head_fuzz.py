"""boto3 itself against a real head process: every operation of botocore's model called through
a boto3 client (client-side parameter validation off, so invalid shapes reach the wire as
boto3 serializes them), signed with a key the head issued, served by uvicorn and the head's
HTTP protocol. No answer may be a 5xx; an error must parse as AWS's (botocore reads its code);
the head stays up, its log free of tracebacks. The in-process fuzzers check invariants; this
one checks that the real wire path agrees with them. Budget: ``HPCBATCH_FUZZ_EXAMPLES`` / 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from botocore.model import OperationModel
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.fuzz.botoshapes import invalid, valid
from tests.fuzz.test_operations_fuzz import EXAMPLES, FUZZ, WEIGHTED
from tests.fuzz.wire import resolve
from tests.head.headproc import HeadProcess


@pytest.fixture(scope="module")
def real_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path_factory.mktemp("boto3") / "head", nodes=1, vcpus=2)
    try:
        yield process.start()
        assert process.proc is not None and process.proc.poll() is None, "the head exited"
        log = process.log.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        process.cleanup()


@pytest.fixture(scope="module")
def client(real_head: HeadProcess) -> Any:
    return real_head.batch(parameter_validation=False)


@pytest.fixture(scope="module")
def names(client: Any) -> dict[str, list[str]]:
    """What a Ref may name in the real head: its defaults and two jobs of its own."""
    jobs = [
        client.submit_job(jobName=f"fz{i}", jobQueue="default", jobDefinition="default")["jobId"]
        for i in range(2)
    ]
    queues = client.describe_job_queues()["jobQueues"]
    ces = client.describe_compute_environments()["computeEnvironments"]
    definitions = client.describe_job_definitions()["jobDefinitions"]
    arns = [q["jobQueueArn"] for q in queues] + [c["computeEnvironmentArn"] for c in ces]
    return {
        "job": jobs,
        "queue": [q["jobQueueName"] for q in queues] + [q["jobQueueArn"] for q in queues],
        "definition": [d["jobDefinitionArn"] for d in definitions] + ["default"],
        "ce": [c["computeEnvironmentName"] for c in ces]
        + [c["computeEnvironmentArn"] for c in ces],
        "arn": arns + [d["jobDefinitionArn"] for d in definitions],
    }


def _method(client: Any, operation: OperationModel) -> Any:
    """The client's method for ``operation`` (``SubmitJob`` -> ``submit_job``)."""
    mapping = client.meta.method_to_api_mapping
    return getattr(client, next(k for k, v in mapping.items() if v == operation.name))


@st.composite
def boto3_call(draw: st.DrawFn) -> tuple[OperationModel, Any]:
    operation = draw(st.sampled_from(WEIGHTED))
    shape = operation.input_shape
    return operation, draw(st.one_of(valid(shape), invalid(shape)))


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 1))
@given(call=boto3_call())
def test_boto3_calls_never_get_a_5xx(client: Any, names: dict[str, list[str]], call: Any) -> None:
    operation, params = call
    params = resolve(params, names)
    if not isinstance(params, dict):
        return  # boto3 takes keyword arguments: a top-level non-object cannot be sent
    try:
        _method(client, operation)(**params)
        event(f"{operation.name} -> 200")
    except ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status < 500, f"{status} {error.response.get('Error')} for {operation.name}"
        assert error.response["Error"]["Code"], error.response
        event(f"{operation.name} -> {status}")
    except (BotoCoreError, TypeError, ValueError, AttributeError, OverflowError, KeyError):
        event("refused by boto3 before sending")  # never reached the head
