"""A job handed to Slurm (STARTING on a SLURM compute environment's bridge) and still waiting
in Slurm's queue: its statusReason quotes Slurm, its story records each new reason, RUNNING
clears it, and CancelJob takes it out of Slurm's queue where AWS's cancel would not touch a
STARTING job."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.commands import KillAttempt
from hpcbatch.core.model import JobStatus
from tests.core.sim import Sim


def _handed_to(kind: str) -> tuple[Sim, str, str, str]:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="hpc", ce_type="MANAGED", kind=kind)
    sim.cluster(nodes=1, vcpus=4, ce="hpc")
    job = sim.submit()
    (launch,) = sim.schedule()
    return sim, job.job_id, launch.node, launch.attempt_id


def test_slurms_reason_shows_while_it_waits_and_goes_once_it_runs() -> None:
    sim, job_id, node, aid = _handed_to("SLURM")
    job = sim.state.jobs[job_id]
    reason = "waiting in Slurm partition batch: Priority"
    sim.do(ev.AttemptQueued, node=node, attempt_id=aid, reason=reason)
    sim.do(ev.AttemptQueued, node=node, attempt_id=aid, reason=reason)  # again: one story line
    assert (job.status, job.status_reason) == (JobStatus.STARTING, reason)
    told = [line for line in sim.state.changes.journal if line.event == "QUEUED"]
    assert [line.detail for line in told] == [reason]
    sim.do(ev.AttemptQueued, node="elsewhere", attempt_id=aid, reason="forged")
    assert job.status_reason == reason  # only its own node speaks for it
    sim.do(ev.AttemptStarted, node=node, attempt_id=aid, started_at=sim.now)
    assert (job.status, job.status_reason) == (JobStatus.RUNNING, None)
    sim.do(ev.AttemptQueued, node=node, attempt_id=aid, reason="late")
    assert job.status_reason is None  # a late report changes nothing once it runs


def test_cancel_takes_a_job_out_of_slurms_queue_but_not_a_running_one() -> None:
    sim, job_id, node, aid = _handed_to("SLURM")
    commands = sim.do(ev.CancelJob, job_id=job_id, reason="not needed")
    assert commands == [KillAttempt(cause=commands[0].cause, node=node, attempt_id=aid,
                                    reason="not needed")]  # fmt: skip
    job = sim.state.jobs[job_id]
    sim.do(ev.AttemptEnded, node=node, attempt_id=aid, stopped_at=sim.now, exit_code=None,
           reason="not needed")  # fmt: skip
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "not needed")
    assert len(job.attempts) == 1  # never retried
    sim, job_id, node, aid = _handed_to("SLURM")
    sim.do(ev.AttemptStarted, node=node, attempt_id=aid, started_at=sim.now)
    assert sim.do(ev.CancelJob, job_id=job_id, reason="too late") == []
    assert sim.state.jobs[job_id].status is JobStatus.RUNNING


def test_cancel_of_a_starting_job_elsewhere_stays_a_no_op_as_on_aws() -> None:
    sim, job_id, _, _ = _handed_to("LOCAL")
    assert sim.do(ev.CancelJob, job_id=job_id, reason="no") == []
    assert sim.state.jobs[job_id].status is JobStatus.STARTING
