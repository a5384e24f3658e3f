"""Run inside a dev-cluster host's network namespace (tests/cluster/test_tls_cluster.py): boto3
and plain HTTP against the head's HTTPS listener, as a remote client would. Prints one JSON
object: what each request got (its AWS error code, or "ok")."""

from __future__ import annotations

import datetime
import json
import ssl
import sys
from typing import Any

import boto3
import botocore.auth
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

mode, endpoint, ca, key_id, secret = sys.argv[1:6]


def client(key: str, code: str) -> Any:
    return boto3.client(
        "batch",
        endpoint_url=endpoint,
        region_name="local",
        aws_access_key_id=key,
        aws_secret_access_key=code,
        verify=ca,
        config=Config(retries={"max_attempts": 1}),
    )


def outcome(work: Any) -> str:
    try:
        work()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def submit(batch: Any) -> Any:
    return batch.submit_job(
        jobName="tls", jobQueue="cluster", jobDefinition="default",
        containerOverrides={"command": ["true"]},
    )  # fmt: skip


def tamper(request: Any, **_: Any) -> None:
    request.body = request.body.replace(b'"tls"', b'"tlX"')


out: dict[str, Any] = {}
if mode == "submit":
    out["array"] = client(key_id, secret).submit_job(
        jobName="everywhere",
        jobQueue="cluster",
        jobDefinition="default",
        arrayProperties={"size": 4},
        containerOverrides={
            "command": ["sh", "-c", "id -un"],
            "resourceRequirements": [{"type": "VCPU", "value": "2"}],  # one child per host
        },
    )["jobId"]
    out["wrong secret"] = outcome(lambda: submit(client(key_id, "x" * 40)))
    tampered = client(key_id, secret)
    tampered.meta.events.register("before-send.batch.SubmitJob", tamper)
    out["body changed after signing"] = outcome(lambda: submit(tampered))
    off = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=6)
    botocore.auth.get_current_datetime = lambda *_, **__: off  # type: ignore[attr-defined]
    out["6 minutes off"] = outcome(lambda: submit(client(key_id, secret)))
    body = {"jobName": "tls", "jobQueue": "cluster", "jobDefinition": "default"}
    context = ssl.create_default_context(cafile=ca)
    plain = httpx.post(f"{endpoint}/v1/submitjob", json=body, verify=context)
    out["no signature"] = f"{plain.status_code} {plain.headers.get('x-amzn-errortype')}"
else:
    out["disabled key"] = outcome(lambda: submit(client(key_id, secret)))
print(json.dumps(out))
