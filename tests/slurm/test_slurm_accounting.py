"""The SLURM bridge where Slurm keeps accounting (a real slurmdbd on MariaDB, slurmdbd.py): how
a job ended is read from ``sacct``, one call for every job that left the queue; so a job that
ended while no bridge watched, and that slurmctld has forgotten since (``MinJobAge``), still
reports its own exit code and times, where without accounting it could only be lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpcbatch_agent import protocol as p
from hpcbatch_agent import slurmcli

from tests.agent.agent_harness import AgentProcess
from tests.cluster.conftest import dev_cluster
from tests.head.headproc import free_port, wait_for
from tests.slurm.slurmcluster import SlurmCluster, require_slurm
from tests.slurm.slurmdbd import require_accounting
from tests.slurm.test_slurm_bridge import SLOW_S, bridges_of, connect, spec, start_bridge

FORGET_S = 120.0  # MinJobAge 2 s, but slurmctld purges old jobs only once a minute


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A second Slurm of 2 nodes, with accounting; it forgets an ended job after 2 s."""
    require_slurm()
    require_accounting()
    tmp = tmp_path_factory.mktemp("books")
    with dev_cluster(tmp, 2) as cluster:
        started = SlurmCluster.start(
            cluster, tmp / "slurm", free_port(), free_port(), accounting=True, min_job_age=2
        )
        try:
            yield started
        finally:
            started.stop()


@pytest.fixture
def bridges(books: SlurmCluster) -> Iterator[list[AgentProcess]]:
    with bridges_of(books) as started:
        yield started


def test_an_end_slurm_forgot_while_the_bridge_was_down_is_read_from_accounting(
    books: SlurmCluster, tmp_path: Path, bridges: list[AgentProcess]
) -> None:
    bridge_dir = tmp_path / "bridge"
    first = start_bridge(books, bridge_dir, bridges)
    client = connect(bridge_dir)
    client.send(p.launch([spec("booked#1", "sh", "-c", "echo ran; exit 5")]))
    ended = client.wait_state("booked#1", p.EXITED, timeout_s=SLOW_S)
    assert ended["exit_code"] == 5  # read from sacct as soon as it left the queue
    client.send(p.launch([spec("late#1", "sh", "-c", "sleep 1; exit 6")]))
    client.wait_state("late#1", p.RUNNING, timeout_s=SLOW_S)
    slurm_id = first_slurm_id(books, "hb-late#1")
    client.close()
    first.kill9()  # the bridge is gone before the job ends
    first.wait_keeper()
    bridges.remove(first)
    run = slurmcli.local(books.env)
    began = time.monotonic()
    wait_for(lambda: not slurmcli.show_job(run, slurm_id), FORGET_S, "slurmctld to forget it")
    forgotten_after = time.monotonic() - began
    start_bridge(books, bridge_dir, bridges)
    client = connect(bridge_dir)
    late = client.wait_state("late#1", p.EXITED, timeout_s=SLOW_S)
    assert (late["exit_code"], late["reason"]) == (6, None), (late, forgotten_after)
    assert late["started_at_ms"] is not None
    assert late["started_at_ms"] + 1000 <= late["stopped_at_ms"]  # Slurm's own times
    client.close()


def first_slurm_id(slurm: SlurmCluster, name: str) -> str:
    """The Slurm id of the job named ``name`` (squeue, or accounting once it ended)."""
    out = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobID", "--name", name).stdout.split()
    assert out, f"no job named {name} in Slurm's accounting"
    return out[0]
