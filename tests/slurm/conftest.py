"""One real Slurm cluster (4 dev hosts, no accounting) for the whole test session.

Multi-host tests need root for network namespaces: under CI=true they must run, never skip.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import dev_cluster
from tests.head.headproc import free_port
from tests.slurm.slurmcluster import SlurmCluster, require_slurm


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    require_slurm()
    tmp = tmp_path_factory.mktemp("slurm")
    # Slurm's own dirs outside pytest's (0700 root's): a job run as another user must reach
    # its node's spool (its batch script) as that user, as on a real cluster
    base = Path(tempfile.mkdtemp(prefix="hb-slurm-"))
    base.chmod(0o755)
    try:
        with dev_cluster(tmp, 4) as cluster:
            started = SlurmCluster.start(cluster, base / "slurm", free_port(), free_port())
            try:
                yield started
            finally:
                started.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
