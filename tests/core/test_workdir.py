"""A job's working directory: set by its submission, kept in its spec and the store, sent with
every launch, inherited by array children and the nodes of a multi-node job; the rules on it."""

from __future__ import annotations

import pytest

from hpcbatch.core.model import JobStatus
from hpcbatch.core.workdir import MAX_WORKDIR_BYTES, check_workdir
from hpcbatch.errors import ValidationError
from tests.core.sim import Sim


def test_a_submitted_workdir_reaches_the_launch_and_survives_a_restart() -> None:
    sim = Sim().cluster(nodes=1)
    job = sim.submit(workdir="/home/ana/run 1")
    plain = sim.submit()
    assert (job.spec.workdir, plain.spec.workdir) == ("/home/ana/run 1", None)
    launches = {launch.job_id: launch for launch in sim.schedule()}
    assert launches[job.job_id].workdir == "/home/ana/run 1"
    assert launches[plain.job_id].workdir is None  # the agent's per-attempt directory
    sim.restart()
    assert sim.state.jobs[job.job_id].spec.workdir == "/home/ana/run 1"
    assert sim.state.jobs[plain.job_id].spec.workdir is None


def test_array_children_run_in_the_parents_workdir() -> None:
    sim = Sim().cluster(nodes=2)
    parent = sim.submit(array_size=3, workdir="/data/sweep")
    children = [sim.state.jobs[f"{parent.job_id}:{i}"] for i in range(3)]
    assert {child.spec.workdir for child in children} == {"/data/sweep"}
    assert {launch.workdir for launch in sim.schedule()} == {"/data/sweep"}


def test_every_node_of_a_multinode_job_runs_in_the_parents_workdir() -> None:
    sim = Sim().cluster(nodes=4)
    sim.gang_definition(nodes=3)
    parent = sim.submit_gang(workdir="/scratch/mpi")
    assert parent.spec.workdir == "/scratch/mpi"
    nodes = [sim.node(parent, i) for i in range(3)]
    assert {node.spec.workdir for node in nodes} == {"/scratch/mpi"}
    launches = sim.schedule()
    assert launches and {launch.workdir for launch in launches} == {"/scratch/mpi"}
    sim.restart()
    assert {sim.node(parent, i).spec.workdir for i in range(3)} == {"/scratch/mpi"}


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("work/dir", "must be an absolute path (starting with /), not 'work/dir'"),
        ("", "must be an absolute path (starting with /), not ''"),
        ("/a\x00b", "must not contain a NUL character"),
        ("/" + "a" * MAX_WORKDIR_BYTES, f"must be at most 4095 bytes, not {4096}"),
        ("/\udcff", "must be valid UTF-8"),
    ],
)
def test_a_bad_workdir_is_refused_naming_the_field_and_rule(path: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_workdir(path, "x-hpcbatch-workdir")
    assert caught.value.message == f"x-hpcbatch-workdir: {rule}"
    sim = Sim().cluster(nodes=1)
    with pytest.raises(ValidationError) as refused:
        sim.submit(workdir=path)
    assert refused.value.message == f"workdir: {rule}"
    assert not sim.state.jobs  # a refused submit leaves nothing behind


def test_the_longest_workdir_counts_bytes_not_characters() -> None:
    fits = "/" + "é" * ((MAX_WORKDIR_BYTES - 1) // 2)  # 2 bytes each
    assert check_workdir(fits) == fits
    with pytest.raises(ValidationError, match="at most 4095 bytes, not 4097"):
        check_workdir(fits + "é")
    job = Sim().cluster(nodes=1).submit(workdir=fits)
    assert job.status is JobStatus.RUNNABLE
