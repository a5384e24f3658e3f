"""The SLURM bridge (agent ``serve --slurm``) against the real Slurm of tests/slurm, spoken to
as the head speaks to any agent: what it submits runs in Slurm with the attempt's command and
environment, its updates follow the Slurm job (queued with Slurm's reason, running, its exit
code), a kill cancels it, a timeout is hpcbatch's own, Slurm's refusals come back in Slurm's
words, and a restarted bridge finds its jobs again."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hpcbatch_agent import protocol as p
from hpcbatch_agent import slurmcli
from hpcbatch_agent.slurmbridge import NEVER_SUBMITTED_REASON

from tests.agent.agent_harness import (
    AgentProcess,
    Client,
    array_child,
    attempt_spec,
    gang_node,
    poll_until,
)
from tests.slurm.slurmcluster import CPUS, PARTITION, SlurmCluster

SLOW_S = 30.0  # a poll of 0.2 s, Slurm's scheduling a second or so: ample


def spec(attempt_id: str, *command: str, **fields: Any) -> dict[str, Any]:
    """An attempt whose job id is in its environment, as the head puts it there."""
    env = {"AWS_BATCH_JOB_ID": attempt_id.split("#")[0]}
    return attempt_spec(attempt_id, *command, env=env, **fields)


@pytest.fixture
def bridge_dir(tmp_path: Path) -> Path:
    return tmp_path / "bridge"


@pytest.fixture
def bridges(slurm: SlurmCluster, bridge_dir: Path) -> Iterator[list[AgentProcess]]:
    with bridges_of(slurm) as started:
        yield started


@contextlib.contextmanager
def bridges_of(slurm: SlurmCluster) -> Iterator[list[AgentProcess]]:
    """The bridges a test starts (it appends them), stopped after it, and their jobs gone."""
    started: list[AgentProcess] = []
    try:
        yield started
    finally:
        for agent in started:
            agent.stop()
        for agent in started:
            agent.wait_keeper()
        cancel_bridge_jobs(slurm)


def cancel_bridge_jobs(slurm: SlurmCluster) -> None:
    """What a failed test left in Slurm goes, so the next test finds the nodes free."""
    run = slurmcli.local(slurm.env)

    def ours() -> list[str]:
        return [job.slurm_id for job in slurmcli.squeue(run) if job.name.startswith("hb-")]

    for slurm_id in ours():
        slurmcli.scancel(run, slurm_id)
    poll_until(lambda: not ours(), SLOW_S, "the bridge's jobs to leave Slurm")


def wait_update(client: Client, attempt_id: str, wanted: Callable[[dict[str, Any]], bool]) -> Any:
    """The attempt's latest update once ``wanted`` holds for it (reading what comes)."""
    deadline = time.monotonic() + SLOW_S
    while not wanted(latest := client.latest.get(attempt_id, {})):
        if time.monotonic() > deadline:
            pytest.fail(f"{attempt_id}: no wanted update within {SLOW_S} s; last {latest}")
        with contextlib.suppress(TimeoutError):
            client.recv(max(0.01, deadline - time.monotonic()))
    return latest


def start_bridge(
    slurm: SlurmCluster, state_dir: Path, started: list[AgentProcess], *extra: str
) -> AgentProcess:
    args = ["--node-name", "slurm-1", "--slurm", "--slurm-poll-s", "0.2", "--vcpus", "8", *extra]
    agent = AgentProcess(state_dir, args, slurm.env)
    started.append(agent)
    return agent


def connect(state_dir: Path) -> Client:
    """A head's connection; the hello's attempts count as the latest updates."""
    client = Client(state_dir)
    hello = client.hello()
    client.latest.update({update["attempt_id"]: update for update in hello["attempts"]})
    return client


