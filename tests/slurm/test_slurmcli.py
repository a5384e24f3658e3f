"""The Slurm CLI driver (hpcbatch_agent.slurmcli) against the real Slurm of tests/slurm: what
it submits runs, what it reads back is what Slurm did, and Slurm's refusals come back in
Slurm's words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hpcbatch_agent import slurmcli
from hpcbatch_agent.slurmcli import SlurmError, SlurmJob

from tests.head.headproc import wait_for
from tests.slurm.slurmcluster import SlurmCluster


@pytest.fixture
def run(slurm: SlurmCluster) -> slurmcli.Run:
    return slurmcli.local(slurm.env)


def script(body: str) -> str:
    return f"#!/bin/sh\n{body}\n"


def ended(run: slurmcli.Run, slurm_id: str) -> SlurmJob | None:
    jobs = slurmcli.show_job(run, slurm_id)
    return jobs[0] if jobs and not jobs[0].active else None


def test_a_job_runs_and_its_end_reads_back(run: slurmcli.Run, tmp_path: Path) -> None:
    before_ms = int(time.time()) * 1000  # Slurm's times are whole seconds
    job = slurmcli.sbatch(
        run,
        script("echo hello; exit 3"),
        ["--no-requeue", "-J", "hb-a:1/1", "-o", str(tmp_path / "o")],
    )
    end = wait_for(lambda: ended(run, job), 30, f"job {job} to end")
    assert (end.slurm_id, end.name, end.state) == (job, "hb-a:1/1", "FAILED")
    assert (end.exit_code, end.signal) == (3, None)
    assert end.started_at_ms is not None and end.ended_at_ms is not None
    assert before_ms <= end.started_at_ms <= end.ended_at_ms <= time.time() * 1000
    assert end.nodes.startswith("hb")
    assert (tmp_path / "o").read_text() == "hello\n"


def test_array_tasks_are_listed_pending_then_each_ends_with_its_own_code(
    run: slurmcli.Run, tmp_path: Path
) -> None:
    held = slurmcli.sbatch(
        run,
        script("exit $SLURM_ARRAY_TASK_ID"),
        ["--no-requeue", "--hold", "--array=0-2", "-J", "hb-arr with space", "-o", "/dev/null"],
    )
    queued = {j.slurm_id: j for j in slurmcli.squeue(run) if j.slurm_id.startswith(f"{held}_")}
    assert sorted(queued) == [f"{held}_{i}" for i in range(3)]
    assert {(j.state, j.reason, j.name, j.started_at_ms) for j in queued.values()} == {
        ("PENDING", "JobHeldUser", "hb-arr with space", None)
    }
    slurmcli.release(run, held)
    ends = [wait_for(lambda i=i: ended(run, f"{held}_{i}"), 30, f"task {i}") for i in range(3)]  # type: ignore[misc]
    assert [(e.state, e.exit_code) for e in ends] == [
        ("COMPLETED", 0),
        ("FAILED", 1),
        ("FAILED", 2),
    ]


def test_a_running_job_is_cancelled_by_scancel(run: slurmcli.Run) -> None:
    job = slurmcli.sbatch(run, script("sleep 60"), ["--no-requeue", "-o", "/dev/null"])
    running = wait_for(
        lambda: [j for j in slurmcli.squeue(run) if j.slurm_id == job and j.state == "RUNNING"],
        30,
        f"job {job} running",
    )
    assert running[0].started_at_ms is not None and running[0].nodes
    slurmcli.scancel(run, job)
    end = wait_for(lambda: ended(run, job), 30, f"job {job} cancelled")
    assert end.state == "CANCELLED"


def test_slurms_refusals_come_back_in_its_own_words(run: slurmcli.Run) -> None:
    with pytest.raises(SlurmError) as refused:
        slurmcli.sbatch(run, script("true"), ["-p", "no-such-partition"])
    assert "Invalid partition name specified" in refused.value.message
    assert slurmcli.show_job(run, "999999") == []  # forgotten (or never known): nothing


def test_a_missing_command_says_so() -> None:
    def missing(argv: object, stdin: object) -> tuple[int, str, str]:
        raise FileNotFoundError("sbatch")

    with pytest.raises(SlurmError, match="sbatch is not installed"):
        slurmcli.sbatch(missing, script("true"))


# Lines as Slurm 22.05 printed them here (tests/slurm), for the parsers alone.
SCONTROL = (
    "JobId=4 ArrayJobId=1 ArrayTaskId=1 JobName=hb a:1/1 x UserId=root(0) GroupId=root(0) "
    "MCS_label=N/A JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=1:0 "
    "StartTime=2026-12-01T03:54:09 EndTime=2026-12-01T03:54:10 AllocNode:Sid=localhost:1236 "
    "NodeList=hbe17b-h1 TRES=cpu=1,node=1,billing=1 CPUs/Task=1 Comment=hpcbatch a b  "
    "StdErr=/dev/null Power= "
)


def test_an_scontrol_line_reads_whole_names_and_the_tasks_own_id() -> None:
    job = slurmcli.parse_scontrol_line(SCONTROL)
    assert (job.slurm_id, job.name, job.state, job.reason) == (
        "1_1",
        "hb a:1/1 x",
        "FAILED",
        "NonZeroExitCode",
    )
    assert (job.exit_code, job.signal, job.nodes) == (1, None, "hbe17b-h1")
    assert job.ended_at_ms is not None and job.started_at_ms == job.ended_at_ms - 1000
    fields = slurmcli.scontrol_fields(SCONTROL)
    assert (fields["TRES"], fields["Comment"], fields["Power"]) == (
        "cpu=1,node=1,billing=1",
        "hpcbatch a b",
        "",
    )


def test_a_signal_and_a_pending_line() -> None:
    killed = slurmcli.parse_scontrol_line(
        "JobId=9 JobName=x JobState=FAILED ExitCode=0:9 StartTime=N/A"
    )
    assert (killed.exit_code, killed.signal, killed.started_at_ms) == (0, 9, None)
    pending = slurmcli.parse_squeue_line("2|PENDING|Priority|N/A||batch|hb|b\n")
    assert (pending.slurm_id, pending.state, pending.reason, pending.partition, pending.name) == (
        "2",
        "PENDING",
        "Priority",
        "batch",
        "hb|b",
    )
    assert pending.active and pending.started_at_ms is None
