"""A job's life through the pure core: states, attempts, environment, retries, cancel, terminate."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import Dependency, JobStatus, RetryRule
from hpcbatch.core.retry import TIMEOUT_REASON
from hpcbatch.errors import ClientError, ConflictError, NotFoundError
from tests.core.sim import Sim, retry


def test_job_runs_through_every_state_and_records_its_attempt() -> None:
    sim = Sim().cluster()
    job = sim.submit()
    assert job.status is JobStatus.RUNNABLE
    (launch,) = sim.schedule()
    assert job.status is JobStatus.STARTING
    sim.start(launch)
    assert job.status is JobStatus.RUNNING
    sim.now += 500
    sim.end(launch, 0)
    assert job.status is JobStatus.SUCCEEDED
    (attempt,) = job.attempts
    assert attempt.exit_code == 0 and attempt.stopped_at == sim.now
    assert job.status_reason == "Essential container in task exited"


def test_launch_carries_the_aws_batch_environment() -> None:
    sim = Sim().cluster()
    sim.do(
        ev.RegisterJobDefinition,
        name="env",
        def_type="container",
        spec=ev.JobSpec(command=("echo", "Ref::word"), environment=(("A", "1"),)),
        parameters={"word": "default"},
    )
    job = sim.submit(definition="env", parameters={"word": "hello"}, environment=(("B", "2"),))
    (launch,) = sim.schedule()
    env = dict(launch.environment)
    assert launch.command == ("echo", "hello")
    assert env["A"] == "1" and env["B"] == "2"
    assert env["AWS_BATCH_JOB_ID"] == job.job_id
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["AWS_BATCH_CE_NAME"] == "local"
    assert env["AWS_BATCH_JQ_NAME"] == "q"
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env


def test_array_children_get_index_and_size_and_parent_summarises() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2)
    parent = sim.submit(array_size=3)
    assert parent.status is JobStatus.PENDING
    launches = sim.schedule()
    assert len(launches) == 2  # two vCPUs, one each
    env = dict(launches[0].environment)
    assert env["AWS_BATCH_JOB_ID"] == f"{parent.job_id}:0"
    assert env["AWS_BATCH_JOB_ARRAY_INDEX"] == "0"
    assert env["AWS_BATCH_JOB_ARRAY_SIZE"] == "3"
    for launch in launches:
        sim.start(launch)
        sim.end(launch, 0)
    assert parent.status is JobStatus.PENDING
    sim.run_all(exit_code=1)
    assert parent.status is JobStatus.FAILED
    assert parent.status_reason == "1 of 3 child jobs failed"


def test_dependency_waits_then_releases_and_failure_spreads() -> None:
    sim = Sim().cluster()
    first = sim.submit()
    second = sim.submit(depends_on=(Dependency(first.job_id),))
    third = sim.submit(depends_on=(Dependency(second.job_id),))
    assert second.status is JobStatus.PENDING
    (launch,) = sim.schedule()
    assert launch.job_id == first.job_id
    sim.start(launch)
    sim.end(launch, 0)
    assert second.status is JobStatus.RUNNABLE
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.end(launch, 3)
    assert second.status is JobStatus.FAILED
    assert third.status is JobStatus.FAILED
    assert third.status_reason is not None
    assert third.status_reason.startswith(f"Dependent Job failed: {second.job_id}")
    assert third.attempts == []


def test_depending_on_an_already_failed_job_fails_at_once() -> None:
    sim = Sim().cluster()
    first = sim.submit()
    sim.run_all(exit_code=1)
    second = sim.submit(depends_on=(Dependency(first.job_id),), array_size=2)
    assert second.status is JobStatus.FAILED
    assert all(c.status is JobStatus.FAILED for c in sim.state.children_of(second))


def test_sequential_array_runs_children_one_after_another() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8)
    parent = sim.submit(array_size=3, depends_on=(Dependency(None, "SEQUENTIAL"),))
    order = []
    for _ in range(3):
        (launch,) = sim.schedule()
        order.append(launch.job_id)
        sim.start(launch)
        sim.end(launch, 0)
    assert order == [f"{parent.job_id}:{i}" for i in range(3)]
    assert parent.status is JobStatus.SUCCEEDED


def test_n_to_n_child_waits_for_its_partner() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8)
    a = sim.submit(array_size=2)
    b = sim.submit(array_size=2, depends_on=(Dependency(a.job_id, "N_TO_N"),))
    launches = {launch.job_id: launch for launch in sim.schedule()}
    assert set(launches) == {f"{a.job_id}:0", f"{a.job_id}:1"}
    sim.start(launches[f"{a.job_id}:1"])
    sim.end(launches[f"{a.job_id}:1"], 0)
    assert sim.state.jobs[f"{b.job_id}:1"].status is JobStatus.RUNNABLE
    assert sim.state.jobs[f"{b.job_id}:0"].status is JobStatus.PENDING


def test_retry_until_attempts_run_out() -> None:
    sim = Sim().cluster()
    job = sim.submit(retry=retry(3))
    sim.run_all(exit_code=2)
    assert job.status is JobStatus.FAILED
    assert [a.exit_code for a in job.attempts] == [2, 2, 2]


def test_evaluate_on_exit_exit_rule_stops_retries() -> None:
    sim = Sim().cluster()
    job = sim.submit(
        retry=retry(5, RetryRule("EXIT", on_exit_code="4*"), RetryRule("RETRY", on_exit_code="*"))
    )
    sim.run_all(exit_code=42)
    assert len(job.attempts) == 1 and job.status is JobStatus.FAILED


def test_job_that_fails_once_succeeds_on_retry() -> None:
    sim = Sim().cluster()
    job = sim.submit(retry=retry(2))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.end(launch, 1)
    assert job.status is JobStatus.RUNNABLE
    (launch,) = sim.schedule()
    assert launch.attempt_id == f"{job.job_id}/2"
    assert dict(launch.environment)["AWS_BATCH_JOB_ATTEMPT"] == "2"
    sim.start(launch)
    sim.end(launch, 0)
    assert job.status is JobStatus.SUCCEEDED


def test_timed_out_attempt_is_not_retried() -> None:
    sim = Sim().cluster()
    job = sim.submit(retry=retry(3), timeout_s=60)
    (launch,) = sim.schedule()
    assert launch.timeout_s == 60
    sim.start(launch)
    sim.end(launch, None, TIMEOUT_REASON)
    assert job.status is JobStatus.FAILED and job.status_reason == TIMEOUT_REASON


def test_head_kills_attempts_far_past_their_timeout() -> None:
    sim = Sim().cluster()
    sim.submit(timeout_s=60)
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.now += 60_000
    assert sim.do(ev.Tick) == []
    sim.now += 60_000
    (kill,) = sim.do(ev.Tick)
    assert kill.attempt_id == launch.attempt_id


def test_cancel_fails_waiting_jobs_and_ignores_running_ones() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    running = sim.submit()
    waiting = sim.submit()
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.CancelJob, job_id=waiting.job_id, reason="no longer needed")
    sim.do(ev.CancelJob, job_id=running.job_id, reason="too late")
    sim.do(ev.CancelJob, job_id="unknown", reason="fine")
    assert waiting.status is JobStatus.FAILED and waiting.is_cancelled
    assert waiting.status_reason == "no longer needed"
    assert running.status is JobStatus.RUNNING


def test_terminate_kills_and_never_retries() -> None:
    sim = Sim().cluster()
    job = sim.submit(retry=retry(3))
    (launch,) = sim.schedule()
    sim.start(launch)
    (kill,) = sim.do(ev.TerminateJob, job_id=job.job_id, reason="stop it")
    assert kill.attempt_id == launch.attempt_id and kill.reason == "stop it"
    assert job.status is JobStatus.RUNNING
    sim.end(launch, None, "stop it")
    assert job.status is JobStatus.FAILED and job.is_terminated
    assert job.status_reason == "stop it"


def test_node_lost_fails_attempts_and_retries_elsewhere() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    job = sim.submit(retry=retry(2))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.NodeLost, node=launch.node, reason="heartbeats stopped")
    assert job.status is JobStatus.RUNNABLE
    assert job.attempts[0].reason == f"Host lost: {launch.node}"
    (again,) = sim.schedule()
    assert again.node != launch.node


def test_reconcile_relaunches_unknown_starting_and_loses_unknown_running() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2)
    starting = sim.submit()
    running = sim.submit()
    launches = {launch.job_id: launch for launch in sim.schedule()}
    sim.start(launches[running.job_id])
    node = launches[running.job_id].node
    commands = sim.do(ev.NodeJoined, node=node, ce="local", capacity=sim.state.nodes[node].capacity)
    assert [c.attempt_id for c in commands] == [launches[starting.job_id].attempt_id]
    assert running.status is JobStatus.FAILED
    assert "Host lost" in (running.status_reason or "")


def test_drain_places_nothing_new_and_completes_when_empty() -> None:
    sim = Sim().cluster(nodes=1)
    sim.submit()
    (launch,) = sim.schedule()
    sim.do(ev.DrainNode, node=launch.node, reason="maintenance")
    sim.submit()
    assert sim.schedule() == []
    sim.start(launch)
    sim.end(launch, 0)
    assert sim.state.nodes[launch.node].state.value == "DRAINED"
    sim.do(ev.ResumeNode, node=launch.node)
    assert len(sim.schedule()) == 1


@pytest.mark.parametrize(
    ("fields", "error", "text"),
    [
        ({"queue": "nope"}, NotFoundError, "jobQueue: no job queue named 'nope'"),
        ({"definition": "nope"}, NotFoundError, "jobDefinition: no ACTIVE job definition"),
        ({"depends_on": (Dependency("ghost"),)}, NotFoundError, "dependsOn[0].jobId"),
        ({"depends_on": (Dependency(None, "SEQUENTIAL"),)}, ClientError, "only for array jobs"),
    ],
)
def test_bad_submissions_change_nothing(fields: dict, error: type, text: str) -> None:
    sim = Sim().cluster()
    before = dict(sim.state.jobs)
    with pytest.raises(error, match=None) as raised:
        sim.submit(**fields)
    assert text in raised.value.message
    assert sim.state.jobs == before


def test_disabled_queue_refuses_new_jobs_and_holds_waiting_ones() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    sim.submit()
    sim.submit()
    (launch,) = sim.schedule()
    sim.do(ev.UpdateJobQueue, ref="q", state="DISABLED")
    with pytest.raises(ConflictError, match="DISABLED"):
        sim.submit()
    sim.start(launch)
    sim.end(launch, 0)
    assert sim.schedule() == []


def test_queue_and_ce_deletion_rules() -> None:
    sim = Sim().cluster()
    with pytest.raises(ConflictError, match="disable it"):
        sim.do(ev.DeleteComputeEnvironment, ref="local")
    sim.do(ev.UpdateComputeEnvironment, ref="local", state="DISABLED")
    with pytest.raises(ConflictError, match="still used by job queue"):
        sim.do(ev.DeleteComputeEnvironment, ref="local")
    waiting = sim.submit()
    sim.do(ev.UpdateJobQueue, ref="q", state="DISABLED")
    sim.do(ev.DeleteJobQueue, ref="arn:aws:batch:local:000000000000:job-queue/q")
    assert waiting.status is JobStatus.FAILED
    sim.do(ev.DeleteComputeEnvironment, ref="local")
    assert sim.state.ces == {} and sim.state.nodes == {}


def test_queue_takes_at_most_three_compute_environments() -> None:
    sim = Sim()
    for name in "abcd":
        sim.do(ev.CreateComputeEnvironment, name=name, ce_type="MANAGED", kind="LOCAL")
    with pytest.raises(ClientError, match="1 to 3"):
        sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=tuple(enumerate("abcd")))
    assert sim.state.queues == {}


def test_job_waits_for_every_one_of_its_dependencies() -> None:
    sim = Sim().cluster(nodes=1, vcpus=2)
    a, b = sim.submit(), sim.submit()
    both = sim.submit(depends_on=(Dependency(a.job_id), Dependency(b.job_id)))
    launches = {launch.job_id: launch for launch in sim.schedule()}
    sim.start(launches[a.job_id])
    sim.end(launches[a.job_id], 0)
    assert both.status is JobStatus.PENDING and both.waiting_on == {b.job_id}
    sim.start(launches[b.job_id])
    sim.end(launches[b.job_id], 0)
    assert both.status is JobStatus.RUNNABLE


def test_finished_jobs_are_forgotten_after_the_retention() -> None:
    sim = Sim().cluster(nodes=1, vcpus=4)
    old = sim.submit(array_size=2)
    sim.run_all()
    waiting = sim.submit(vcpus=99)  # never runs
    sim.now += 10_000
    recent = sim.submit()
    sim.run_all()
    sim.do(ev.Tick)  # no retention given: nothing is forgotten
    assert old.job_id in sim.state.jobs
    sim.do(ev.Tick, retention_ms=5_000)
    assert old.job_id not in sim.state.jobs and f"{old.job_id}:1" not in sim.state.jobs
    assert waiting.job_id in sim.state.jobs and recent.job_id in sim.state.jobs
    assert sim.state.changes.deleted["job"] >= {old.job_id, f"{old.job_id}:0", f"{old.job_id}:1"}


def test_a_node_that_never_connected_shows_down_with_its_reason() -> None:
    sim = Sim().cluster(nodes=1)
    sim.do(ev.NodeLost, node="far", ce="local", reason="authentication failed with key k")
    far = sim.state.nodes["far"]
    assert (far.state.value, far.state_reason) == ("DOWN", "authentication failed with key k")
    assert far.capacity == ev.Resources()
    sim.do(ev.NodeLost, node="ghost", reason="no CE given: nothing to show")
    assert "ghost" not in sim.state.nodes


def test_a_silent_node_is_down_but_its_attempts_are_held_until_it_returns() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    job = sim.submit(retry=retry(2))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.NodeDown, node=launch.node, reason="no heartbeat for 30 s")
    node = sim.state.nodes[launch.node]
    assert node.state.value == "DOWN" and job.status is JobStatus.RUNNING
    other = sim.submit()
    (placed,) = sim.schedule()
    assert placed.job_id == other.job_id and placed.node != launch.node
    commands = sim.rejoin(launch)
    assert commands == [] and node.state.value == "ONLINE"
    sim.end(launch, 0)  # the result it kept while cut off
    assert job.status is JobStatus.SUCCEEDED and len(job.attempts) == 1


def test_a_lost_node_that_returns_has_its_superseded_attempts_killed() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    job = sim.submit(retry=retry(2))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.NodeDown, node=launch.node, reason="silent")
    sim.do(ev.NodeLost, node=launch.node, reason="down too long")
    assert job.status is JobStatus.RUNNABLE
    (retried,) = sim.schedule()
    assert retried.node != launch.node
    (kill,) = sim.rejoin(launch)
    assert kill.attempt_id == launch.attempt_id and kill.reason.startswith("superseded")
    sim.end(launch, 0)  # the late result of the superseded attempt changes nothing
    assert job.status is JobStatus.STARTING and len(job.attempts) == 2


def test_a_kill_sent_while_the_node_was_away_is_sent_again_on_return() -> None:
    sim = Sim().cluster(nodes=1)
    job = sim.submit()
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.NodeDown, node=launch.node, reason="silent")
    sim.do(ev.TerminateJob, job_id=job.job_id, reason="stop")
    (kill,) = sim.rejoin(launch)
    assert (kill.attempt_id, kill.reason) == (launch.attempt_id, "stop")


def test_an_end_reported_without_its_start_still_records_running_first() -> None:
    # An agent reports a job that started and ended within one turn by its end alone.
    sim = Sim().cluster()
    job = sim.submit()
    (launch,) = sim.schedule()
    sim.state.changes.journal.clear()
    sim.do(
        ev.AttemptEnded,
        node=launch.node,
        attempt_id=launch.attempt_id,
        stopped_at=sim.now + 5,
        exit_code=0,
        started_at=sim.now + 1,
        pid=42,
        log_stream="default/n1/x",
    )
    assert job.status is JobStatus.SUCCEEDED
    statuses = [line.event for line in sim.state.changes.journal if line.subject == job.job_id]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    (attempt,) = job.attempts
    assert (attempt.pid, attempt.log_stream, attempt.started_at) == (
        42,
        "default/n1/x",
        sim.now + 1,
    )
    assert job.started_at == sim.now + 1
