"""The head's state is durable: definitions, queues and jobs survive a restart, even kill -9,
and jobs that ran while the head was away end with their true result, run exactly once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from hpcbatch.transport.local import agent_running, read_pid
from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_jobs_e2e import submit


def test_state_survives_a_clean_restart(head: HeadProcess) -> None:
    batch = head.batch()
    batch.register_job_definition(
        jobDefinitionName="kept", type="container", containerProperties={"command": ["true"]}
    )
    job_id = submit(head, ["true"])
    head.wait_status(job_id, "SUCCEEDED")
    head.stop()
    head.start()
    assert head.describe(job_id)["status"] == "SUCCEEDED"
    names = [
        d["jobDefinitionName"] for d in head.batch().describe_job_definitions()["jobDefinitions"]
    ]
    assert "kept" in names


def test_kill_9_of_the_head_loses_no_job_and_runs_none_twice(
    head: HeadProcess, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    gate = tmp_path / "gate"
    script = (
        f"echo run >> {runs}/$AWS_BATCH_JOB_ID; while [ ! -e {gate} ]; do sleep 0.05; done; exit 3"
    )
    running = submit(head, ["sh", "-c", script])
    quick = submit(head, ["sh", "-c", f"echo run >> {runs}/$AWS_BATCH_JOB_ID"])
    head.wait_status(running, "RUNNING")
    head.wait_status(quick, "SUCCEEDED")
    waiting = submit(
        head, ["sh", "-c", f"echo run >> {runs}/$AWS_BATCH_JOB_ID"], dependsOn=[{"jobId": running}]
    )
    head.kill9()
    gate.touch()  # the job finishes while no head is running
    wait_for(lambda: True)
    head.start()
    job = head.wait_status(running, "SUCCEEDED", "FAILED")
    assert job["status"] == "FAILED"
    assert job["attempts"][-1]["container"]["exitCode"] == 3
    assert len(job["attempts"]) == 1
    head.wait_status(waiting, "FAILED")
    for job_id in (running, quick):
        assert (runs / job_id).read_text() == "run\n"
    assert not (runs / waiting).exists()


def test_a_clean_stop_lets_the_local_agents_go(head: HeadProcess) -> None:
    agents = sorted((head.data_dir / "agents").iterdir())
    assert [a.name for a in agents] == ["local-1", "local-2"]
    assert all(agent_running(a) for a in agents)
    head.stop()
    wait_for(lambda: not any(agent_running(a) for a in agents), what="agents to exit")


def test_kill_9_of_a_local_agent_keeps_its_jobs_and_their_results(
    head: HeadProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job_id = submit(head, ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 5"])
    head.wait_status(job_id, "RUNNING")
    busy = head.raw_describe(job_id)["hpcbatch"]["node"]
    old_pid = read_pid(head.data_dir / "agents" / busy)
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    wait_for(
        lambda: read_pid(head.data_dir / "agents" / busy) not in (None, old_pid),
        what="the head to restart the agent",
    )
    gate.touch()
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert job["status"] == "FAILED" and len(job["attempts"]) == 1, head.story(job_id)
    assert job["attempts"][0]["container"].get("exitCode") == 5, head.story(job_id)
