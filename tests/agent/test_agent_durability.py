"""Durability with real processes: head loss, agent SIGKILL, exactly-one result per attempt."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from agent_harness import Client, poll_until, process_gone
from hpcbatch_agent import protocol as p


def _gated(gate: Path, code: int) -> list[str]:
    # The job itself waits for its gate file; the test never sleeps.
    return ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done; exit {code}"]


def _by_id(hello: dict) -> dict[str, dict]:
    return {update["attempt_id"]: update for update in hello["attempts"]}


def test_head_disconnect_leaves_jobs_running(client: Client, agent, tmp_path: Path) -> None:
    client.send(
        p.launch(
            [
                p.attempt_spec("early", _gated(tmp_path / "early", 4)),
                p.attempt_spec("late", _gated(tmp_path / "late", 6)),
            ]
        )
    )
    early_pid = client.wait_state("early", p.RUNNING)["pid"]
    late_pid = client.wait_state("late", p.RUNNING)["pid"]
    client.close()
    (tmp_path / "early").touch()
    poll_until(lambda: process_gone(early_pid), what="early job to finish")
    again = Client(agent.state_dir)
    attempts = _by_id(again.hello())
    assert (attempts["early"]["state"], attempts["early"]["exit_code"]) == (p.EXITED, 4)
    assert (attempts["late"]["state"], attempts["late"]["pid"]) == (p.RUNNING, late_pid)
    (tmp_path / "late").touch()
    assert again.wait_state("late", p.EXITED)["exit_code"] == 6
    again.close()


def test_agent_sigkill_jobs_survive_and_report_true_exit_codes(start_agent, tmp_path: Path) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(
        p.launch(
            [
                p.attempt_spec("quick", ["sh", "-c", "exit 3"]),
                p.attempt_spec("while-down", _gated(tmp_path / "down", 7)),
                p.attempt_spec("after-restart", _gated(tmp_path / "up", 5)),
                p.attempt_spec("killed-later", ["sleep", "300"]),
            ]
        )
    )
    client.wait_state("quick", p.EXITED)
    pids = {
        aid: client.wait_state(aid, p.RUNNING)["pid"]
        for aid in ("while-down", "after-restart", "killed-later")
    }
    client.close()
    agent.kill9()

    assert not any(process_gone(pid) for pid in pids.values())
    (tmp_path / "down").touch()
    poll_until(lambda: process_gone(pids["while-down"]), what="job to finish with no agent")

    restarted = start_agent()
    client = Client(restarted.state_dir)
    attempts = _by_id(client.hello())
    assert (attempts["quick"]["state"], attempts["quick"]["exit_code"]) == (p.EXITED, 3)
    assert (attempts["while-down"]["state"], attempts["while-down"]["exit_code"]) == (p.EXITED, 7)
    assert attempts["after-restart"]["state"] == p.RUNNING
    assert attempts["after-restart"]["pid"] == pids["after-restart"]
    (tmp_path / "up").touch()
    assert client.wait_state("after-restart", p.EXITED)["exit_code"] == 5
    client.send(p.kill("killed-later", "Terminated by user"))  # kill works on adopted jobs
    killed = client.wait_state("killed-later", p.EXITED)
    assert (killed["signal"], killed["reason"]) == (15, "Terminated by user")
    assert process_gone(pids["killed-later"])


def test_results_are_resent_until_acked_and_never_change(
    client: Client, agent, tmp_path: Path
) -> None:
    client.send(p.launch([p.attempt_spec(f"r{i}", ["sh", "-c", f"exit {i}"]) for i in range(3)]))
    reported = {f"r{i}": client.wait_state(f"r{i}", p.EXITED) for i in range(3)}
    client.close()
    for _ in range(2):  # reconnects re-send the same results
        again = Client(agent.state_dir)
        assert _by_id(again.hello()) == reported
        again.close()
    again = Client(agent.state_dir)
    again.hello()
    again.send(p.launch([p.attempt_spec("r1", ["sh", "-c", "exit 99"])]))  # a stale relaunch
    again.send(p.ack(["r0", "r1"]))
    again.send(p.read_log(1, "r0", 0, 1))
    again.wait_message("log_data")
    assert again.latest["r1"] == reported["r1"]
    assert [u["exit_code"] for u in again.seen if u["attempt_id"] == "r1"] == [1]
    again.close()
    final = Client(agent.state_dir)
    assert _by_id(final.hello()) == {"r2": reported["r2"]}
    final.close()


def test_acked_results_survive_no_restart_and_unacked_ones_do(start_agent) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("keep", ["true"]), p.attempt_spec("drop", ["true"])]))
    keep = client.wait_state("keep", p.EXITED)
    client.wait_state("drop", p.EXITED)
    client.send(p.ack(["drop"]))
    client.send(p.read_log(1, "drop", 0, 1))
    client.wait_message("log_data")
    client.close()
    agent.kill9()
    restarted = start_agent()
    assert Client(restarted.state_dir).hello()["attempts"] == [keep]


def test_a_job_that_was_never_journaled_is_adopted_by_its_environment(
    start_agent, tmp_path: Path
) -> None:
    # The agent died between spawning a job and journaling it: the job, alive in its own
    # session, carries its attempt id and the agent's state dir in its environment, and the
    # agent had journaled its intent to start it (without one nothing is adopted).
    from hpcbatch_agent.spool import Spool

    state_dir = (tmp_path / "agent").resolve()
    spool = Spool(state_dir / "spool")
    spool.record_intent("job:9", str(state_dir / "logs" / "job%3A9.log"), None)
    spool.close()
    env = {**os.environ, "HPCBATCH_AGENT_DIR": str(state_dir), "HPCBATCH_ATTEMPT_ID": "job:9"}
    orphan = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    try:
        agent = start_agent(state_dir=state_dir)
        client = Client(agent.state_dir)
        attempts = _by_id(client.hello())
        assert (attempts["job:9"]["state"], attempts["job:9"]["pid"]) == (p.RUNNING, orphan.pid)
        client.send(p.kill("job:9", "Terminated by user"))
        orphan.wait(timeout=15)  # this test is its parent: the agent watches it by pidfd
        # No keeper saw it end (the test reaped it), so no exit status was kept: the kill
        # is what ended it, and that is what is reported.
        killed = client.wait_state("job:9", p.EXITED)
        assert (killed["signal"], killed["reason"]) == (15, "Terminated by user")
    finally:
        orphan.kill()
        orphan.wait()


def test_a_job_that_ends_while_no_agent_runs_keeps_its_signal(start_agent, tmp_path: Path) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("victim", ["sleep", "300"])]))
    pid = client.wait_state("victim", p.RUNNING)["pid"]
    client.close()
    agent.kill9()
    os.kill(pid, signal.SIGUSR1)  # nobody asked for it: only the keeper sees how it ends
    poll_until(lambda: process_gone(pid), what="the job to end with no agent")
    restarted = start_agent()
    victim = _by_id(Client(restarted.state_dir).hello())["victim"]
    assert (victim["state"], victim["exit_code"], victim["signal"]) == (p.EXITED, None, 10)
    assert victim["reason"] is None


def test_an_interrupted_spawn_is_never_started_twice(start_agent, tmp_path: Path) -> None:
    # The previous agent died while spawning two jobs: it had journaled its intent for both,
    # and only one child got as far as opening its log.
    from hpcbatch_agent.runner import INTERRUPTED_START_REASON
    from hpcbatch_agent.spool import Spool

    state_dir = (tmp_path / "agent").resolve()
    (state_dir / "logs").mkdir(parents=True)
    spool = Spool(state_dir / "spool")
    began, never = state_dir / "logs" / "began.log", state_dir / "logs" / "never.log"
    began.touch()
    spool.record_intent("began", str(began), None)
    spool.record_intent("never", str(never), None)
    spool.close()
    agent = start_agent(state_dir=state_dir)
    client = Client(agent.state_dir)
    attempts = _by_id(client.hello())
    assert set(attempts) == {"began"}
    assert (attempts["began"]["state"], attempts["began"]["reason"]) == (
        p.EXITED,
        INTERRUPTED_START_REASON,
    )
    client.send(p.launch([p.attempt_spec("began", ["true"]), p.attempt_spec("never", ["true"])]))
    assert client.wait_state("never", p.EXITED)["exit_code"] == 0  # it had never run
    assert client.latest["began"]["reason"] == INTERRUPTED_START_REASON  # not run again
    client.close()


def test_a_status_reaped_but_not_yet_journaled_as_an_end_is_kept(
    start_agent, tmp_path: Path
) -> None:
    # The previous agent reaped a job and died before its end reached the journal: the
    # wait status it wrote before reaping is the result.
    from hpcbatch_agent.spool import Spool

    state_dir = (tmp_path / "agent").resolve()
    spool = Spool(state_dir / "spool")
    record = {"attempt_id": "done", "pid": 999_999, "start_ticks": 1, "started_at_ms": 5}
    spool.record_start({**record, "log_path": str(state_dir / "done.log"), "timeout_s": None})
    spool.record_exited("done", 3 << 8, 9)
    spool.close()
    agent = start_agent(state_dir=state_dir)
    done = _by_id(Client(agent.state_dir).hello())["done"]
    assert (done["state"], done["exit_code"], done["stopped_at_ms"]) == (p.EXITED, 3, 9)
