"""Fixtures for the dev cluster's tests: real namespaces, real sshd, real paramiko.

These tests need root. CI runs as root, so under ``CI`` they never skip (a non-root CI fails
loudly); elsewhere they skip with the reason. Every cluster a test makes is removed by a
finalizer, and a last sweep deletes anything left under the prefixes the tests used.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from pathlib import Path

import paramiko
import pytest

from hpcbatch.devcluster import DevCluster, DevClusterError, DevHost
from hpcbatch.devcluster import descriptor as desc


def require_root() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("dev-cluster tests need Linux (network namespaces)")
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail("dev-cluster tests must run as root under CI (they make network namespaces)")
    pytest.skip("dev-cluster tests need root (network namespaces, sshd); CI runs them as root")


def fresh_prefix() -> str:
    return "t" + secrets.token_hex(3)


def sweep(prefix: str, base_dir: Path) -> None:
    """Remove whatever is left under ``prefix`` (made in ``base_dir``): a cluster with no hosts
    in its plan still finds its namespaces, links and their processes by name."""
    DevCluster(desc.plan(base_dir, prefix, IPv4Network("10.0.0.0/24"), 0, False)).down()


class Clusters:
    """Makes clusters and remembers them, so a finalizer can take them all down."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[tuple[Path, str | None]] = []

    def up(
        self, name: str, hosts: int = 2, prefix: str | None = None, **options: int
    ) -> DevCluster:
        base_dir = self.root / name
        self.made.append((base_dir, prefix))
        cluster = DevCluster.up(base_dir, hosts=hosts, prefix=prefix, **options)
        self.made[-1] = (base_dir, cluster.prefix)
        return cluster

    def tear_down(self) -> None:
        """Take down every cluster made, each even if another one fails; then raise the first
        failure. A prefix another cluster here owns (an ``up`` refused for reusing it) is
        that cluster's to remove, and ``down`` refuses it: that is not a failure."""
        failures: list[DevClusterError] = []
        for base_dir, prefix in reversed(self.made):
            try:
                if (base_dir / desc.DESCRIPTOR).exists():
                    DevCluster.load(base_dir).down()
                if prefix is not None:
                    sweep(prefix, base_dir)
            except DevClusterError as exc:
                owners = {str(other) for other, _ in self.made if other != base_dir}
                if not any(f"in {owner} (its bridge" in exc.message for owner in owners):
                    failures.append(exc)
        if failures:
            raise failures[0]


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[Clusters]:
    require_root()
    made = Clusters(tmp_path)
    yield made
    made.tear_down()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Four hosts shared by a module's tests; tests that cut links put them back."""
    require_root()
    made = Clusters(tmp_path_factory.mktemp("devcluster"))
    try:
        yield made.up("four", hosts=4)
    finally:
        made.tear_down()


SshFactory = Callable[[DevHost], paramiko.SSHClient]


@pytest.fixture
def ssh() -> Iterator[SshFactory]:
    """Connect to a host as the head would: its key, host-key verification against the
    cluster's known_hosts, nothing from ~/.ssh."""
    opened: list[paramiko.SSHClient] = []

    def connect(host: DevHost) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        opened.append(client)
        client.load_host_keys(str(host.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=str(host.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        return client

    yield connect
    for client in opened:
        client.close()


def ssh_run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, stdout, _ = client.exec_command(command, timeout=10)
    output = stdout.read().decode()
    return stdout.channel.recv_exit_status(), output
