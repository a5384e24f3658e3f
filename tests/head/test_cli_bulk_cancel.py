"""``hpcbatch cancel`` / ``terminate`` through CancelJobs / TerminateJobs on a real head: a user
who is no admin cancels their own jobs among others' in one command; the others' are named with
the head's reason, stay as they were, and the exit code is 3."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.head.headproc import HeadProcess
from tests.head.test_boto3_bulk_jobs import _plain_user_key, _submit

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="issuing keys takes an admin (root)")


def _cli(head: HeadProcess, key: tuple[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]}
    command = [sys.executable, "-m", "hpcbatch.cli.main", "-e", head.endpoint, *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_a_plain_user_cancels_their_jobs_and_hears_which_others_they_may_not(
    head: HeadProcess,
) -> None:
    root, plain_key = head.batch(), _plain_user_key(head)
    plain = head.batch(key=plain_key)
    running = _submit(root, "runs")
    head.wait_status(running, "RUNNING")
    roots = _submit(root, "roots", running)
    mine = [_submit(plain, f"mine{i}", running) for i in range(3)]

    done = _cli(head, plain_key, "cancel", roots, *mine, "--reason", "not needed")
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == [f"cancelled {job_id}" for job_id in mine]
    (refusal,) = done.stderr.splitlines()
    assert refusal.startswith(f"cannot cancel {roots}: AccessDenied: ")
    assert "only its owner or an admin may cancel it" in refusal
    for job_id in mine:
        assert (head.describe(job_id)["status"], head.describe(job_id)["statusReason"]) == (
            "FAILED",
            "not needed",
        )
    assert head.describe(roots)["status"] == "PENDING"

    stopped = _cli(head, head.credentials(), "terminate", running, roots)
    assert (stopped.returncode, stopped.stderr) == (0, "")
    head.wait_status(running, "FAILED")
    assert head.describe(roots)["status"] == "FAILED"
