"""Every operation of this release through boto3 against the real head, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess


def _error(call: object, **kwargs: object) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)  # type: ignore[operator]
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def test_compute_environment_and_queue_lifecycle(head: HeadProcess) -> None:
    b = head.batch()
    made = b.create_compute_environment(
        computeEnvironmentName="extra",
        type="MANAGED",
        computeResources={"type": "LOCAL", "maxvCpus": 1, "subnets": []},
        tags={"team": "hpc"},
    )
    assert made["computeEnvironmentArn"].endswith(":compute-environment/extra")
    b.create_job_queue(
        jobQueueName="high",
        priority=10,
        computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": "local"},
            {"order": 2, "computeEnvironment": "extra"},
        ],
    )
    (queue,) = b.describe_job_queues(jobQueues=["high"])["jobQueues"]
    assert [
        o["computeEnvironment"].rsplit("/", 1)[1] for o in queue["computeEnvironmentOrder"]
    ] == ["local", "extra"]
    assert "disable it before deleting it" in _error(
        b.delete_compute_environment, computeEnvironment="extra"
    )
    b.update_compute_environment(computeEnvironment="extra", state="DISABLED")
    assert "still used by job queue(s) high" in _error(
        b.delete_compute_environment, computeEnvironment="extra"
    )
    assert "disable it before deleting it" in _error(b.delete_job_queue, jobQueue="high")
    b.update_job_queue(jobQueue="high", state="DISABLED", priority=5)
    (queue,) = b.describe_job_queues(jobQueues=["high"])["jobQueues"]
    assert (queue["state"], queue["priority"]) == ("DISABLED", 5)
    b.delete_job_queue(jobQueue="high")
    b.delete_compute_environment(computeEnvironment="extra")
    names = [
        c["computeEnvironmentName"]
        for c in b.describe_compute_environments()["computeEnvironments"]
    ]
    assert names == ["local"]


def test_job_definition_revisions_and_references(head: HeadProcess) -> None:
    b = head.batch()
    for word in ("one", "two"):
        b.register_job_definition(
            jobDefinitionName="echo",
            type="container",
            containerProperties={"command": ["echo", word]},
        )
    defs = b.describe_job_definitions(jobDefinitionName="echo")["jobDefinitions"]
    assert [d["revision"] for d in defs] == [1, 2]
    arn = defs[0]["jobDefinitionArn"]
    for ref in ("echo", "echo:1", arn):
        job = b.submit_job(jobName="r", jobQueue="default", jobDefinition=ref)
        (detail,) = b.describe_jobs(jobs=[job["jobId"]])["jobs"]
        expected = "two" if ref == "echo" else "one"
        assert detail["container"]["command"] == ["echo", expected]
    b.deregister_job_definition(jobDefinition="echo:2")
    (inactive,) = b.describe_job_definitions(jobDefinitions=["echo:2"])["jobDefinitions"]
    assert inactive["status"] == "INACTIVE"
    job = b.submit_job(jobName="r", jobQueue="default", jobDefinition="echo")
    (detail,) = b.describe_jobs(jobs=[job["jobId"]])["jobs"]
    assert detail["jobDefinition"].endswith("/echo:1")


def test_tags_round_trip_on_an_arn_with_slashes(head: HeadProcess) -> None:
    b = head.batch()
    arn = b.describe_job_queues(jobQueues=["default"])["jobQueues"][0]["jobQueueArn"]
    b.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    b.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert b.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}


def test_list_jobs_defaults_to_running_and_pages(head: HeadProcess) -> None:
    b = head.batch()
    ids = [
        b.submit_job(
            jobName=f"p{i}",
            jobQueue="default",
            jobDefinition="default",
            containerOverrides={"command": ["sleep", "30"]},
            schedulingPriorityOverride=0,
        )["jobId"]
        for i in range(7)
    ]
    assert b.list_jobs(jobQueue="default", jobStatus="RUNNABLE", maxResults=2)["nextToken"]
    seen: list[str] = []
    token = None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = b.list_jobs(
            jobQueue="default",
            filters=[{"name": "JOB_NAME", "values": ["P*"]}],
            maxResults=3,
            **kwargs,
        )
        seen += [j["jobId"] for j in page["jobSummaryList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert b.list_jobs(multiNodeJobId=ids[0])["jobSummaryList"] == []  # none are multi-node
    running = b.list_jobs(jobQueue="default")["jobSummaryList"]
    assert all(j["status"] == "RUNNING" for j in running)
    for job_id in ids:
        b.terminate_job(jobId=job_id, reason="done")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"jobName": "bad name"}, "jobName: must be 1-128 characters"),
        ({"jobQueue": "nope"}, "jobQueue: no job queue named 'nope'"),
        ({"jobDefinition": "nope"}, "jobDefinition: no ACTIVE job definition named 'nope'"),
        ({"arrayProperties": {"size": 1}}, "arrayProperties.size"),
        ({"retryStrategy": {"attempts": 11}}, "retryStrategy.attempts"),
        ({"timeout": {"attemptDurationSeconds": 0}}, "timeout.attemptDurationSeconds"),
        ({"schedulingPriorityOverride": 10000}, "schedulingPriorityOverride"),
        ({"dependsOn": [{"jobId": "ghost"}]}, "dependsOn[0].jobId"),
        (
            {"containerOverrides": {"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}},
            "reserved",
        ),
    ],
)
def test_bad_submissions_are_client_errors_and_store_nothing(
    head: HeadProcess, params: dict, message: str
) -> None:
    b = head.batch()
    request = {"jobName": "ok", "jobQueue": "default", "jobDefinition": "default", **params}
    assert message in _error(b.submit_job, **request)
    assert (
        b.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["*"]}])[
            "jobSummaryList"
        ]
        == []
    )


def test_malformed_requests_get_400_never_500(head: HeadProcess) -> None:
    url = f"{head.endpoint}/v1/submitjob"
    for body in (b"{not json", b"[]", b'{"jobName": 5}', b"x" * 40_000):
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body[:20]
        assert response.headers["x-amzn-errortype"] == "ClientException"
        assert response.json()["__type"] == "ClientException"
        assert response.headers["x-amzn-requestid"]


def test_strict_header_refuses_what_no_node_can_hold(head: HeadProcess) -> None:
    body = {
        "jobName": "big",
        "jobQueue": "default",
        "jobDefinition": "default",
        "containerOverrides": {"resourceRequirements": [{"type": "VCPU", "value": "99"}]},
    }
    response = httpx.post(
        f"{head.endpoint}/v1/submitjob",
        content=json.dumps(body),
        headers={"x-hpcbatch-strict": "1"},
    )
    assert response.status_code == 400
    assert "needs 99 vCPUs" in response.json()["message"]


def test_aws_cli_works_unchanged(head: HeadProcess, tmp_path: Path) -> None:
    out = head.aws(tmp_path, "describe-job-queues")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["jobQueues"][0]["jobQueueName"] == "default"
    bad = head.aws(
        tmp_path,
        "submit-job",
        "--job-name",
        "x",
        "--job-queue",
        "nope",
        "--job-definition",
        "default",
    )
    assert bad.returncode == 255
    assert "An error occurred (ClientException) when calling the SubmitJob operation" in bad.stderr


def test_nodes_drain_and_resume(head: HeadProcess) -> None:
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    assert [n["name"] for n in nodes] == ["local-1", "local-2"]
    assert nodes[0]["vcpus"] == "2" and nodes[0]["state"] == "ONLINE"
    drained = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/nodes/local-1/drain", json={"reason": "maintenance"}
    ).json()["node"]
    assert (drained["state"], drained["stateReason"]) == ("DRAINED", "maintenance")
    resumed = httpx.post(f"{head.endpoint}/hpcbatch/v1/nodes/local-1/resume").json()["node"]
    assert resumed["state"] == "ONLINE"


def test_integers_beyond_aws_widths_are_client_errors(head: HeadProcess) -> None:
    b = head.batch()
    assert "containerOverrides.vcpus: must be an integer from -2,147,483,648 to 2,147,483,647" in (
        _error(
            b.submit_job,
            jobName="huge",
            jobQueue="default",
            jobDefinition="default",
            containerOverrides={"vcpus": 2**70},
        )
    )
    assert "containerProperties.memory: must be an integer from" in _error(
        b.register_job_definition,
        jobDefinitionName="huge",
        type="container",
        containerProperties={"command": ["true"], "memory": 2**31},
    )
    assert "computeEnvironmentOrder[0].order: must be an integer from" in _error(
        b.create_job_queue,
        jobQueueName="huge",
        priority=1,
        computeEnvironmentOrder=[{"order": 2**31, "computeEnvironment": "local"}],
    )
    assert b.describe_job_definitions(jobDefinitionName="huge")["jobDefinitions"] == []
    assert b.describe_job_queues(jobQueues=["huge"])["jobQueues"] == []


def test_responses_carry_the_members_aws_fills(head: HeadProcess) -> None:
    """Where AWS names an ECS cluster, instance or task, the head names its own node pool, node
    and attempt, as ARNs; summaries say whether a job was cancelled or terminated."""
    b = head.batch()
    prefix = "arn:aws:batch:local:000000000000:"
    (ce,) = b.describe_compute_environments(computeEnvironments=["local"])["computeEnvironments"]
    assert ce["ecsClusterArn"] == prefix + "node-pool/local"
    resources = ce["computeResources"]  # the built-in CE's capacity is its configured nodes'
    assert (resources["minvCpus"], resources["maxvCpus"], resources["desiredvCpus"]) == (0, 4, 4)
    job_id = b.submit_job(jobName="m", jobQueue="default", jobDefinition="default")["jobId"]
    done = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert done["container"]["containerInstanceArn"] == prefix + "node/local-1"
    assert done["container"]["taskArn"] == prefix + f"attempt/{job_id}/1"
    assert done["attempts"][0]["container"]["taskArn"] == prefix + f"attempt/{job_id}/1"
    (summary,) = b.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["m"]}])[
        "jobSummaryList"
    ]
    assert (summary["isCancelled"], summary["isTerminated"]) == (False, False)
    assert summary["capacityUsage"] == [{"capacityUnit": "VCPU", "quantity": 1.0}]
    assert "shareIdentifier" not in summary  # a FIFO queue's job has none
