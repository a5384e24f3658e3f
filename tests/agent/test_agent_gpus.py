"""The real agent's hello with a stub nvidia-smi on PATH: each GPU's index, UUID, model and
memory, or the reason there are none; in every case the node's CPUs and memory stay offered."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_harness import AgentProcess, Client, poll_until, process_gone
from gpu_stubs import hanging, path_with, printing
from hpcbatch_agent import protocol as p
from hpcbatch_agent.gpus import NVIDIA_SMI_TIMEOUT_S


def hello_with_path(start_agent: Callable[..., AgentProcess], path: str, *args: str) -> Any:
    agent = start_agent(*args, env_extra={"PATH": path})
    client = Client(agent.state_dir)
    hello = client.hello()
    p.check_agent_message(hello)
    client.close()
    return hello["node"]


def assert_cpus_offered(node: dict[str, Any]) -> None:
    assert node["vcpus"] == len(os.sched_getaffinity(0))
    assert node["memory_mib"] > 0


def test_hello_carries_each_gpu_of_nvidia_smi(start_agent, tmp_path: Path) -> None:
    node = hello_with_path(start_agent, path_with(printing(tmp_path, "nvidia_smi_h200.csv")))
    assert node["gpus"] == [
        {
            "index": 0,
            "uuid": "GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24",
            "name": "NVIDIA H200",
            "memory_mib": 143771,
        }
    ]
    assert "gpus_reason" not in node
    assert_cpus_offered(node)


def test_gpus_option_picks_boards_and_nvidia_smi_fills_in(start_agent, tmp_path: Path) -> None:
    bin_dir = printing(tmp_path, "nvidia_smi_8x_h100.csv")
    node = hello_with_path(start_agent, path_with(bin_dir), "--gpus", "6,7")
    assert [(g["index"], g["uuid"]) for g in node["gpus"]] == [
        (6, "GPU-f7e6d5c4-b3a2-4918-0f7e-6d5c4b3a2918"),
        (7, "GPU-0b1c2d3e-4f5a-4b6c-7d8e-9f0a1b2c3d4e"),
    ]


def test_no_nvidia_smi_means_no_gpus_with_the_reason(start_agent, tmp_path: Path) -> None:
    node = hello_with_path(start_agent, str(tmp_path))
    assert (node["gpus"], node["gpus_reason"]) == ([], "nvidia-smi not found on PATH")
    assert_cpus_offered(node)


def test_garbage_means_no_gpus_with_the_reason(start_agent, tmp_path: Path) -> None:
    node = hello_with_path(start_agent, path_with(printing(tmp_path, "nvidia_smi_with_header.txt")))
    assert node["gpus"] == []
    assert node["gpus_reason"] == (
        "nvidia-smi output not understood: nvidia-smi line 1: index 'index' is not an "
        "integer 0..65535"
    )
    assert_cpus_offered(node)


def test_a_hanging_nvidia_smi_is_timed_out_and_jobs_still_run(start_agent, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    agent = start_agent(env_extra={"PATH": path_with(hanging(tmp_path, pidfile))})
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert node["gpus"] == []
    assert node["gpus_reason"] == f"nvidia-smi timed out after {NVIDIA_SMI_TIMEOUT_S:g} s (killed)"
    assert_cpus_offered(node)
    sleeper = int(pidfile.read_text())
    poll_until(lambda: process_gone(sleeper), what="the hung nvidia-smi's child to be killed")
    client.send(p.launch([p.attempt_spec("cpu-job", ["sh", "-c", "exit 7"])]))
    assert client.wait_state("cpu-job", p.EXITED)["exit_code"] == 7
    client.close()
