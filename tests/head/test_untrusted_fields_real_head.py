"""Fields that reach a job's process, through boto3 and the real head: a NUL or an empty user is
a ClientException naming the field; container-only features are refused; a log offset past
2**62 never reaches the agent; and the head still runs jobs afterwards."""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess


def _refused(call: object, **kwargs: object) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)  # type: ignore[operator]
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ClientException",
        400,
    )
    return str(error["Error"]["Message"])


def test_process_fields_are_checked_at_the_api(head: HeadProcess) -> None:
    b = head.batch()
    register = b.register_job_definition

    def container(**fields: object) -> dict[str, object]:
        return {"jobDefinitionName": "x", "type": "container", "containerProperties": fields}

    message = _refused(register, **container(command=["true"], user=""))
    assert message.startswith("containerProperties.user:") and "empty" in message
    message = _refused(register, **container(command=["true"], user="ro\x00ot"))
    assert message.startswith("containerProperties.user:") and "NUL" in message
    message = _refused(register, **container(command=["true"], privileged=True))
    assert message.startswith("containerProperties.privileged:") and "processes" in message
    message = _refused(
        register, parameters={"p": "a\x00b"}, **container(command=["echo", "Ref::p"])
    )
    assert message.startswith("parameters.p:") and "NUL" in message
    register(parameters={"p": "fine"}, **container(command=["echo", "Ref::p"]))
    submit = b.submit_job
    message = _refused(
        submit, jobName="j", jobQueue="default", jobDefinition="x", parameters={"p": "\x00"}
    )
    assert message.startswith("parameters.p:") and "NUL" in message
    job_id = submit(jobName="j", jobQueue="default", jobDefinition="x")["jobId"]
    assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    logs = f"{head.endpoint}/hpcbatch/v1/jobs/{job_id}/logs"
    for offset in (str(2**63), "-1", "\u00b2"):
        response = httpx.get(logs, params={"offset": offset}, timeout=10)
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("offset: must be an integer from 0 to 2**62")
    assert head.get(f"/hpcbatch/v1/jobs/{job_id}/logs")["data"] == "fine\n"
