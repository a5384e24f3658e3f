"""Jobs run as the user their definition names; an unknown user is refused, never ignored."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from agent_harness import Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.users import run_as

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="jobs as another user need root")


def test_a_job_runs_as_the_named_user_in_its_own_directory(client: Client) -> None:
    if os.geteuid() != 0:
        pytest.skip("running jobs as another user needs a root agent")
    script = 'echo "$(id -un) $USER $HOME"; touch here && stat -c %U here'
    client.send(p.launch([p.attempt_spec("as-nobody", ["sh", "-c", script], user="nobody")]))
    done = client.wait_state("as-nobody", p.EXITED)
    assert done["exit_code"] == 0
    assert Path(done["log_path"]).read_text().splitlines() == [
        "nobody nobody /nonexistent",
        "nobody",
    ]


def test_an_unknown_user_fails_to_start_with_the_reason(client: Client) -> None:
    client.send(p.launch([p.attempt_spec("ghost", ["true"], user="no-such-user-hb")]))
    failed = client.wait_state("ghost", p.FAILED_TO_START)
    assert failed["reason"] == "CannotStartContainerError: no user 'no-such-user-hb' on this host"


def test_an_empty_user_is_refused_never_taken_as_root(client: Client) -> None:
    client.send(p.launch([p.attempt_spec("blank", ["id", "-u"], user="")]))
    failed = client.wait_state("blank", p.FAILED_TO_START)
    assert "must not be empty" in failed["reason"]
    assert run_as("") == "CannotStartContainerError: user must not be empty"
    assert run_as("a\0b") == "CannotStartContainerError: user must not contain a NUL byte"


@needs_root
def test_the_log_is_private_and_owned_by_the_jobs_user(client: Client) -> None:
    client.send(
        p.launch(
            [
                p.attempt_spec("mine", ["true"]),
                p.attempt_spec("theirs", ["true"], user="nobody"),
            ]
        )
    )
    for attempt_id, owner in (("mine", 0), ("theirs", pwd.getpwnam("nobody").pw_uid)):
        done = client.wait_state(attempt_id, p.EXITED)
        status = os.stat(done["log_path"])
        assert (stat.S_IMODE(status.st_mode), status.st_uid) == (0o600, owner)


@needs_root
def test_the_user_enters_its_working_directory_as_itself(client: Client, tmp_path: Path) -> None:
    # Root may enter any directory; the job's user may not, and the job must not start
    # there by root's leave.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    spec = p.attempt_spec("hidden", ["ls"], cwd=str(private), user="nobody")
    client.send(p.launch([spec]))
    failed = client.wait_state("hidden", p.FAILED_TO_START)
    assert failed["reason"] == (
        f"CannotStartContainerError: working directory {private} cannot be entered by user "
        "nobody on n1"
    )


@needs_root
def test_a_program_the_user_cannot_execute_fails_to_start(client: Client, tmp_path: Path) -> None:
    program = Path(tempfile.mkdtemp(prefix="hb-users-")) / "root-only"
    try:
        program.parent.chmod(0o755)
        program.write_text("#!/bin/sh\necho ran\n")
        program.chmod(0o700)
        client.send(p.launch([p.attempt_spec("denied", [str(program)], user="nobody")]))
        failed = client.wait_state("denied", p.FAILED_TO_START)
    finally:
        shutil.rmtree(program.parent)
    assert failed["reason"] == f"CannotStartContainerError: command not executable: {program}"
    assert Path(failed["log_path"]).read_text() == failed["reason"] + "\n"
