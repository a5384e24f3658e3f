"""After an agent restart (kill -9 of the agent; its keeper keeps the job; a new agent adopts
it) the launch server still serves launches into an adopted gang attempt: the key is read
back from its launch.key, which is taken only as the agent wrote it (issue 8 item 4)."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.launchdir import read_launch_key

MAIN, NODE = "127.0.0.2", "127.0.0.3"


class Node:
    """Node 1's agent on its LOCAL address; ``attempts``: what its hello reported."""

    def __init__(self, start_agent: Callable[..., AgentProcess], state_dir: Path) -> None:
        self.agent = start_agent("--node-name", "n1", "--launch-address", NODE, state_dir=state_dir)
        self.client = Client(state_dir)
        hello = self.client.hello()
        self.port: int = hello["node"]["launch_port"]
        self.attempts = {a["attempt_id"]: a["state"] for a in hello["attempts"]}

    def run_gang_node(self, key: str, **options: object) -> None:
        spec = p.attempt_spec(
            "g#1", ["sleep", "60"], env=_gang_env(self.port), launch_key=key, **options
        )
        self.client.send(p.launch([spec]))
        done = self.client.wait_state("g#1", p.RUNNING, p.EXITED, p.FAILED_TO_START)
        assert done["state"] == p.RUNNING, done

    def kill9(self) -> None:
        self.client.close()
        self.agent.kill9()  # its keeper keeps the job

    def stop_gang_node(self) -> None:
        self.client.send(p.kill("g#1", "test over"))
        self.client.wait_state("g#1", p.EXITED)
        self.client.close()


def _gang_env(port: int) -> dict[str, str]:
    return {
        "HPCBATCH_HOSTS": f"{MAIN}:1,{NODE}:1",
        "HPCBATCH_LAUNCH_PEERS": f"{MAIN}=1,{NODE}={port}",
        "HPCBATCH_MAIN_NODE": MAIN,
        "AWS_BATCH_JOB_NODE_INDEX": "1",
        "AWS_BATCH_JOB_NUM_NODES": "2",
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
    }


def _launch(tmp: Path, port: int, key: str, command: str) -> tuple[int, str, str]:
    """The launch client, as node 0's job runs it, with ``key`` in its key file."""
    key_file = tmp / f"key-{secrets.token_hex(4)}"
    key_file.write_text(key + "\n")
    env = {
        **os.environ,
        **_gang_env(port),
        "HPCBATCH_LAUNCH_KEY_FILE": str(key_file),
        "HPCBATCH_ATTEMPT_ID": "g#0",
    }
    run = subprocess.run(
        [sys.executable, "-m", "hpcbatch_agent", "launch", NODE, command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=15,
    )
    return run.returncode, run.stdout, run.stderr


def test_launches_into_an_adopted_gang_node_work_with_its_key_only(
    start_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a job of another user needs a root agent")
    key = secrets.token_hex(32)
    first = Node(start_agent, tmp_path / "node1")
    first.run_gang_node(key, user="nobody")
    first.kill9()
    node = Node(start_agent, tmp_path / "node1")
    assert node.attempts == {"g#1": p.RUNNING}  # adopted, not started again
    script = "echo hi; id -un; echo $AWS_BATCH_JOB_NODE_INDEX"
    code, out, err = _launch(tmp_path, node.port, key, script)
    assert (code, out) == (0, "hi\nnobody\n1\n"), err
    code, _, err = _launch(tmp_path, node.port, secrets.token_hex(32), "true")
    assert code == 255 and "matches the key of no gang attempt this agent runs now" in err
    node.stop_gang_node()


def test_a_key_file_changed_while_no_agent_ran_is_refused(
    start_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    key = secrets.token_hex(32)
    first = Node(start_agent, tmp_path / "node1")
    first.run_gang_node(key)
    first.kill9()
    (tmp_path / "node1" / "launch" / "g%231" / "launch.key").chmod(0o600)  # not as written
    node = Node(start_agent, tmp_path / "node1")
    assert node.attempts == {"g#1": p.RUNNING}
    code, _, err = _launch(tmp_path, node.port, key, "true")
    assert code == 255 and "matches the key of no gang attempt" in err
    node.stop_gang_node()


def _key_dir(tmp_path: Path, text: str = "", mode: int = 0o400) -> Path:
    directory = tmp_path / "launch-dir"
    directory.mkdir()
    key_file = directory / "launch.key"
    key_file.write_text(text or secrets.token_hex(32) + "\n")
    key_file.chmod(mode)
    return directory


def test_read_launch_key_takes_the_file_as_the_agent_wrote_it(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    directory = _key_dir(tmp_path, key + "\n")
    assert read_launch_key(str(directory), os.geteuid()) == bytes.fromhex(key)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("mode", "has mode 600, not 400"),
        ("owner", "is owned by uid"),
        ("symlink", "Too many levels of symbolic links"),
        ("fifo", "is not a regular file"),
        ("text", "does not hold 64 lowercase hex digits"),
    ],
)
def test_read_launch_key_refuses_anything_else(tmp_path: Path, change: str, problem: str) -> None:
    directory = _key_dir(tmp_path, "A" * 64 if change == "text" else "")
    key_file = directory / "launch.key"
    uid = os.geteuid()
    if change == "mode":
        key_file.chmod(0o600)
    elif change == "owner":
        uid = pwd.getpwnam("nobody").pw_uid if uid == 0 else uid + 1
    elif change in ("symlink", "fifo"):
        target = tmp_path / "elsewhere"
        target.write_text(secrets.token_hex(32) + "\n")
        target.chmod(0o400)
        key_file.chmod(0o600)
        key_file.unlink()
        if change == "symlink":
            key_file.symlink_to(target)
        else:
            os.mkfifo(key_file, 0o400)
    with pytest.raises((OSError, ValueError), match=problem):
        read_launch_key(str(directory), uid)
