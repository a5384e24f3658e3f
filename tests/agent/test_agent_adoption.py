"""An agent adopts only its own jobs: a process that claims an attempt by its environment is
adopted only for an attempt whose intent the agent journaled, and only if it runs as the uid
that intent names (issue 18, item 3)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.jobs import Claim, adoptable
from hpcbatch_agent.spool import Spool


def _by_id(hello: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["attempt_id"]: a for a in hello["attempts"]}


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Any]:
    """plant(state_dir, attempt_id, user=None) -> pid of a session leader forging a job."""
    planted: list[subprocess.Popen[bytes]] = []

    def start(state_dir: Path, attempt_id: str, user: str | None = None) -> int:
        env = {
            "PATH": os.environ["PATH"],
            "HPCBATCH_AGENT_DIR": str(state_dir),
            "HPCBATCH_ATTEMPT_ID": attempt_id,
        }
        process = subprocess.Popen(
            ["sleep", "300"], env=env, start_new_session=True, user=user, cwd="/"
        )
        planted.append(process)
        return process.pid

    yield start
    for process in planted:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a process of another user can only be planted by root")


def test_a_planted_process_without_an_intent_is_not_adopted_after_a_restart(
    start_agent, plant, tmp_path: Path
) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("real", ["true"])]))
    assert client.wait_state("real", p.EXITED)["exit_code"] == 0
    client.close()
    agent.stop()
    state_dir = agent.state_dir.resolve()
    forged = plant(state_dir, "forged:1#0")
    malformed = plant(state_dir, "not an attempt id at all")
    claims_real = plant(state_dir, "real")  # a finished attempt: no intent either
    restarted = start_agent(state_dir=state_dir)
    attempts = _by_id(Client(restarted.state_dir).hello())
    assert set(attempts) == {"real"}
    assert attempts["real"]["state"] == p.EXITED
    for pid in (forged, malformed, claims_real):
        assert Path(f"/proc/{pid}").exists()  # ignored, not killed: it is not the agent's


def test_a_process_of_another_uid_is_not_adopted_for_an_attempt_of_the_agent(
    start_agent, plant, tmp_path: Path
) -> None:
    _needs_root()
    state_dir = (tmp_path / "agent").resolve()
    spool = Spool(state_dir / "spool")
    spool.record_intent("mine", str(state_dir / "logs" / "mine.log"), None)  # the agent's uid
    spool.close()
    plant(state_dir, "mine", user="nobody")
    attempts = _by_id(Client(start_agent(state_dir=state_dir).state_dir).hello())
    assert "mine" not in attempts  # no log: it never started, and a re-sent launch runs it


def test_a_job_of_the_uid_its_intent_names_is_adopted(start_agent, plant, tmp_path: Path) -> None:
    _needs_root()
    nobody = pwd.getpwnam("nobody").pw_uid
    state_dir = (tmp_path / "agent").resolve()
    spool = Spool(state_dir / "spool")
    spool.record_intent("theirs", str(state_dir / "logs" / "theirs.log"), None, uid=nobody)
    spool.close()
    pid = plant(state_dir, "theirs", user="nobody")
    attempts = _by_id(Client(start_agent(state_dir=state_dir).state_dir).hello())
    assert (attempts["theirs"]["state"], attempts["theirs"]["pid"]) == (p.RUNNING, pid)


def _claim(attempt_id: str, pid: int, uid: int, ticks: int) -> Claim:
    return Claim(attempt_id, pid, uid, ticks)


def test_adoptable_names_why_each_claim_is_refused() -> None:
    claims = [
        _claim("a", 10, 0, 5),
        _claim("a", 11, 0, 7),  # the job's own setsid child
        _claim("b", 12, 65534, 5),
        _claim("c", 13, 0, 5),
        _claim("d", 14, 1000, 9),
    ]
    adopted, refused = adoptable(claims, {"a": 0, "b": 0, "d": 1000})
    assert adopted == {"a": 10, "d": 14}
    assert [(claim.pid, why) for claim, why in refused] == [
        (12, "it runs as uid 65534, the attempt's job as 0"),
        (13, "no intent to start this attempt is journaled"),
        (11, "process 10 started earlier for the same attempt"),
    ]
