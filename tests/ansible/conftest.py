"""A dev cluster under /var/lib and the wheels the head role installs, once per module.

Multi-host tests need root for network namespaces: under CI=true they must run, never skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.devcluster import DevCluster
from tests.ansible.provision import Site, build_wheels
from tests.head.headproc import stop_agent_and_jobs

HOSTS = 10  # h1 the head; h2-h4 good compute hosts; h5-h10 each wrong in one way


def require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the Ansible tests need root (network namespaces); CI runs as root")
        pytest.skip("the Ansible tests need root for network namespaces")


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="module")
def site(wheels: tuple[Path, Path]) -> Iterator[Site]:
    require_root()
    # not below /tmp: sshd reads a host's own authorized_keys only when no directory above it
    # is world-writable (tests/ansible/provision.py)
    base = Path(tempfile.mkdtemp(prefix="hpcbatch-ansible-", dir="/var/lib"))
    base.chmod(0o755)
    cluster = DevCluster.up(base / "cluster", hosts=HOSTS)
    built = Site(cluster, base, *wheels)
    try:
        yield built
    finally:
        built.stop_head()
        for host in cluster.hosts:
            stop_agent_and_jobs(Path(host.agent_state_dir))
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)
