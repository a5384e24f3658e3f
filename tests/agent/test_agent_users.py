"""Jobs run as the user their definition names; an unknown user is refused, never ignored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from agent_harness import Client
from hpcbatch_agent import protocol as p


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
