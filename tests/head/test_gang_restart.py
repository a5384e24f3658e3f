"""A head restart in the middle of a running gang reconciles it like any job, through the real
parts: a real head killed with -9 and started again on the same data dir, its LOCAL compute
environment's two virtual nodes (real agents, which outlive the head on purpose, with their
launch servers), and real Open MPI.

What must hold: the gang is still RUNNING afterwards with the same attempts on the same nodes
and the same processes (nothing relaunched); it ends with its true result once its work ends;
MPI launches keep working (the per-gang key comes from the head's launch.secret, kept in its
data dir, so a main node held at the barrier when the head died gets, from the next head, the
key its other node already holds); and a node's result that arrived while the head was down
fails the gang naming that node when the head comes back, stopping the main node. No process
of the gang is left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hpcbatch_agent.jobs import find_jobs

from hpcbatch.transport.local import read_pid
from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_gang_timeout import _alive, _gang_pids

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
OPENMPI = "/usr/bin/mpirun.openmpi"


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=1, memory=2048)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _submit(head: HeadProcess, *argv: str) -> str:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    command = [HPCBATCH, "submit", "--nodes", "2", "--timeout", "60", *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout.strip()


def _gang(head: HeadProcess, parent: str) -> list[tuple[str, str, int, int]]:
    """Per node job: (agent node, attempt id, attempts so far, its job's pid on that agent)."""
    seen = []
    for index in range(2):
        node = head.raw_describe(f"{parent}#{index}")
        assert node["status"] == "RUNNING", (index, node["status"], node.get("statusReason"))
        extras: dict[str, Any] = node["hpcbatch"]
        jobs = find_jobs(str((head.data_dir / "agents" / extras["node"]).resolve()))
        attempt = extras["attemptId"]
        seen.append((extras["node"], attempt, len(node["attempts"]), jobs.get(attempt, -1)))
    return seen


def _running_gang(head: HeadProcess, parent: str) -> list[tuple[str, str, int, int]]:
    head.wait_status(parent, "RUNNING")
    return list(wait_for(lambda: _try_gang(head, parent), 20, f"both nodes of {parent} running"))


def _try_gang(head: HeadProcess, parent: str) -> list[tuple[str, str, int, int]] | None:
    try:
        gang = _gang(head, parent)
    except AssertionError:
        return None
    return gang if all(pid > 0 for *_, pid in gang) else None


def _restart(head: HeadProcess) -> None:
    head.kill9()
    head.start()


def _no_process_left(parent: str) -> None:
    wait_for(lambda: not _gang_pids(parent), 15, f"no process of {parent}: {_gang_pids(parent)}")


def test_a_running_gang_survives_a_head_kill_9_and_ends_with_its_result(
    head: HeadProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    parent = _submit(head, "--", "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    before = _running_gang(head, parent)
    assert {node for node, *_ in before} == {"local-1", "local-2"}
    _restart(head)
    assert head.describe(parent)["status"] == "RUNNING"
    assert _gang(head, parent) == before  # same nodes, attempts and processes: no relaunch
    gate.touch()
    done = head.wait_status(parent, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    nodes = [head.describe(f"{parent}#{i}") for i in range(2)]
    assert [n["status"] for n in nodes] == ["SUCCEEDED", "SUCCEEDED"]  # the holder stopped too
    assert [len(n["attempts"]) for n in nodes] == [1, 1]
    _no_process_left(parent)


def test_open_mpi_ranks_and_new_launches_go_on_across_a_head_restart(
    head: HeadProcess, tmp_path: Path
) -> None:
    if not os.access(OPENMPI, os.X_OK):
        pytest.skip("no Open MPI: scripts/test.sh installs openmpi-bin")
    gate, ranks, after = tmp_path / "gate", tmp_path / "ranks", tmp_path / "after"
    ranks.mkdir()
    after.mkdir()
    wait = (
        f"echo \\$\\$ > {ranks}/\\$OMPI_COMM_WORLD_RANK; while [ ! -e {gate} ]; do sleep 0.05; done"
    )
    note = f"echo \\$AWS_BATCH_JOB_ID > {after}/\\$OMPI_COMM_WORLD_RANK"
    script = f'{OPENMPI} -n 2 sh -c "{wait}" && {OPENMPI} -n 2 sh -c "{note}"'
    parent = _submit(head, "--", "sh", "-c", script)
    try:
        wait_for(lambda: len(list(ranks.iterdir())) == 2, 30, "both ranks to start")
    except AssertionError as timed_out:  # seen once in CI: say where the gang stood
        started = sorted(p.name for p in ranks.iterdir())
        story = _story(head, parent)
        raise AssertionError(f"{timed_out}; ranks started {started}; {story}") from timed_out
    before = _running_gang(head, parent)
    rank_pids = [int(p.read_text()) for p in sorted(ranks.iterdir())]
    _restart(head)
    assert _gang(head, parent) == before
    assert all(_alive(pid) for pid in rank_pids), "the ranks outlive the head's restart"
    gate.touch()
    done = head.wait_status(parent, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    # the second mpirun launched into node 1 after the restart: its key still opens the way
    noted = sorted(p.read_text().strip() for p in after.iterdir())
    assert noted == [f"{parent}#0", f"{parent}#1"]
    _no_process_left(parent)


def test_a_node_that_failed_while_the_head_was_down_fails_the_gang_when_it_returns(
    head: HeadProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = (
        f'if [ "$AWS_BATCH_JOB_NODE_INDEX" = 1 ]; then '
        f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 7; fi; exec sleep 60"
    )
    parent = _submit(head, "--every-node", "--", "sh", "-c", script)
    before = _running_gang(head, parent)
    main_pid, node1_pid = before[0][3], before[1][3]
    head.kill9()
    gate.touch()  # node 1 ends non-zero while no head is running
    wait_for(lambda: not _alive(node1_pid), 15, "node 1's job to end")
    assert _alive(main_pid)
    head.start()
    done = head.wait_status(parent, "SUCCEEDED", "FAILED")
    assert done["status"] == "FAILED"
    assert done.get("statusReason") == f"node 1 ({before[1][0]}) exited 7", done.get("statusReason")
    node1 = head.describe(f"{parent}#1")
    assert node1["status"] == "FAILED" and node1["attempts"][-1]["container"]["exitCode"] == 7
    main = head.wait_status(f"{parent}#0", "SUCCEEDED", "FAILED")
    assert main["status"] == "FAILED"
    wait_for(lambda: not _alive(main_pid), 15, "the main node's job to be stopped")
    _no_process_left(parent)


def _story(head: HeadProcess, parent: str) -> str:
    """Each job of the gang: its status, reason and last attempt's node, for a failure message."""
    parts = []
    for job_id in (parent, f"{parent}#0", f"{parent}#1"):
        try:
            job = head.describe(job_id)
        except Exception as error:  # the message must still say what timed out
            parts.append(f"{job_id}: not described ({error})")
            continue
        attempts = job.get("attempts") or [{}]
        node = (attempts[-1].get("container") or {}).get("containerInstanceArn", "-")
        parts.append(f"{job_id}: {job['status']} ({job.get('statusReason', '')}) on {node}")
    return "; ".join(parts)


def _unread_bytes(pid: int) -> int:
    """Bytes waiting, unread, in the sockets of process ``pid`` (its commands from the head)."""
    out = subprocess.run(["ss", "-xHp"], capture_output=True, text=True, check=True).stdout
    lines = [line.split() for line in out.splitlines() if re.search(rf"pid={pid},", line)]
    return sum(int(fields[2]) for fields in lines if len(fields) > 2 and fields[2].isdigit())


def test_a_main_node_held_at_the_barrier_across_a_restart_gets_the_gang_s_key(
    head: HeadProcess, tmp_path: Path
) -> None:
    """The other node's start reached its (paused) agent from the first head; the main node's
    start, held at the barrier, comes from the second head: its launch key must be the one the
    other node holds, so the second head derives it from the same launch.secret."""
    if not os.access(OPENMPI, os.X_OK):
        pytest.skip("no Open MPI: scripts/test.sh installs openmpi-bin")
    after = tmp_path / "after"
    after.mkdir()
    note = f"echo \\$AWS_BATCH_JOB_ID > {after}/\\$OMPI_COMM_WORLD_RANK"
    dirs = sorted((head.data_dir / "agents").iterdir())
    agents = {d.name: pid for d in dirs if (pid := read_pid(d)) is not None}
    assert len(agents) == 2, agents
    try:
        for pid in agents.values():
            os.kill(pid, signal.SIGSTOP)
        parent = _submit(head, "--", "sh", "-c", f'{OPENMPI} -n 2 sh -c "{note}"')

        def other_sent() -> int | None:
            extras = head.raw_describe(f"{parent}#1").get("hpcbatch", {})
            pid = agents.get(extras.get("node", ""))
            return pid if pid is not None and _unread_bytes(pid) > 0 else None

        wait_for(other_sent, 20, "node 1's start to wait in its paused agent's socket")
        main = head.raw_describe(f"{parent}#0")
        assert main["status"] == "STARTING", main["status"]  # held at the barrier
        head.kill9()
    finally:
        for pid in agents.values():
            os.kill(pid, signal.SIGCONT)
    head.start()
    try:  # once in a CI-like run this did not end within 30 s: say where it stood
        done = head.wait_status(parent, "SUCCEEDED", "FAILED", timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{head.story(parent, nodes=2)}") from None
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    noted = sorted(p.read_text().strip() for p in after.iterdir())
    assert noted == [f"{parent}#0", f"{parent}#1"]
    nodes = [head.describe(f"{parent}#{i}") for i in range(2)]
    assert [len(n["attempts"]) for n in nodes] == [1, 1]
    _no_process_left(parent)
