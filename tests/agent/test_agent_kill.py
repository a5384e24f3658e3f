"""Killing jobs: whole process trees, the grace period, timeouts, shutdown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent_harness import Client, poll_until, process_gone
from hpcbatch_agent import protocol as p


def _grandchild_job(tmp_path: Path, name: str, trap: str = "") -> tuple[list[str], Path]:
    pid_file = tmp_path / f"{name}.pid"
    script = f"{trap}sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"
    return ["sh", "-c", script], pid_file


def test_kill_hits_the_whole_tree(client: Client, tmp_path: Path) -> None:
    command, pid_file = _grandchild_job(tmp_path, "tree")
    client.send(p.launch([p.attempt_spec("tree", command)]))
    job_pid = client.wait_state("tree", p.RUNNING)["pid"]
    grandchild = int(poll_until(lambda: pid_file.exists() and pid_file.read_text(), what="pid"))
    client.send(p.kill("tree", "Terminated by user"))
    result = client.wait_state("tree", p.EXITED)
    assert (result["exit_code"], result["signal"], result["reason"]) == (
        None,
        15,
        "Terminated by user",
    )
    poll_until(lambda: process_gone(grandchild) and process_gone(job_pid), what="tree gone")


def test_sigkill_after_the_grace_period(client: Client, tmp_path: Path) -> None:
    command, pid_file = _grandchild_job(tmp_path, "stubborn", trap="trap '' TERM; ")
    client.send(p.launch([p.attempt_spec("stubborn", command)]))
    client.wait_state("stubborn", p.RUNNING)
    grandchild = int(poll_until(lambda: pid_file.exists() and pid_file.read_text(), what="pid"))
    client.send(p.kill("stubborn", "stop now"))
    result = client.wait_state("stubborn", p.EXITED)
    assert (result["signal"], result["reason"]) == (9, "stop now")
    assert result["stopped_at_ms"] - result["started_at_ms"] >= 500  # --kill-grace-s 0.5
    poll_until(lambda: process_gone(grandchild), what="grandchild gone")


def test_kill_unknown_or_finished_is_a_no_op(client: Client) -> None:
    client.send(p.launch([p.attempt_spec("done", ["true"])]))
    first = client.wait_state("done", p.EXITED)
    client.send(p.kill("done", "late"))
    client.send(p.kill("never-launched", "whatever"))
    client.send(p.read_log(1, "done", 0, 1))  # a round trip proves the kills were handled
    assert "error" not in client.wait_message("log_data")
    assert client.latest["done"] == first
    assert client.hello()["attempts"] == [first]


def test_timeout_is_enforced_with_its_reason(client: Client) -> None:
    client.send(p.launch([p.attempt_spec("slow", ["sleep", "60"], timeout_s=1)]))
    result = client.wait_state("slow", p.EXITED)
    assert (result["signal"], result["reason"]) == (15, "Job attempt duration exceeded timeout")
    assert 1000 <= result["stopped_at_ms"] - result["started_at_ms"] < 5000


def test_shutdown_with_kill_jobs(start_agent, tmp_path: Path) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("victim", ["sleep", "300"])]))
    pid = client.wait_state("victim", p.RUNNING)["pid"]
    client.send(p.shutdown(kill_jobs=True))
    assert agent.popen.wait(timeout=15) == 0
    assert process_gone(pid)
    assert not (agent.state_dir / "agent.pid").exists()
    client.close()


def test_stop_command_stops_the_agent_and_leaves_its_job_to_the_next(start_agent) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("stays", ["sleep", "300"])]))
    pid = client.wait_state("stays", p.RUNNING)["pid"]
    client.close()
    stop = [sys.executable, "-m", "hpcbatch_agent", "stop", "--state-dir", str(agent.state_dir)]
    done = subprocess.run(stop, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, f"agent stopped in {agent.state_dir}")
    assert process_gone(agent.pid) and not process_gone(pid)
    again = subprocess.run(stop, capture_output=True, text=True, timeout=60, check=False)
    assert (again.returncode, again.stdout.strip()) == (0, f"no agent running in {agent.state_dir}")
    restarted = start_agent()
    client = Client(restarted.state_dir)
    assert {u["attempt_id"]: u["state"] for u in client.hello()["attempts"]} == {"stays": p.RUNNING}
    client.close()
    kill = subprocess.run([*stop, "--kill-jobs"], capture_output=True, text=True, timeout=60)
    assert kill.returncode == 0 and kill.stdout.strip().endswith("with its jobs")
    assert process_gone(pid)