def test_a_job_runs_in_slurm_with_its_environment_and_ends_with_its_code(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    assert client.latest == {}
    view = client.wait_message("slurm")  # the partition's nodes, as sinfo sees them
    assert {n["name"] for n in view["nodes"]} == {h.name for h in slurm.cluster.hosts}
    assert view["trouble"] is None
    body = 'echo "id=$AWS_BATCH_JOB_ID node=$SLURMD_NODENAME"; exit 3'
    client.send(p.launch([spec("j1#1", "sh", "-c", body)]))
    queued = client.wait_state("j1#1", p.QUEUED, p.RUNNING, p.EXITED)
    assert queued["state"] != p.EXITED
    first = client.seen[0]
    assert first["state"] == p.QUEUED and first["reason"].startswith("submitted to Slurm as job ")
    ended = client.wait_state("j1#1", p.EXITED, timeout_s=SLOW_S)
    assert (ended["exit_code"], ended["signal"], ended["reason"]) == (3, None, None)
    assert ended["started_at_ms"] is not None
    assert ended["started_at_ms"] <= ended["stopped_at_ms"]
    text = Path(ended["log_path"]).read_text()
    assert text.startswith("id=j1 node=hb"), text  # ran on a Slurm node, with its env
    client.send(p.ack(["j1#1"]))
    client.close()


def test_queued_shows_slurms_reason_and_a_kill_cancels_pending_and_running_jobs(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    hosts = len(slurm.cluster.hosts)
    fill = [spec(f"fill{i}#1", "sleep", "60", vcpus=CPUS) for i in range(hosts)]
    client.send(p.launch(fill))
    for item in fill:
        client.wait_state(item["attempt_id"], p.RUNNING, timeout_s=SLOW_S)
    client.send(p.launch([spec("waits#1", "true", vcpus=CPUS)]))

    def waiting(update: dict[str, Any]) -> bool:
        return update.get("state") == p.QUEUED and ": " in update["reason"]

    reason = wait_update(client, "waits#1", waiting)["reason"]
    assert reason in (
        f"waiting in Slurm partition {PARTITION}: Resources",
        f"waiting in Slurm partition {PARTITION}: Priority",
    )
    client.send(p.kill("waits#1", "cancelled by the user"))
    pending = client.wait_state("waits#1", p.EXITED, timeout_s=SLOW_S)
    assert (pending["reason"], pending["started_at_ms"]) == ("cancelled by the user", None)
    client.send(p.kill("fill0#1", "terminated by the user"))
    running = client.wait_state("fill0#1", p.EXITED, timeout_s=SLOW_S)
    assert running["reason"] == "terminated by the user"
    assert running["started_at_ms"] is not None and running["exit_code"] is None
    for item in fill[1:]:
        client.send(p.kill(item["attempt_id"], "test over"))
    for item in fill[1:]:
        client.wait_state(item["attempt_id"], p.EXITED, timeout_s=SLOW_S)
    client.close()


def test_a_timeout_is_hpcbatchs_own_and_slurms_refusal_is_quoted(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    client.send(p.launch([spec("slow#1", "sleep", "60", timeout_s=1)]))
    client.send(p.launch([spec("huge#1", "true", vcpus=CPUS + 1)]))
    refused = client.wait_state("huge#1", p.FAILED_TO_START, timeout_s=SLOW_S)
    assert refused["reason"].startswith("CannotStartContainerError: Slurm refused the job: ")
    assert "Requested node configuration is not available" in refused["reason"]
    timed_out = client.wait_state("slow#1", p.EXITED, timeout_s=SLOW_S)
    assert timed_out["reason"] == p.TIMEOUT_REASON
    ran_s = (timed_out["stopped_at_ms"] - timed_out["started_at_ms"]) / 1000
    assert ran_s < 10, ran_s  # not Slurm's --time backstop (2 minutes), nor its 30-s check
    client.close()


def test_a_partition_slurm_does_not_have_fails_each_attempt_in_slurms_words(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    start_bridge(slurm, bridge_dir, bridges, "--slurm-partition", "nope")
    client = connect(bridge_dir)
    client.send(p.launch([spec("nowhere#1", "true")]))
    failed = client.wait_state("nowhere#1", p.FAILED_TO_START)
    assert failed["reason"] == (
        "CannotStartContainerError: Slurm refused the job: sbatch: error: invalid partition "
        "specified: nope; sbatch: error: Batch job submission failed: Invalid partition name "
        "specified"
    )
    client.close()


def test_a_restarted_bridge_tracks_its_jobs_again_and_finds_an_interrupted_submit(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    first = start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    client.send(p.launch([spec("kept#1", "sh", "-c", "sleep 2; exit 5")]))
    client.wait_state("kept#1", p.RUNNING, timeout_s=SLOW_S)
    client.close()
    first.kill9()
    first.wait_keeper()
    bridges.remove(first)
    # Two submissions the dead bridge had journaled as intents only: one reached Slurm (found
    # by its job name), one never did (it fails to start, and is never submitted now).
    run = slurmcli.local(slurm.env)
    body = "#!/bin/sh\nexit 7\n"
    logs = bridge_dir / "logs"
    found_id = slurmcli.sbatch(run, body, ["--no-requeue", "-J", "hb-found#1", "-o", os.devnull])
    journal = bridge_dir / "spool" / "journal.jsonl"
    with journal.open("a") as out:
        for aid in ("found#1", "never#1"):
            intent = {"op": "start", "attempt_id": aid, "pid": None, "work_dir": None}
            out.write(json.dumps({**intent, "log_path": str(logs / f"{aid}.log")}) + "\n")
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    assert set(client.latest) == {"kept#1", "found#1", "never#1"}
    assert client.latest["kept#1"]["state"] in (p.RUNNING, p.EXITED)
    kept = client.wait_state("kept#1", p.EXITED, timeout_s=SLOW_S)
    assert kept["exit_code"] == 5
    found = client.wait_state("found#1", p.EXITED, timeout_s=SLOW_S)
    assert found["exit_code"] == 7
    never = client.wait_state("never#1", p.FAILED_TO_START, timeout_s=SLOW_S)
    assert never["reason"] == NEVER_SUBMITTED_REASON
    named = slurm.run("squeue", "-h", "-n", "hb-never#1", "-o", "%i").stdout.strip()
    assert named == ""
    assert found_id  # the one Slurm job of that name
    client.close()


def test_children_of_one_array_go_as_one_slurm_array_each_with_its_own_end(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    body = 'pwd; echo "$AWS_BATCH_JOB_ID"; exit "$AWS_BATCH_JOB_ARRAY_INDEX"'
    children = [array_child("arr", index, "sh", "-c", body) for index in (0, 1, 2, 5)]
    client.send(p.launch(children))
    ids = set()
    for item in children:
        queued = client.wait_state(item["attempt_id"], p.QUEUED, p.RUNNING, p.EXITED)
        first = next(u for u in client.seen if u["attempt_id"] == item["attempt_id"])
        assert first["state"] == p.QUEUED, queued
        ids.add(first["reason"].rsplit(" ", 1)[1])  # "... task I of array job N"
    assert len(ids) == 1  # one sbatch --array for the four
    for item in children:
        index = int(item["env"]["AWS_BATCH_JOB_ARRAY_INDEX"])
        ended = client.wait_state(item["attempt_id"], p.EXITED, timeout_s=SLOW_S)
        assert ended["exit_code"] == index
        work, job_id = Path(ended["log_path"]).read_text().splitlines()
        assert job_id == f"arr:{index}"
        assert Path(work).name == f"arr%3A{index}%2F1"  # the child's own work directory
    client.close()


def test_a_restarted_bridge_finds_an_interrupted_array_by_its_name(
    slurm: SlurmCluster, bridge_dir: Path, bridges: list[AgentProcess]
) -> None:
    first = start_bridge(slurm, bridge_dir, bridges)
    first.stop()
    first.wait_keeper()
    bridges.remove(first)
    run = slurmcli.local(slurm.env)
    script = "#!/bin/sh\nexit $SLURM_ARRAY_TASK_ID\n"
    options = ["--no-requeue", "-J", "hb-lost:_/1", "-o", os.devnull, "--array=3,4"]
    slurmcli.sbatch(run, script, options)
    with (bridge_dir / "spool" / "journal.jsonl").open("a") as out:
        for index in (3, 4):
            aid = f"lost:{index}/1"
            intent = {"op": "start", "attempt_id": aid, "pid": None, "work_dir": None}
            out.write(json.dumps({**intent, "log_path": str(bridge_dir / f"{index}.log")}) + "\n")
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    for index in (3, 4):
        ended = client.wait_state(f"lost:{index}/1", p.EXITED, timeout_s=SLOW_S)
        assert ended["exit_code"] == index
    client.close()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other users may pass through (pytest's own tmp dirs are 0700 root's), as
    a real bridge's state dir's parent is."""
    path = Path(tempfile.mkdtemp(prefix="hb-bridge-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_job_naming_a_user_runs_in_slurm_as_that_user_and_an_unknown_one_never_runs(
    slurm: SlurmCluster, open_dir: Path, bridges: list[AgentProcess]
) -> None:
    bridge_dir = open_dir / "bridge"
    start_bridge(slurm, bridge_dir, bridges)
    client = connect(bridge_dir)
    body = 'echo "$(id -un) $USER $HOME"; touch mine && stat -c %U mine; exit 4'
    who = 'echo "$(id -un)"'
    array = [array_child("arr", i, "sh", "-c", who, user="nobody") for i in (0, 1)]
    gang = [gang_node("g", i, 2, "sh", "-c", who, user="nobody") for i in (0, 1)]
    client.send(
        p.launch(
            [
                spec("as#1", "sh", "-c", body, user="nobody"),
                spec("ghost#1", "true", user="no-such-user-hb"),
                *array,
                *gang,
            ]
        )
    )
    ghost = client.wait_state("ghost#1", p.FAILED_TO_START)
    assert ghost["reason"] == "CannotStartContainerError: no user 'no-such-user-hb' on this host"
    done = client.wait_state("as#1", p.EXITED, timeout_s=SLOW_S)
    assert done["exit_code"] == 4, (done, Path(done["log_path"]).read_text())
    text = Path(done["log_path"]).read_text()
    assert text == "nobody nobody /nonexistent\nnobody\n", text  # Slurm ran it as nobody
    nobody = pwd.getpwnam("nobody").pw_uid
    status = os.stat(done["log_path"])
    assert (stat.S_IMODE(status.st_mode), status.st_uid) == (0o600, nobody)
    for child in array:
        ended = client.wait_state(child["attempt_id"], p.EXITED, timeout_s=SLOW_S)
        assert Path(ended["log_path"]).read_text() == "nobody\n"
    for node in gang:  # each node of a multi-node job, and its exit file, as nobody
        ended = client.wait_state(node["attempt_id"], p.EXITED, timeout_s=SLOW_S)
        assert ended["exit_code"] == 0, ended
        assert Path(ended["log_path"]).read_text().startswith("nobody\n")
    client.send(p.read_log(7, "as#1"))  # what `hpcbatch logs` reads, through the bridge
    shown = client.wait_message("log_data")
    assert (shown["data"], shown.get("error")) == (text, None)
    client.close()
