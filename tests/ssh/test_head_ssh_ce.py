"""A head with an SSH compute environment from its config: jobs run on the host over SSH."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess, stop_agent_and_jobs, wait_for
from tests.ssh.loopback_sshd import LoopbackSshd, keygen

SSH_CE = """
[[compute_environments]]
name = "remote"
kind = "SSH"
[[compute_environments.hosts]]
name = "{name}"
address = "127.0.0.1"
port = {port}
key = "{key}"
known_hosts = "{known_hosts}"
state_dir = "{state_dir}"
python = "/usr/bin/python3"
vcpus = 2
"""


def ssh_head(tmp_path: Path, sshd: LoopbackSshd, key: Path, name: str = "r1") -> HeadProcess:
    extra = SSH_CE.format(
        name=name,
        port=sshd.port,
        key=key,
        known_hosts=sshd.known_hosts,
        state_dir=sshd.dir / "agent",
    )
    return HeadProcess(tmp_path / "head", nodes=1, vcpus=1, extra_config=extra)


@pytest.fixture
def head(tmp_path: Path, sshd: LoopbackSshd) -> Iterator[HeadProcess]:
    process = ssh_head(tmp_path, sshd, sshd.client_key)
    try:
        yield process.start()
    finally:
        process.cleanup()
        stop_agent_and_jobs(sshd.dir / "agent")


def test_jobs_run_on_the_ssh_host(head: HeadProcess) -> None:
    batch = head.batch()
    batch.create_job_queue(
        jobQueueName="remote",
        priority=5,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "remote"}],
    )
    wait_for(
        lambda: any(
            n["name"] == "r1" and n["state"] == "ONLINE"
            for n in head.get("/hpcbatch/v1/nodes")["nodes"]
        ),
        what="r1 ONLINE",
    )
    job_id = batch.submit_job(
        jobName="far",
        jobQueue="remote",
        jobDefinition="default",
        containerOverrides={"command": ["sh", "-c", "echo $AWS_BATCH_CE_NAME"]},
    )["jobId"]
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED"
    assert head.raw_describe(job_id)["hpcbatch"]["node"] == "r1"
    assert head.get(f"/hpcbatch/v1/jobs/{job_id}/logs")["data"] == "remote\n"
    (node,) = [n for n in head.get("/hpcbatch/v1/nodes")["nodes"] if n["name"] == "r1"]
    assert (node["computeEnvironment"], node["vcpus"]) == ("remote", "2")


def test_a_host_with_a_wrong_key_is_down_with_the_reason(
    tmp_path: Path, sshd: LoopbackSshd
) -> None:
    keygen(tmp_path / "wrong")
    process = ssh_head(tmp_path, sshd, tmp_path / "wrong", name="bad")
    try:
        process.start()

        def down() -> dict | None:
            nodes = {n["name"]: n for n in process.get("/hpcbatch/v1/nodes")["nodes"]}
            node = nodes.get("bad")
            return node if node and node["state"] == "DOWN" else None

        node = wait_for(down, what="node 'bad' DOWN")
        assert "authentication failed" in node["stateReason"]
        assert (
            next(n for n in process.get("/hpcbatch/v1/nodes")["nodes"] if n["name"] == "local-1")[
                "state"
            ]
            == "ONLINE"
        )
    finally:
        process.cleanup()
