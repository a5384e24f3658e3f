"""A SLURM compute environment from the head's config whose bridge runs on a login node over
SSH (the host-key rules of every SSH host): the head reaches Slurm only through that host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.head.headproc import HeadProcess, stop_agent_and_jobs, wait_for
from tests.slurm.slurmcluster import PARTITION, SlurmCluster
from tests.slurm.test_slurm_bridge import cancel_bridge_jobs
from tests.slurm.test_slurm_head import definition, log_text


def login_config(slurm: SlurmCluster) -> str:
    login = slurm.cluster.hosts[0]
    return (
        "\n".join(
            [
                "[[compute_environments]]",
                'name = "hpc"',
                'kind = "SLURM"',
                "max_vcpus = 8",
                f'partitions = ["{PARTITION}"]',
                f'slurm_conf = "{slurm.env["SLURM_CONF"]}"',
                "[[compute_environments.hosts]]",
                'name = "login"',
                f'address = "{login.address}"',
                f"port = {login.port}",
                f'key = "{login.key_path}"',
                f'known_hosts = "{login.known_hosts_path}"',
                f'state_dir = "{login.agent_state_dir}-bridge"',
                'python = "/usr/bin/python3"',
            ]
        )
        + "\n"
    )


@pytest.fixture
def head(slurm: SlurmCluster, tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=1, extra_config=login_config(slurm))
    try:
        yield process.start()
    finally:
        process.cleanup()
        stop_agent_and_jobs(Path(f"{slurm.cluster.hosts[0].agent_state_dir}-bridge"))
        cancel_bridge_jobs(slurm)


def test_a_bridge_on_a_login_node_runs_jobs_in_slurm(head: HeadProcess) -> None:
    b = head.batch()
    b.create_job_queue(
        jobQueueName="hpc-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "hpc"}],
    )
    definition(head, "where", ["sh", "-c", 'echo "on $SLURMD_NODENAME"'])

    def bridge() -> dict[str, Any] | None:
        nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
        login = next((n for n in nodes if n["name"] == "login"), None)
        return login if login and login["state"] == "ONLINE" and login.get("slurm") else None

    login = wait_for(bridge, 60, "the bridge on the login node")
    assert (login["computeEnvironment"], login["vcpus"]) == ("hpc", "8")
    assert len(login["slurm"]["nodes"]) == 4
    job = b.submit_job(jobName="j", jobQueue="hpc-q", jobDefinition="where")["jobId"]
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=60)
    assert done["status"] == "SUCCEEDED", head.story(job)
    assert log_text(head, job).startswith("on hb")
