"""Compute environments made through the API on real SSH hosts (dev cluster): a MANAGED SSH CE
takes hosts from a host pool of the head's config as its vCPUs ask, and lets them go; an
UNMANAGED CE gets the hosts an admin adds with `hpcbatch nodes add`, kept across a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.devcluster import DevCluster, DevHost
from hpcbatch.transport.local import read_pid
from tests.cluster.conftest import dev_cluster
from tests.cluster.test_ssh_cluster import _alive
from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path, 2) as built:
        yield built


def _host_lines(host: DevHost, port: int | None = None, name: str | None = None) -> list[str]:
    return [
        f'name = "{name or host.name}"',
        f'address = "{host.address}"',
        f"port = {port or host.port}",
        f'key = "{host.key_path}"',
        f'known_hosts = "{host.known_hosts_path}"',
        f'state_dir = "{host.agent_state_dir}"',
        'python = "/usr/bin/python3"',
        "vcpus = 2",
        "memory_mib = 4096",
    ]


def _pools_config(cluster: DevCluster) -> str:
    lines = ["[[host_pools]]", 'name = "gpu"']
    for host in cluster.hosts:
        lines += ["[[host_pools.hosts]]", *_host_lines(host)]
    # a pool whose one host listens on no port: it never connects
    lines += ["[[host_pools]]", 'name = "dead"', "[[host_pools.hosts]]"]
    lines += _host_lines(cluster.hosts[0], port=1, name="nowhere")
    return "\n".join(lines) + "\n"


def _nodes(head: HeadProcess, ce: str) -> dict[str, dict[str, Any]]:
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    return {n["name"]: n for n in nodes if n["computeEnvironment"] == ce}


def _online(head: HeadProcess, ce: str) -> set[str]:
    return {name for name, n in _nodes(head, ce).items() if n["state"] == "ONLINE"}


def _ce(head: HeadProcess, name: str) -> dict[str, Any]:
    (ce,) = head.batch().describe_compute_environments(computeEnvironments=[name])[
        "computeEnvironments"
    ]
    return dict(ce)


def _queue(head: HeadProcess, name: str, ce: str) -> None:
    order = [{"order": 1, "computeEnvironment": ce}]
    head.batch().create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=order)


def _run(head: HeadProcess, queue: str) -> dict[str, Any]:
    job_id = head.batch().submit_job(
        jobName="c",
        jobQueue=queue,
        jobDefinition="default",
        containerOverrides={"command": ["hostname"]},
    )["jobId"]
    head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=60)
    return head.raw_describe(job_id)


def _agents(cluster: DevCluster) -> dict[str, int | None]:
    return {h.name: read_pid(Path(h.agent_state_dir)) for h in cluster.hosts}


def test_a_pool_ce_takes_hosts_as_its_vcpus_ask_and_releases_them_on_delete(
    tmp_path: Path, pair: DevCluster
) -> None:
    head = HeadProcess(tmp_path / "head", nodes=0, extra_config=_pools_config(pair))
    try:
        head.start()
        b = head.batch()
        b.create_compute_environment(
            computeEnvironmentName="pooled",
            type="MANAGED",
            computeResources={
                "type": "SSH",
                "instanceTypes": ["gpu"],
                "minvCpus": 0,
                "maxvCpus": 4,
                "desiredvCpus": 2,
            },
        )
        wait_for(lambda: _ce(head, "pooled")["status"] == "VALID", 60, "pooled VALID")
        (first,) = _online(head, "pooled")  # one host of 2 vCPUs covers 2
        assert _ce(head, "pooled")["computeResources"]["desiredvCpus"] == 2
        _queue(head, "pq", "pooled")
        job = _run(head, "pq")
        assert (job["status"], job["hpcbatch"]["node"]) == ("SUCCEEDED", first)

        b.update_compute_environment(
            computeEnvironment="pooled", computeResources={"desiredvCpus": 4}
        )
        both = {h.name for h in pair.hosts}
        wait_for(lambda: _online(head, "pooled") == both, 60, "both hosts ONLINE")
        wait_for(lambda: _ce(head, "pooled")["status"] == "VALID", 30, "pooled VALID again")
        assert _ce(head, "pooled")["computeResources"]["desiredvCpus"] == 4
        agents = _agents(pair)
        assert all(pid is not None and _alive(pid) for pid in agents.values()), agents
        head.stop()  # a restarted head holds the same hosts, from its store
        head.start()
        wait_for(lambda: _online(head, "pooled") == both, 60, "both hosts back after a restart")
        assert _agents(pair) == agents  # the same agents, reconnected

        # a pool none of whose hosts connects: INVALID, saying why
        b.create_compute_environment(
            computeEnvironmentName="deadce",
            type="MANAGED",
            computeResources={
                "type": "SSH",
                "instanceTypes": ["dead"],
                "maxvCpus": 2,
                "desiredvCpus": 2,
            },
        )
        dead = wait_for(
            lambda: (ce := _ce(head, "deadce"))["status"] == "INVALID" and ce, 60, "deadce INVALID"
        )
        assert dead["statusReason"].startswith("host pool dead has no reachable host (nowhere: ")
        unknown = b.create_compute_environment  # an unknown pool names the pools there are
        with pytest.raises(
            Exception, match="names no host pool 'cpu'; this head's host pools: gpu, dead"
        ):
            unknown(
                computeEnvironmentName="x",
                type="MANAGED",
                computeResources={"type": "SSH", "instanceTypes": ["cpu"], "maxvCpus": 2},
            )

        b.update_job_queue(jobQueue="pq", state="DISABLED")
        b.delete_job_queue(jobQueue="pq")
        b.update_compute_environment(computeEnvironment="pooled", state="DISABLED")
        b.delete_compute_environment(computeEnvironment="pooled")
        wait_for(lambda: not _nodes(head, "pooled"), 30, "the pool's hosts released")
        for name, pid in agents.items():
            assert pid is not None
            wait_for(lambda pid=pid: not _alive(pid), 60, f"the agent of {name} stopped")
    finally:
        head.cleanup()


def _cli(head: HeadProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    return subprocess.run([HPCBATCH, *args], capture_output=True, text=True, env=env, timeout=60)


def test_unmanaged_ce_runs_on_hosts_an_admin_adds_kept_across_a_restart(
    tmp_path: Path, pair: DevCluster
) -> None:
    host = pair.hosts[0]
    head = HeadProcess(tmp_path / "head", nodes=0)
    try:
        head.start()
        head.batch().create_compute_environment(
            computeEnvironmentName="own", type="UNMANAGED", unmanagedvCpus=2
        )
        added = _cli(
            head,
            "nodes",
            "add",
            "--ce",
            "own",
            f"root@{host.address}:{host.port}",
            "--name",
            "mine",
            "--key",
            str(host.key_path),
            "--known-hosts",
            str(host.known_hosts_path),
            "--state-dir",
            host.agent_state_dir,
            "--python",
            "/usr/bin/python3",
            "--vcpus",
            "2",
        )
        assert added.returncode == 0, added.stderr
        assert added.stdout == "mine: added to own (connecting)\n"
        wait_for(lambda: _online(head, "own") == {"mine"}, 60, "mine ONLINE")
        ce = _ce(head, "own")
        assert (ce["type"], ce["unmanagedvCpus"], ce["status"]) == ("UNMANAGED", 2, "VALID")
        _queue(head, "oq", "own")
        assert _run(head, "oq")["hpcbatch"]["node"] == "mine"
        twice = _cli(
            head,
            "nodes",
            "add",
            "--ce",
            "own",
            host.address,
            "--key",
            str(host.key_path),
            "--known-hosts",
            str(host.known_hosts_path),
        )
        assert twice.returncode != 0 and "already held" in twice.stderr

        head.stop()
        head.start()
        wait_for(lambda: _online(head, "own") == {"mine"}, 60, "mine ONLINE after a restart")
        assert _run(head, "oq")["hpcbatch"]["node"] == "mine"

        agent = read_pid(Path(host.agent_state_dir))
        removed = _cli(head, "nodes", "remove", "mine")
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: not _nodes(head, "own"), 30, "mine removed")
        assert agent is not None
        wait_for(lambda: not _alive(agent), 60, "its agent stopped")
    finally:
        head.cleanup()


def test_a_pool_ce_grows_while_jobs_wait_and_lets_idle_hosts_go(
    tmp_path: Path, pair: DevCluster
) -> None:
    head = HeadProcess(tmp_path / "head", nodes=0, extra_config=_pools_config(pair))
    head.config.write_text("host_idle_release_s = 1\n" + head.config.read_text())
    gate = tmp_path / "gate"
    try:
        head.start()
        b = head.batch()
        b.create_compute_environment(
            computeEnvironmentName="elastic",
            type="MANAGED",
            computeResources={
                "type": "SSH",
                "instanceTypes": ["gpu"],
                "minvCpus": 0,
                "maxvCpus": 4,
                "desiredvCpus": 0,
            },
        )
        _queue(head, "eq", "elastic")
        ce = _ce(head, "elastic")
        assert (ce["status"], ce["computeResources"]["desiredvCpus"]) == ("VALID", 0)
        assert not _nodes(head, "elastic")
        wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
        jobs = [
            b.submit_job(
                jobName=f"w{i}",
                jobQueue="eq",
                jobDefinition="default",
                containerOverrides={
                    "command": ["sh", "-c", wait],
                    "resourceRequirements": [{"type": "VCPU", "value": "2"}],
                },
            )["jobId"]
            for i in range(2)
        ]
        both = {h.name for h in pair.hosts}
        wait_for(lambda: _online(head, "elastic") == both, 90, "both hosts taken for the jobs")
        for job_id in jobs:
            head.wait_status(job_id, "RUNNING", timeout=60)
        assert {head.raw_describe(j)["hpcbatch"]["node"] for j in jobs} == both
        agents = _agents(pair)
        gate.touch()
        for job_id in jobs:
            assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
        wait_for(lambda: not _nodes(head, "elastic"), 60, "idle hosts released")
        for name, pid in agents.items():
            assert pid is not None
            wait_for(lambda pid=pid: not _alive(pid), 60, f"the agent of {name} stopped")
        ce = wait_for(
            lambda: (ce := _ce(head, "elastic"))["status"] == "VALID" and ce, 10, "VALID at 0"
        )
        assert ce["computeResources"]["desiredvCpus"] == 0
    finally:
        head.cleanup()
