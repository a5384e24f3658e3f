"""Signed requests to a real head with keys it issued: boto3 acts as the key's user, and a wrong
secret, a body changed after signing, a date 6 minutes off, a disabled key and an unknown key are
each refused with AWS's error type, changing nothing, and logged without the secret."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.auth.unixusers import ALICE
from tests.head.headproc import HeadProcess


@pytest.fixture
def head(users: None, tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=2, memory=2048)
    try:
        yield process.start()
    finally:
        process.cleanup()


def issue(head: HeadProcess, name: str, unix_user: str) -> tuple[str, str]:
    root = head.credentials()  # root's key, to show that admin routes take signatures too
    answer = signed_post(head, root, "/hpcbatch/v1/users", {"name": name, "unixUser": unix_user})
    return answer["accessKeyId"], answer["secretAccessKey"]


def signed_post(head: HeadProcess, key: tuple[str, str], path: str, body: Any) -> Any:
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=head.endpoint + path, data=data)
    request.headers["Content-Type"] = "application/json"
    botocore.auth.SigV4Auth(Credentials(*key), "batch", "local").add_auth(request)
    response = httpx.post(head.endpoint + path, content=data, headers=dict(request.headers))
    response.raise_for_status()
    return response.json()


def client(head: HeadProcess, key_id: str, secret: str) -> Any:
    return head.batch((key_id, secret))


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    return str(response["Error"]["Code"])


def submit(batch: Any) -> Any:
    return batch.submit_job(
        jobName="signed",
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": ["id", "-un"]},
    )


def test_a_key_acts_as_its_unix_user_whoever_opened_the_connection(head: HeadProcess) -> None:
    key_id, secret = issue(head, "alice", ALICE)
    job_id = submit(client(head, key_id, secret))["jobId"]  # this test runs as root
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=30)
    assert job["status"] == "SUCCEEDED", head.story(job_id)
    assert head.raw_describe(job_id)["hpcbatch"]["owner"] == ALICE
    assert head.get(f"/hpcbatch/v1/jobs/{job_id}/logs")["data"] == f"{ALICE}\n"
    story = head.get(f"/hpcbatch/v1/jobs/{job_id}/history")["events"]
    assert story[0]["cause"].endswith(f"by {ALICE} (key {key_id})")


def test_each_bad_signature_is_refused_with_awss_error_and_changes_nothing(
    head: HeadProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, secret = issue(head, "alice", ALICE)
    before = head.batch().list_jobs(jobQueue="default", jobStatus="RUNNABLE")["jobSummaryList"]

    wrong_secret = client(head, key_id, "x" * 40)
    assert error_code(lambda: submit(wrong_secret)) == "InvalidSignatureException"

    tampered = client(head, key_id, secret)

    def change_body(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b"signed", b"sigXed")

    tampered.meta.events.register("before-send.batch.SubmitJob", change_body)
    assert error_code(lambda: submit(tampered)) == "InvalidSignatureException"

    unknown = client(head, "HPCB" + "Z" * 16, secret)
    assert error_code(lambda: submit(unknown)) == "UnrecognizedClientException"

    with monkeypatch.context() as patch:
        off = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
            minutes=6
        )
        patch.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: off)
        late = client(head, key_id, secret)
        assert error_code(lambda: submit(late)) == "InvalidSignatureException"

    root = head.credentials()
    signed_post(head, root, f"/hpcbatch/v1/users/alice/keys/{key_id}/disable", {})
    assert error_code(lambda: submit(client(head, key_id, secret))) == "UnrecognizedClientException"

    after = head.batch().list_jobs(jobQueue="default", jobStatus="RUNNABLE")["jobSummaryList"]
    assert before == after == []
    assert not head.batch().list_jobs(jobQueue="default", jobStatus="SUCCEEDED")["jobSummaryList"]
    log = head.log.read_text()
    assert log.count("InvalidSignatureException") == 3
    assert log.count("UnrecognizedClientException") == 2 and key_id in log
    assert secret not in log
