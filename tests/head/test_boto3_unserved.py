"""The operations of botocore's model the head does not serve, through boto3 and the aws CLI:
SageMaker's are refused saying what to use instead, never a 404 (hpcbatch/head/api/catalog.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess


def _error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def test_unserved_operations_say_why_through_boto3(head: HeadProcess) -> None:
    b = head.batch()
    message = _error(
        b.submit_service_job,
        jobName="t",
        jobQueue="default",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload="{}",
    )
    assert message.startswith("SubmitServiceJob is SageMaker-only")
    assert "use SubmitJob on a job queue instead" in message
    assert "DescribeComputeEnvironments instead" in _error(b.describe_service_environments)


def test_the_aws_cli_hears_why_too(head: HeadProcess, tmp_path: Path) -> None:
    refused = head.aws(tmp_path, "list-service-jobs")
    assert refused.returncode == 255
    assert (
        "An error occurred (ClientException) when calling the ListServiceJobs operation: "
        "ListServiceJobs is SageMaker-only"
    ) in refused.stderr
