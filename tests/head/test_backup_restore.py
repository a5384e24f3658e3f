"""``hpcbatch backup`` of a running head and ``hpcbatch restore`` after it stopped, through the
real CLI and a real head with LOCAL nodes: the restored head has what the backup had and
nothing after it, and what it does with jobs that ran after the backup is what docs/cli.md
says. Refusals name the path and the rule and leave nothing half made.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from hpcbatch_agent.jobs import find_jobs

from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_jobs_e2e import submit


def hpcbatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpcbatch.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_user(head: HeadProcess, name: str) -> tuple[str, str]:
    response = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/users", json={"name": name, "unixUser": "root"}, timeout=10
    )
    response.raise_for_status()
    return response.json()["accessKeyId"], response.json()["secretAccessKey"]


def user_names(head: HeadProcess) -> set[str]:
    users: list[dict[str, Any]] = head.get("/hpcbatch/v1/users")["users"]
    return {user["name"] for user in users}


def queue_names(head: HeadProcess) -> set[str]:
    return {q["jobQueueName"] for q in head.batch().describe_job_queues()["jobQueues"]}


def make_queue(head: HeadProcess, name: str) -> None:
    head.batch().create_job_queue(
        jobQueueName=name,
        priority=5,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )


def gated(runs: Path, gate: Path) -> list[str]:
    """A job that records each run of it, then waits for ``gate`` (polling, in the job)."""
    script = f"echo run >> {runs}/$AWS_BATCH_JOB_ID; while [ ! -e {gate} ]; do sleep 0.05; done"
    return ["sh", "-c", script]


def test_restore_brings_back_the_state_of_the_backup_and_nothing_after(tmp_path: Path) -> None:
    head = HeadProcess(tmp_path / "head", nodes=1, vcpus=1, memory=2048)
    runs, backup = tmp_path / "runs", tmp_path / "backups" / "state.tar.gz"
    runs.mkdir()
    backup.parent.mkdir()
    try:
        head.start()
        head.credentials()  # the admin key this test signs with: issued before the backup
        done = submit(head, gated(runs, tmp_path / "open"))
        (tmp_path / "open").touch()
        head.wait_status(done, "SUCCEEDED")
        make_queue(head, "before")
        alice = add_user(head, "alice")
        running = submit(head, gated(runs, tmp_path / "gate1"))
        head.wait_status(running, "RUNNING")
        waiting = submit(head, gated(runs, tmp_path / "open"))  # the one vCPU is taken
        head.wait_status(waiting, "RUNNABLE")

        made = hpcbatch("backup", "--data-dir", str(head.data_dir), str(backup))
        assert made.returncode == 0, made.stderr
        assert f"saved {backup}: state.db" in made.stdout
        assert "integrity ok" in made.stdout and "3 jobs, 2 queues" in made.stdout
        assert backup.stat().st_mode & 0o777 == 0o600
        assert sorted(os.listdir(backup.parent)) == ["state.tar.gz"]  # no .tmp, no staging

        make_queue(head, "after")
        bob = add_user(head, "bob")
        (tmp_path / "gate1").touch()
        head.wait_status(running, "SUCCEEDED")
        head.wait_status(waiting, "SUCCEEDED")
        later = submit(head, gated(runs, tmp_path / "gate2"))
        head.wait_status(later, "RUNNING")
        head.stop()

        put = hpcbatch("restore", "--data-dir", str(head.data_dir), str(backup))
        assert put.returncode == 0, put.stderr
        (aside,) = head.data_dir.glob("state.db.before-restore-*")  # the head stopped cleanly:
        assert f"moved aside (kept): {aside}" in put.stdout  # no -wal/-shm were left
        assert (head.data_dir / "state.db").stat().st_mode & 0o777 == 0o600
        head.start()

        assert head.describe(done)["status"] == "SUCCEEDED"
        assert queue_names(head) == {"default", "before"}
        assert "alice" in user_names(head) and "bob" not in user_names(head)
        head.batch(key=alice).describe_job_queues()  # the key issued before the backup signs
        with pytest.raises(ClientError, match="UnrecognizedClientException"):
            head.batch(key=bob).describe_job_queues()  # the one issued after it does not
        # What the restored head does with the jobs that ran after the backup (docs/cli.md):
        # a job submitted after it is unknown, and still running, it is killed;
        assert head.batch().describe_jobs(jobs=[later])["jobs"] == []
        state_dir = str((head.data_dir / "agents" / "local-1").resolve())
        wait_for(lambda: later + "/1" not in find_jobs(state_dir), 30, "the unknown job killed")
        # one running at the backup that ended after it: its result was acknowledged and
        # forgotten by the agent, so it is lost with no record (and retried, had it retries);
        job = head.wait_status(running, "FAILED")
        assert job["statusReason"] == (f"Host lost: local-1 has no record of attempt {running}/1")
        assert len(job["attempts"]) == 1
        # one waiting at the backup is waiting again, and runs a second time.
        head.wait_status(waiting, "SUCCEEDED")
        assert (runs / waiting).read_text() == "run\nrun\n"
        assert (runs / running).read_text() == "run\n"
    finally:
        head.cleanup()


def test_refusals_name_the_path_and_the_rule_and_leave_nothing_half_made(
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    missing = tmp_path / "no-head"
    refused = hpcbatch("backup", "--data-dir", str(missing), str(out_dir / "b.tgz"))
    assert refused.returncode == 3
    assert f"no head state to back up: {missing}/state.db does not exist" in refused.stderr
    assert not missing.exists() and os.listdir(out_dir) == []

    head = HeadProcess(tmp_path / "head", nodes=1, vcpus=1, memory=2048)
    try:
        head.start()
        data = str(head.data_dir)
        nowhere = tmp_path / "absent" / "b.tgz"
        refused = hpcbatch("backup", "--data-dir", data, str(nowhere))
        assert refused.returncode == 3
        assert f"cannot write the backup {nowhere}: {nowhere.parent} is not a directory" in (
            refused.stderr
        )
        existing = out_dir / "b.tgz"
        existing.write_text("keep me")
        refused = hpcbatch("backup", "--data-dir", data, str(existing))
        assert refused.returncode == 3
        assert f"{existing} exists; choose another name, or --force" in refused.stderr
        assert existing.read_text() == "keep me" and os.listdir(out_dir) == ["b.tgz"]
        forced = hpcbatch("backup", "--force", "--data-dir", data, str(existing))
        assert forced.returncode == 0, forced.stderr
        assert existing.stat().st_mode & 0o777 == 0o600 and os.listdir(out_dir) == ["b.tgz"]

        before = sorted(os.listdir(head.data_dir))
        refused = hpcbatch("restore", "--data-dir", data, str(existing))
        assert refused.returncode == 3
        assert head.proc is not None
        assert (
            f"restore refused: another head is running on data directory {head.data_dir}"
            f" (pid {head.proc.pid} holds {head.data_dir}/head.lock); stop the head first"
        ) in refused.stderr
        assert sorted(os.listdir(head.data_dir)) == before
        head.stop()

        corrupt = out_dir / "corrupt.tgz"
        with tarfile.open(corrupt, "w:gz") as tar:
            info = tarfile.TarInfo("state.db")
            info.size = 4096
            tar.addfile(info, io.BytesIO(b"SQLite format 3\0" + b"\x07" * 4080))
        before = sorted(os.listdir(head.data_dir))
        refused = hpcbatch("restore", "--data-dir", data, str(corrupt))
        assert refused.returncode == 3
        assert f"{head.data_dir}/state.db.restoring" in refused.stderr, refused.stderr
        assert sorted(os.listdir(head.data_dir)) == before
        refused = hpcbatch("restore", "--data-dir", data, str(tmp_path / "none.tgz"))
        assert refused.returncode == 3
        assert f"no backup at {tmp_path}/none.tgz" in refused.stderr
    finally:
        head.cleanup()
