"""ARNs in the caller's region (issue 14 item 6): a head with no region configured takes each
signed caller's from its signature's scope, as AWS's ARNs carry the region a client talks to;
one with a region configured accepts signatures for that region alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import load_config
from tests.head.headproc import HeadProcess, wait_for

ACCOUNT = "000000000000"


def _arn(region: str, resource: str) -> str:
    return f"arn:aws:batch:{region}:{ACCOUNT}:{resource}"


def test_each_caller_sees_arns_in_the_region_it_signed_for(head: HeadProcess) -> None:
    ireland, ohio = head.batch(region="eu-west-1"), head.batch(region="us-east-2")
    queues = ireland.describe_job_queues()["jobQueues"]
    assert [q["jobQueueArn"] for q in queues] == [_arn("eu-west-1", "job-queue/default")]
    assert queues[0]["computeEnvironmentOrder"][0]["computeEnvironment"] == _arn(
        "eu-west-1", "compute-environment/local"
    )
    made = ohio.create_job_queue(
        jobQueueName="q2",
        priority=1,
        computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": _arn("us-east-2", "compute-environment/local")}
        ],
    )
    assert made["jobQueueArn"] == _arn("us-east-2", "job-queue/q2")

    # An ARN as another caller was shown it names the same queue (the name is what counts).
    job = ireland.submit_job(jobName="j", jobQueue=made["jobQueueArn"], jobDefinition="default")
    assert job["jobArn"] == _arn("eu-west-1", f"job/{job['jobId']}")
    done = wait_for(
        lambda: (
            (d := ohio.describe_jobs(jobs=[job["jobId"]])["jobs"][0])["status"]
            in ("SUCCEEDED", "FAILED")
            and d
        ),
        what="the job to finish",
    )
    assert done["status"] == "SUCCEEDED"
    assert done["jobArn"] == _arn("us-east-2", f"job/{job['jobId']}")
    assert done["jobQueue"] == _arn("us-east-2", "job-queue/q2")
    assert done["jobDefinition"] == _arn("us-east-2", "job-definition/default:1")

    # A caller signing for the head's stored placeholder region sees that one.
    local = head.batch(region="local").describe_job_queues(jobQueues=["q2"])["jobQueues"]
    assert local[0]["jobQueueArn"] == _arn("local", "job-queue/q2")


def test_a_configured_region_is_the_only_one_signatures_may_name(tmp_path: Path) -> None:
    head = HeadProcess(tmp_path / "head")
    head.config.write_text('region = "eu-north-1"\n' + head.config.read_text())
    try:
        head.start()
        queues = head.batch(region="eu-north-1").describe_job_queues()["jobQueues"]
        assert queues[0]["jobQueueArn"] == _arn("eu-north-1", "job-queue/default")
        with pytest.raises(ClientError) as refused:
            head.batch(region="us-east-1").describe_job_queues()
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidSignatureException"
        assert "this head's region is 'eu-north-1'" in error["Message"]
    finally:
        head.cleanup()


@pytest.mark.parametrize("bad", ["", "eu west", "-eu", "x" * 64, 7])
def test_a_config_region_that_is_no_region_name_is_refused(tmp_path: Path, bad: object) -> None:
    config = tmp_path / "head.toml"
    config.write_text(f"region = {bad!r}\n".replace("'", '"'))
    with pytest.raises(ValidationError) as refused:
        load_config(config)
    assert "config.region" in str(refused.value) and "region name" in str(refused.value)
