"""A 4-host dev cluster (namespaces + real sshd) and a head managing it over SSH.

Multi-host tests need root for network namespaces: under CI=true they must run, never skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpcbatch.devcluster import DevCluster, DevHost
from tests.head.headproc import HeadProcess, stop_agent_and_jobs, wait_for

HOST_VCPUS = 2


def _require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("multi-host tests need root (network namespaces); CI runs as root")
        pytest.skip("multi-host tests need root for network namespaces")


HostLines = Callable[[DevHost], list[str]]


def ssh_config(
    cluster: DevCluster,
    vcpus: int = HOST_VCPUS,
    host_lines: HostLines | None = None,
    hosts: list[DevHost] | None = None,
) -> str:
    """The head's SSH CE for ``cluster`` (only ``hosts`` of it, when given); ``host_lines``
    adds settings to each host's table."""
    lines = ["[[compute_environments]]", 'name = "cluster"', 'kind = "SSH"']
    for host in cluster.hosts if hosts is None else hosts:
        lines += [
            "[[compute_environments.hosts]]",
            f'name = "{host.name}"',
            f'address = "{host.address}"',
            f"port = {host.port}",
            f'key = "{host.key_path}"',
            f'known_hosts = "{host.known_hosts_path}"',
            f'state_dir = "{host.agent_state_dir}"',
            'python = "/usr/bin/python3"',
            f"vcpus = {vcpus}",
            "memory_mib = 4096",
            *(host_lines(host) if host_lines else []),
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def dev_cluster(tmp_path: Path, hosts: int) -> Iterator[DevCluster]:
    """``hosts`` dev hosts, and after: their agents and jobs stopped, everything removed."""
    _require_root()
    built = DevCluster.up(tmp_path / "cluster", hosts=hosts)
    try:
        yield built
    finally:
        for host in built.hosts:
            stop_agent_and_jobs(Path(host.agent_state_dir))
        built.down()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path, 4) as built:
        yield built


def start_head(
    tmp_path: Path,
    cluster: DevCluster,
    heartbeat: float = 30.0,
    lost: float = 120.0,
    host_lines: HostLines | None = None,
) -> HeadProcess:
    config = ssh_config(cluster, host_lines=host_lines)
    head = HeadProcess(
        tmp_path / "head", nodes=0, heartbeat=heartbeat, lost=lost, extra_config=config
    )
    head.start()
    cluster_queue(head, cluster)
    return head


def cluster_queue(head: HeadProcess, cluster: DevCluster) -> None:
    """Queue "cluster" on the SSH CE, once every host is ONLINE."""
    head.batch().create_job_queue(
        jobQueueName="cluster",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "cluster"}],
    )
    names = {h.name for h in cluster.hosts}
    wait_for(
        lambda: (
            names
            <= {
                n["name"] for n in head.get("/hpcbatch/v1/nodes")["nodes"] if n["state"] == "ONLINE"
            }
        ),
        30,
        "every host ONLINE",
    )


@pytest.fixture
def head(tmp_path: Path, cluster: DevCluster) -> Iterator[HeadProcess]:
    process = start_head(tmp_path, cluster)
    try:
        yield process
    finally:
        process.cleanup()
