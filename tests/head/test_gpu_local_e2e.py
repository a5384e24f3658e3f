"""GPUs through a real head and its LOCAL agent, with a stub ``nvidia-smi`` on PATH printing
nvidia-smi's real CSV: jobs get whole GPUs by UUID, one owner each, shown in ``hpcbatch nodes``;
a board that drops out of a later nvidia-smi is taken out of service alone; who holds which GPU
survives a ``kill -9`` of the head."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_jobs_e2e import logs, submit

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
UUIDS = (
    "GPU-16794395-1c2a-4f5e-9a0b-3d2e1f0a9b8c",
    "GPU-8c4a2b1d-7e6f-4a3b-8c9d-0e1f2a3b4c5d",
)
ROWS = [f"{i}, {uuid}, NVIDIA H200, 143771" for i, uuid in enumerate(UUIDS)]
GPU = {"resourceRequirements": [{"type": "GPU", "value": "1"}]}


class Board:
    """A stub nvidia-smi whose output a test changes (a board falls off the bus)."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir(parents=True)
        self.output = directory / "nvidia-smi.csv"
        self.show(ROWS)
        script = self.bin / "nvidia-smi"
        script.write_text(f"#!/bin/sh\ncat {self.output}\n")
        script.chmod(0o755)

    def show(self, rows: list[str]) -> None:
        tmp = self.output.with_suffix(".tmp")
        tmp.write_text("".join(row + "\n" for row in rows))
        tmp.replace(self.output)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HPCBATCH_AGENT_GPU_POLL_S": "0.3",
        }


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return Board(tmp_path / "board")


@pytest.fixture
def head(tmp_path: Path, board: Board) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=4, memory=4096, env=board.env())
    try:
        yield process.start()
    finally:
        process.cleanup()


def _node(head: HeadProcess) -> dict[str, Any]:
    (node,) = head.get("/hpcbatch/v1/nodes")["nodes"]
    return dict(node)


def _devices(head: HeadProcess) -> dict[str, dict[str, Any]]:
    return {gpu["id"]: gpu for gpu in _node(head).get("gpuDevices", [])}


def _nodes_text(head: HeadProcess) -> str:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    done = subprocess.run(
        [HPCBATCH, "nodes"], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    return done.stdout


def _blocked_gpu_job(head: HeadProcess, go: Path) -> str:
    script = f'echo "$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES"; until [ -e {go} ]; do :; done'
    return submit(head, ["sh", "-c", script], containerOverrides=GPU)


def test_gpu_jobs_get_one_board_each_by_uuid_and_nodes_shows_who_holds_which(
    head: HeadProcess, tmp_path: Path
) -> None:
    devices = wait_for(lambda: _devices(head), 30, "the node's GPUs")
    assert sorted(devices) == sorted(UUIDS)
    assert {(d["model"], d["memoryMiB"], d["status"]) for d in devices.values()} == {
        ("NVIDIA H200", 143771, "FREE")
    }
    go = tmp_path / "go"
    first, second, third = (_blocked_gpu_job(head, go) for _ in range(3))
    for job_id in (first, second):
        head.wait_status(job_id, "RUNNING")
    wait_for(lambda: logs(head, first) and logs(head, second), what="both jobs' output")
    seen = {job_id: logs(head, job_id).strip().split("|") for job_id in (first, second)}
    assert sorted(cuda for cuda, _ in seen.values()) == sorted(UUIDS)
    assert all(cuda == nvidia for cuda, nvidia in seen.values())
    assert head.describe(third)["status"] == "RUNNABLE"  # two boards, two jobs: the third waits
    devices = _devices(head)
    assert {uuid: d["jobId"] for uuid, d in devices.items()} == {
        cuda: job_id for job_id, (cuda, _) in seen.items()
    }
    text = _nodes_text(head)
    for job_id, (cuda, _) in seen.items():
        assert any(
            cuda in line and "IN_USE" in line and job_id in line for line in text.splitlines()
        )
    go.touch()
    for job_id in (first, second, third):
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"


def test_a_board_gone_from_nvidia_smi_is_out_of_service_and_the_other_keeps_working(
    head: HeadProcess, board: Board, tmp_path: Path
) -> None:
    wait_for(lambda: len(_devices(head)) == 2, 30, "the node's GPUs")
    board.show(ROWS[1:])  # GPU 0 fell off the bus
    wait_for(
        lambda: _devices(head)[UUIDS[0]]["status"] == "OUT_OF_SERVICE", 30, "GPU 0 out of service"
    )
    gone = _devices(head)[UUIDS[0]]
    assert gone["reason"] == f"{UUIDS[0]} (index 0) is no longer listed by nvidia-smi on local-1"
    assert _devices(head)[UUIDS[1]]["status"] == "FREE"
    assert "OUT_OF_SERVICE" in _nodes_text(head)
    go = tmp_path / "go"
    go.touch()
    jobs = [_blocked_gpu_job(head, go) for _ in range(2)]
    for job_id in jobs:  # one after the other, both on the board still there
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
        assert logs(head, job_id).startswith(f"{UUIDS[1]}|")
    board.show(ROWS)  # back on the bus: back in service
    wait_for(lambda: _devices(head)[UUIDS[0]]["status"] == "FREE", 30, "GPU 0 back in service")


def _running_gpu_job(head: HeadProcess, go: Path) -> tuple[str, str]:
    """A 1-GPU job, RUNNING and blocked on ``go``, and the UUID it was given."""
    wait_for(lambda: len(_devices(head)) == 2, 30, "the node's GPUs")
    job_id = _blocked_gpu_job(head, go)
    head.wait_status(job_id, "RUNNING")
    wait_for(lambda: logs(head, job_id), what="the job's output")
    return job_id, logs(head, job_id).split("|")[0]


def _still_held_and_the_other_board_serves(
    head: HeadProcess, go: Path, first: str, held: str
) -> None:
    devices = wait_for(lambda: _devices(head), 30, "the node's GPUs")
    assert devices[held]["jobId"] == first and devices[held]["status"] == "IN_USE"
    second = _blocked_gpu_job(head, go)
    head.wait_status(second, "RUNNING")
    wait_for(lambda: logs(head, second), what="the second job's output")
    assert logs(head, second).split("|")[0] not in ("", held)
    go.touch()
    for job_id in (first, second):
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"


def test_who_holds_which_gpu_survives_a_kill_9_of_the_head(
    head: HeadProcess, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    first, held = _running_gpu_job(head, go)
    head.kill9()
    head.start()
    _still_held_and_the_other_board_serves(head, go, first, held)


def test_who_holds_which_gpu_survives_a_kill_9_of_the_agent(
    head: HeadProcess, tmp_path: Path
) -> None:
    from hpcbatch.transport.local import read_pid

    go = tmp_path / "go"
    first, held = _running_gpu_job(head, go)
    state_dir = head.data_dir / "agents" / "local-1"
    old, joined = read_pid(state_dir), _node(head)["stateChangedAt"]
    assert old is not None
    os.kill(old, 9)  # its keeper starts a new agent, which adopts the running job
    wait_for(lambda: read_pid(state_dir) not in (None, old), 30, "a new agent")
    wait_for(lambda: _node(head)["stateChangedAt"] != joined, 30, "the new agent's hello")
    assert _node(head)["state"] == "ONLINE"
    _still_held_and_the_other_board_serves(head, go, first, held)
