"""Issue 12 across a dev cluster: the head's HTTPS listener on a non-loopback address, boto3 and
the aws CLI in a host's namespace with keys the head issued; each bad request refused with AWS's
code; alice's array job runs as alice on every SSH host, her logs there hers alone."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.devcluster import DevCluster
from tests.auth.conftest import users  # noqa: F401  (the fixture)
from tests.auth.unixusers import ALICE
from tests.cluster.conftest import cluster_queue, ssh_config
from tests.cluster.tls_head import TlsHead

CLIENT = Path(__file__).with_name("tls_client.py")


@pytest.fixture
def head(users: None, cluster: DevCluster, tmp_path: Path) -> Iterator[TlsHead]:  # noqa: F811
    process = TlsHead(
        tmp_path / "head",
        cluster.descriptor.bridge_address,
        nodes=0,
        extra_config=ssh_config(cluster),
    )
    try:
        process.start()
        cluster_queue(process, cluster)
        yield process
    finally:
        process.cleanup()


def in_namespace(cluster: DevCluster, argv: list[str], env: dict[str, str] | None = None) -> str:
    host = cluster.hosts[-1].name
    command = ["env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv]
    done = cluster.run(host, command, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def client(cluster: DevCluster, head: TlsHead, mode: str, key: tuple[str, str]) -> dict[str, Any]:
    argv = [sys.executable, str(CLIENT), mode, head.endpoint, str(head.cert), *key]
    return dict(json.loads(in_namespace(cluster, argv, {"PYTHONPATH": os.getcwd()})))


def test_remote_clients_sign_over_tls_and_alices_jobs_run_as_her_everywhere(
    cluster: DevCluster, head: TlsHead
) -> None:
    key = head.issue("alice", ALICE)
    got = client(cluster, head, "submit", key)
    array = got.pop("array")
    assert got == {
        "wrong secret": "InvalidSignatureException",
        "body changed after signing": "InvalidSignatureException",
        "6 minutes off": "InvalidSignatureException",
        "no signature": "403 MissingAuthenticationTokenException",
    }
    parent = head.wait_status(array, "SUCCEEDED", "FAILED", timeout=90)
    assert parent["status"] == "SUCCEEDED", head.story(array)
    alice = pwd.getpwnam(ALICE).pw_uid
    nodes = set()
    for index in range(4):
        child = head.raw_describe(f"{array}:{index}")
        assert child["hpcbatch"]["owner"] == ALICE
        nodes.add(child["hpcbatch"]["node"])
        assert head.get(f"/hpcbatch/v1/jobs/{array}:{index}/logs")["data"] == f"{ALICE}\n"
    assert nodes == {h.name for h in cluster.hosts}
    for host in cluster.hosts:
        (log,) = Path(host.agent_state_dir, "logs").glob(f"{array}*")
        info = log.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (alice, 0o600), (host.name, log)

    aws = str(Path(sys.executable).with_name("aws"))
    env = {
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": "local",
    }
    argv = [aws, "batch", "describe-jobs", "--jobs", array, "--endpoint-url", head.endpoint]
    described = json.loads(in_namespace(cluster, [*argv, "--ca-bundle", str(head.cert)], env))
    assert described["jobs"][0]["status"] == "SUCCEEDED"

    head.admin().post(f"/hpcbatch/v1/users/alice/keys/{key[0]}/disable", {})
    assert client(cluster, head, "disabled", key) == {"disabled key": "UnrecognizedClientException"}
    assert key[1] not in head.log.read_text()


def test_insecure_serves_plain_http_off_loopback_but_still_wants_signatures(
    users: None,  # noqa: F811
    cluster: DevCluster,
    tmp_path: Path,
) -> None:
    address = cluster.descriptor.bridge_address
    refused = TlsHead(tmp_path / "refused", address, nodes=0)
    refused.config.write_text(refused.config.read_text().split("\n[tls]")[0])  # no [tls]
    cmd = [sys.executable, "-m", "hpcbatch.cli.main", "head", "--data-dir", str(refused.data_dir)]
    cmd += ["--listen", f"{address}:{refused.port}", "--config", str(refused.config)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=refused.env)
    assert done.returncode == 3
    assert "is not a loopback address, so it needs TLS" in done.stderr
    refused.cleanup()

    head = TlsHead(tmp_path / "insecure", address, nodes=0)
    head.config.write_text(head.config.read_text().split("\n[tls]")[0])
    head.endpoint = f"http://{address}:{head.port}"
    head.verify = True
    head.config.write_text("insecure = true\n" + head.config.read_text())  # as --insecure
    try:
        head.start()
        assert "insecure: serving plain HTTP" in head.log.read_text()
        key = head.issue("alice", ALICE)
        argv = [sys.executable, "-c", UNSIGNED_AND_SIGNED, head.endpoint, *key]
        got = json.loads(in_namespace(cluster, argv, {"PYTHONPATH": os.getcwd()}))
        assert got == {"unsigned": "403 MissingAuthenticationTokenException", "signed": "ok"}
    finally:
        head.cleanup()


UNSIGNED_AND_SIGNED = """
import json, sys, boto3, httpx
from botocore.exceptions import ClientError
endpoint, key, secret = sys.argv[1:4]
plain = httpx.post(endpoint + "/v1/describejobqueues", json={})
batch = boto3.client("batch", endpoint_url=endpoint, region_name="local",
                     aws_access_key_id=key, aws_secret_access_key=secret)
try:
    batch.describe_job_queues()
    signed = "ok"
except ClientError as error:
    signed = error.response["Error"]["Code"]
print(json.dumps({"unsigned": f"{plain.status_code} {plain.headers.get('x-amzn-errortype')}",
                  "signed": signed}))
"""
