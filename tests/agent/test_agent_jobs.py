"""Running jobs through a real agent: exit codes, environment, cwd, logs, start failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent_harness import AgentProcess, Client, poll_until
from hpcbatch_agent import protocol as p


def test_hello_reports_capacity(start_agent) -> None:
    agent = start_agent(
        "--vcpus", "3", "--memory-mib", "1234", "--gpus", "0,1", "--node-name", "gpu-node"
    )
    client = Client(agent.state_dir)
    hello = client.hello()
    p.check_agent_message(hello)
    node = hello["node"]
    assert (node["name"], node["vcpus"], node["memory_mib"]) == ("gpu-node", 3, 1234)
    assert [gpu["index"] for gpu in node["gpus"]] == [0, 1]
    assert node["cgroups"] in ("none", "v1", "v2")
    assert hello["attempts"] == []
    assert int((agent.state_dir / "agent.pid").read_text()) == agent.pid
    client.close()


def test_detected_capacity_without_overrides(client: Client, agent: AgentProcess) -> None:
    hello = Client(agent.state_dir).hello()
    assert hello["node"]["vcpus"] == len(os.sched_getaffinity(0))
    assert hello["node"]["memory_mib"] > 0


def test_exit_codes_zero_and_non_zero(client: Client) -> None:
    client.send(
        p.launch([p.attempt_spec("ok", ["true"]), p.attempt_spec("bad", ["sh", "-c", "exit 42"])])
    )
    ok = client.wait_state("ok", p.EXITED)
    bad = client.wait_state("bad", p.EXITED)
    assert (ok["exit_code"], ok["signal"], ok["reason"]) == (0, None, None)
    assert (bad["exit_code"], bad["signal"]) == (42, None)
    # A job that ends within the turn it started in is reported by its end alone, which then
    # carries what its RUNNING would have.
    running = [u for u in client.seen if u["attempt_id"] == "bad" and u["state"] == p.RUNNING]
    assert all(u["pid"] == bad["pid"] for u in running)
    assert bad["pid"] > 0 and bad["started_at_ms"] <= bad["stopped_at_ms"]
    p.check_agent_message(p.updates(client.seen))


def test_env_gpus_and_explicit_cwd(start_agent, tmp_path: Path) -> None:
    agent = start_agent(env_extra={"HPCBATCH_AGENT_ONLY": "leak", "LANG": "C.UTF-8"})
    client = Client(agent.state_dir)
    client.hello()
    script = (
        'echo "$FOO|$LANG|${HPCBATCH_AGENT_ONLY-unset}|${CUDA_VISIBLE_DEVICES-unset}|'
        '${NVIDIA_VISIBLE_DEVICES-unset}|$(pwd)"; echo oops >&2'
    )
    uuid = "GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24"
    # The head sets the GPU variables in env (UUIDs); the agent sets none of its own.
    given = {"CUDA_VISIBLE_DEVICES": uuid, "NVIDIA_VISIBLE_DEVICES": uuid}
    client.send(
        p.launch(
            [
                p.attempt_spec(
                    "env:1",
                    ["sh", "-c", script],
                    env={"FOO": "bar", **given},
                    cwd=str(tmp_path),
                    gpus=[uuid],
                ),
                p.attempt_spec("env:2", ["sh", "-c", script], cwd=str(tmp_path), gpus=["0", "2"]),
            ]
        )
    )
    first = Path(client.wait_state("env:1", p.EXITED)["log_path"]).read_text()
    assert first == f"bar|C.UTF-8|unset|{uuid}|{uuid}|{tmp_path}\noops\n"
    second = Path(client.wait_state("env:2", p.EXITED)["log_path"]).read_text()
    assert second == f"|C.UTF-8|unset|unset|unset|{tmp_path}\noops\n"
    client.close()


def test_default_cwd_is_a_per_attempt_work_dir(client: Client, agent: AgentProcess) -> None:
    client.send(p.launch([p.attempt_spec("w/1", ["pwd"]), p.attempt_spec("w/2", ["pwd"])]))
    first = Path(client.wait_state("w/1", p.EXITED)["log_path"]).read_text().strip()
    second = Path(client.wait_state("w/2", p.EXITED)["log_path"]).read_text().strip()
    assert first != second
    assert Path(first).parent == agent.state_dir.resolve() / "work"
    assert "CUDA_VISIBLE_DEVICES" not in Path(first).name


def test_read_log_with_offsets_and_complete(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = f'printf "hello wörld\\n"; while [ ! -e {gate} ]; do sleep 0.02; done; echo bye'
    client.send(p.launch([p.attempt_spec("log", ["sh", "-c", script])]))
    log_path = Path(client.wait_state("log", p.RUNNING)["log_path"])
    poll_until(lambda: log_path.exists() and log_path.stat().st_size >= 13, what="first line")
    client.send(p.read_log(1, "log", 0, 5))
    first = client.wait_message("log_data")
    assert (first["req"], first["data"], first["next_offset"], first["complete"]) == (
        1,
        "hello",
        5,
        False,
    )
    client.send(p.read_log(2, "log", 5, 4))  # "ö" is 2 bytes: never split it
    second = client.wait_message("log_data")
    assert (second["data"], second["next_offset"]) == (" wö", 9)
    gate.touch()
    client.wait_state("log", p.EXITED)
    client.send(p.read_log(3, "log", 9, 1000))
    rest = client.wait_message("log_data")
    assert (rest["data"], rest["complete"]) == ("rld\nbye\n", True)
    client.send(p.read_log(4, "nope", 0, 10))
    assert client.wait_message("log_data")["error"] == "no such attempt"


def test_logs_stay_readable_after_ack(client: Client) -> None:
    client.send(p.launch([p.attempt_spec("acked", ["echo", "kept"])]))
    client.wait_state("acked", p.EXITED)
    client.send(p.ack(["acked"]))
    client.send(p.read_log(7, "acked", 0, 100))
    data = client.wait_message("log_data")
    assert (data["data"], data["complete"], data.get("error")) == ("kept\n", True, None)


def test_failed_to_start(client: Client, tmp_path: Path) -> None:
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    not_executable.chmod(stat.S_IRUSR | stat.S_IWUSR)
    client.send(
        p.launch(
            [
                p.attempt_spec("nf", ["no-such-command-xyz", "arg"]),
                p.attempt_spec("nx", [str(not_executable)]),
                p.attempt_spec("nocwd", ["true"], cwd=str(tmp_path / "missing")),
            ]
        )
    )
    results = {aid: client.wait_state(aid, p.FAILED_TO_START) for aid in ("nf", "nx", "nocwd")}
    assert results["nf"]["reason"] == (
        "CannotStartContainerError: command not found: no-such-command-xyz"
    )
    assert results["nx"]["reason"] == (
        f"CannotStartContainerError: command not executable: {not_executable}"
    )
    assert results["nocwd"]["reason"] == (
        f"CannotStartContainerError: working directory {tmp_path / 'missing'} does not exist on n1"
    )
    assert all(r["pid"] is None and r["exit_code"] is None for r in results.values())
    assert "command not found" in Path(results["nf"]["log_path"]).read_text()


def test_duplicate_launch_runs_once(client: Client, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    spec = p.attempt_spec("dup", ["sh", "-c", f"echo run >> {counter}"])
    client.send(p.launch([spec]))
    first = client.wait_state("dup", p.EXITED)
    client.send(p.launch([spec]))
    client.send(p.read_log(1, "dup", 0, 10))  # a round trip: the relaunch was handled
    client.wait_message("log_data")
    assert client.latest["dup"] == first
    assert counter.read_text() == "run\n"
