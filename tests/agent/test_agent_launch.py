"""The MPI launch server and client between two real agents (issue 8 item 4), as on a LOCAL
compute environment: node 0's agent on 127.0.0.2, node 1's on 127.0.0.3, each with its own
state dir and launch port; a 2-node gang launched by the test as the head would (the same
launch_key, HPCBATCH_HOSTS, HPCBATCH_LAUNCH_PEERS)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, Client, poll_until, process_gone
from hpcbatch_agent import launchwire as w
from hpcbatch_agent import protocol as p

ADDRESSES = ("127.0.0.2", "127.0.0.3")


@dataclass
class Gang:
    clients: list[Client]
    ports: list[int]
    key: str
    tmp: Path

    def env(self, index: int) -> dict[str, str]:
        return {
            "HPCBATCH_HOSTS": ",".join(f"{a}:1" for a in ADDRESSES),
            "HPCBATCH_LAUNCH_PEERS": ",".join(
                f"{a}={n}" for a, n in zip(ADDRESSES, self.ports, strict=True)
            ),
            "HPCBATCH_MAIN_NODE": ADDRESSES[0],
            "AWS_BATCH_JOB_NODE_INDEX": str(index),
            "AWS_BATCH_JOB_NUM_NODES": "2",
            "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        }

    def start(self, index: int, attempt_id: str, command: list[str], **options: Any) -> dict:
        key = options.pop("key", self.key)
        env = {**self.env(index), **options.pop("env", {})}
        spec = p.attempt_spec(attempt_id, command, env=env, launch_key=key, **options)
        self.clients[index].send(p.launch([spec]))
        return self.clients[index].wait_state(attempt_id, p.RUNNING, p.EXITED, p.FAILED_TO_START)

    def finish(self, index: int, attempt_id: str) -> dict:
        return self.clients[index].wait_state(attempt_id, p.EXITED, p.FAILED_TO_START)

    def client_env(self, attempt_id: str = "outside#0", key: str | None = None) -> dict[str, str]:
        """A launch client's environment as in node 0's job (the key in a file of its own)."""
        key_file = self.tmp / f"key-{secrets.token_hex(4)}"
        key_file.write_text((key or self.key) + "\n")
        return {
            **os.environ,
            **self.env(0),
            "HPCBATCH_LAUNCH_KEY_FILE": str(key_file),
            "HPCBATCH_ATTEMPT_ID": attempt_id,
        }


@pytest.fixture
def gang(start_agent: Callable[..., AgentProcess], tmp_path: Path) -> Iterator[Gang]:
    clients, ports = [], []
    for index, address in enumerate(ADDRESSES):
        agent = start_agent(
            "--node-name",
            f"n{index}",
            "--launch-address",
            address,
            state_dir=tmp_path / f"node{index}",
        )
        client = Client(agent.state_dir)
        ports.append(client.hello()["node"]["launch_port"])
        clients.append(client)
    yield Gang(clients, ports, secrets.token_hex(32), tmp_path)
    for client in clients:
        client.close()


def launch(gang: Gang, words: list[str], **env: Any) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "hpcbatch_agent", "launch", *words]
    return subprocess.Popen(
        argv,
        env=gang.client_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finished(run: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = run.communicate(timeout=15)
    return run.returncode, out, err


def test_the_hello_reports_the_launch_port(gang: Gang) -> None:
    assert all(0 < port < 65536 for port in gang.ports)


def test_a_command_launched_from_node_0_runs_in_node_1s_job_and_returns_its_status(
    gang: Gang,
) -> None:
    remote = gang.start(1, "g#1", ["sleep", "30"], user="nobody")
    script = (
        '"$HPCBATCH_LAUNCHER" 127.0.0.3 echo hi\\; id -un\\; cat /proc/\\$\\$/cgroup\\; exit 3;'
        ' echo "status=$?"'
    )
    gang.start(0, "g#0", ["sh", "-c", script])
    done = gang.finish(0, "g#0")
    log = Path(done["log_path"]).read_text()
    assert done["exit_code"] == 0, log
    lines = log.splitlines()
    assert lines[:2] == ["hi", "nobody"] and lines[-1] == "status=3", log
    cgroups = Path(f"/proc/{remote['pid']}/cgroup").read_text().splitlines()
    assert lines[2:-1] == cgroups  # the remote shell ran in node 1's job's cgroups
    gang.clients[1].send(p.kill("g#1", "test over"))
    gang.finish(1, "g#1")


def test_the_hostfiles_key_and_prewired_variables_are_in_the_job(gang: Gang) -> None:
    script = (
        'cat "$HPCBATCH_HOSTFILE" "$HPCBATCH_HOSTFILE_MPICH"; stat -c %a "$HPCBATCH_LAUNCH_KEY_FILE";'
        ' stat -c %a "$(dirname "$HPCBATCH_LAUNCH_KEY_FILE")"; echo "$OMPI_MCA_plm_rsh_agent";'
        ' echo "$HYDRA_LAUNCHER_EXEC"; echo "$OMPI_MCA_pml"; env | grep -c "$(cat "$HPCBATCH_LAUNCH_KEY_FILE")"'
    )
    gang.start(0, "files#0", ["sh", "-c", script], env={"OMPI_MCA_pml": "ob1"})
    done = gang.finish(0, "files#0")
    lines = Path(done["log_path"]).read_text().splitlines()
    launcher = lines[6]
    assert lines[:6] == [
        "127.0.0.2 slots=1",
        "127.0.0.3 slots=1",
        "127.0.0.2:1",
        "127.0.0.3:1",
        "400",
        "700",
    ]
    assert launcher.endswith("/launch") and lines[7] == launcher
    assert lines[8:] == ["ob1", "0"]  # the job's own value stays; the key is in no variable
    directory = Path(launcher).parent
    assert directory.exists()
    gang.clients[0].send(p.ack(["files#0"]))
    poll_until(lambda: not directory.exists(), what="the launch dir to go at the ack")


def test_a_bad_hosts_variable_fails_the_start_naming_it(gang: Gang) -> None:
    done = gang.start(0, "bad#0", ["true"], env={"HPCBATCH_HOSTS": "127.0.0.2"})
    assert done["state"] == p.FAILED_TO_START
    assert "HPCBATCH_HOSTS[0] must be 'address:slots'" in done["reason"]


def test_a_malformed_launch_key_is_refused_naming_the_field(gang: Gang) -> None:
    done = gang.start(0, "badkey#0", ["true"], key="ABC")
    assert done["state"] == p.FAILED_TO_START
    assert "'launch_key' must be 64 lowercase hex digits" in done["reason"]


def test_a_wrong_key_an_ended_attempt_and_a_host_outside_the_gang_are_refused(
    gang: Gang,
) -> None:
    gang.start(1, "r#1", ["sleep", "30"])
    code, _, err = finished(launch(gang, ["127.0.0.3", "true"], key=secrets.token_hex(32)))
    assert code == 255 and "refused the launch" in err and "matches the key of no" in err
    code, _, err = finished(launch(gang, ["127.0.0.9", "true"]))
    assert code == 255 and "host '127.0.0.9' is not a node of this job's allocation" in err
    code, out, _ = finished(launch(gang, ["-x", "127.0.0.3", "echo", "ok"]))
    assert (code, out) == (0, "ok\n")  # the agent kept serving, and Hydra's -x is taken
    gang.clients[1].send(p.kill("r#1", "test over"))
    gang.finish(1, "r#1")
    code, _, err = finished(launch(gang, ["127.0.0.3", "true"]))
    assert code == 255 and "matches the key of no gang attempt this agent runs now" in err


def test_a_malformed_request_is_refused_and_the_agent_keeps_serving(gang: Gang) -> None:
    with socket.create_connection((ADDRESSES[1], gang.ports[1]), timeout=10) as sock:
        reader = sock.makefile("rb")
        w.parse_line(reader.readline(), "challenge", {"nonce": str})
        sock.sendall(b'{"v":1,"type":"request","attempt_id":"a"}\n')
        answer = w.parse_line(reader.readline(), "refused", {"reason": str})
        assert "request lacks a str 'command'" in answer["reason"]
        assert reader.readline() == b""  # closed
    gang.start(1, "m#1", ["sleep", "30"])
    code, out, _ = finished(launch(gang, ["127.0.0.3", "echo", "still"]))
    assert (code, out) == (0, "still\n")
    gang.clients[1].send(p.kill("m#1", "test over"))
    gang.finish(1, "m#1")


def remote_pid(run: subprocess.Popen[str]) -> int:
    assert run.stdout is not None
    return int(run.stdout.readline())


def test_killing_the_client_kills_the_remote_process_group(gang: Gang) -> None:
    gang.start(1, "k#1", ["sleep", "30"])
    run = launch(gang, ["127.0.0.3", "sleep 60 & echo $!; wait"])
    pid = remote_pid(run)
    assert not process_gone(pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    poll_until(lambda: process_gone(pid), what="the remote sleep to be killed")
    gang.clients[1].send(p.kill("k#1", "test over"))
    gang.finish(1, "k#1")


def test_ending_the_attempt_kills_its_launched_processes(gang: Gang) -> None:
    gang.start(1, "e#1", ["sleep", "30"])
    run = launch(gang, ["127.0.0.3", "echo $$; exec sleep 60"])
    pid = remote_pid(run)
    gang.clients[1].send(p.kill("e#1", "the gang failed"))
    gang.finish(1, "e#1")
    poll_until(lambda: process_gone(pid), what="the launched sleep to be killed")
    code, _, _ = finished(run)
    assert code in (128 + signal.SIGTERM, 128 + signal.SIGKILL)  # the slot's kill, or ours
