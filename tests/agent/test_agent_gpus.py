"""The real agent's GPUs with a stub nvidia-smi on PATH: the hello's index, UUID, model and
memory of each GPU, or the reason there are none (in every case the node's CPUs and memory stay
offered); configured GPUs by index or UUID; and re-detection while the agent runs: a changed
inventory is one ``gpus`` message, a failed run keeps the GPUs, a hung one blocks nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_harness import AgentProcess, Client, poll_until, process_gone
from gpu_stubs import GOLDEN, SwitchableStub, hanging, path_with, printing
from hpcbatch_agent import protocol as p
from hpcbatch_agent.gpudevices import DRIVER_DIR_VAR, NO_MINORS_REASON
from hpcbatch_agent.gpupoll import POLL_VAR
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


def test_gpus_option_by_uuid_and_a_configured_gpu_the_host_lacks(start_agent, tmp_path) -> None:
    bin_dir = printing(tmp_path, "nvidia_smi_8x_h100.csv")
    uuid_7 = "GPU-0b1c2d3e-4f5a-4b6c-7d8e-9f0a1b2c3d4e"
    node = hello_with_path(start_agent, path_with(bin_dir), "--gpus", f"{uuid_7},3,9")
    assert [(g["index"], g["uuid"]) for g in node["gpus"]] == [
        (7, uuid_7),
        (3, "GPU-c9d8e7f6-a5b4-4c3d-2e1f-0a9b8c7d6e5f"),
    ]
    assert node["gpus_reason"].startswith(
        "configured GPU 9 is not on this host (nvidia-smi lists 0 GPU-3f1c9a2e-"
    )
    assert node["gpus_reason"].endswith(f", 7 {uuid_7})")
    assert_cpus_offered(node)


def test_without_nvidia_smi_configured_gpus_are_offered_as_given(start_agent, tmp_path) -> None:
    agent = start_agent(
        "--gpus",
        "GPU-aaa,GPU-bbb",
        env_extra={"PATH": str(tmp_path), DRIVER_DIR_VAR: str(tmp_path)},
    )
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    client.close()
    assert [(g["index"], p.gpu_id(g)) for g in node["gpus"]] == [(0, "GPU-aaa"), (1, "GPU-bbb")]
    assert node["gpus_reason"] == "nvidia-smi not found on PATH"
    # No inventory and no driver: nothing says which device files these GPUs are.
    assert (node["gpu_isolation"], node["gpu_isolation_reason"]) == ("env", NO_MINORS_REASON)


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


# --- re-detection while the agent runs (serve --gpu-poll-s) -------------------------------------

GONE = "GPU-e0f1a2b3-c4d5-4e6f-7a8b-9c0d1e2f3a4b"  # listed by the 8x output, not by one_gone


def no_gpus_message_until_a_reply(client: Client) -> None:
    """Whatever the agent sent before the answer to a request sent now has arrived: no gpus."""
    client.send(p.read_log(1, "nothing"))
    client.wait_message("log_data")
    assert [m for m in client.others if m["type"] == "gpus"] == []


def test_a_changed_inventory_reaches_the_head_once_and_a_failed_run_keeps_the_gpus(
    start_agent, tmp_path: Path
) -> None:
    stub = SwitchableStub(tmp_path)
    stub.prints("nvidia_smi_8x_h100.csv")
    agent = start_agent("--gpu-poll-s", "0.05", env_extra={"PATH": path_with(stub.bin_dir)})
    client = Client(agent.state_dir)
    assert len(client.hello()["node"]["gpus"]) == 8

    stub.prints("nvidia_smi_8x_h100_one_gone.csv")
    gone = client.wait_message("gpus")
    p.check_agent_message(gone)
    assert [g["uuid"] for g in gone["gpus"]] == [
        line.split(", ")[1]
        for line in (GOLDEN / "nvidia_smi_8x_h100_one_gone.csv").read_text().splitlines()
    ]
    assert GONE not in [g["uuid"] for g in gone["gpus"]] and "gpus_reason" not in gone

    runs = stub.runs()  # two more runs of the same inventory: nothing to tell
    poll_until(lambda: stub.runs() >= runs + 2, what="two more nvidia-smi runs")
    no_gpus_message_until_a_reply(client)

    stub.prints("nvidia_smi_driver_failed.txt", exit_code=9)
    failed = client.wait_message("gpus")
    assert failed["gpus"] == gone["gpus"]  # a failed run takes no GPU out of service
    assert failed["gpus_reason"].startswith('nvidia-smi exited with 9: "NVIDIA-SMI has failed')
    runs = stub.runs()
    poll_until(lambda: stub.runs() >= runs + 2, what="two more failed runs")
    no_gpus_message_until_a_reply(client)  # the same failure again: nothing new

    again = Client(agent.state_dir)  # a reconnecting head's hello has the node as it is now
    node = again.hello()["node"]
    assert (node["gpus"], node["gpus_reason"]) == (gone["gpus"], failed["gpus_reason"])
    stub.prints("nvidia_smi_8x_h100_one_gone.csv")
    recovered = again.wait_message("gpus")
    assert (recovered["gpus"], "gpus_reason" in recovered) == (gone["gpus"], False)
    again.close()
    client.close()


def test_a_hanging_nvidia_smi_never_blocks_the_agent(start_agent, tmp_path: Path) -> None:
    stub = SwitchableStub(tmp_path)
    stub.prints("nvidia_smi_2x_h100.csv")
    agent = start_agent("--gpu-poll-s", "0.05", env_extra={"PATH": path_with(stub.bin_dir)})
    client = Client(agent.state_dir)
    gpus = client.hello()["node"]["gpus"]
    pidfile = tmp_path / "sleepers"
    stub.hangs(pidfile)
    poll_until(pidfile.exists, what="a poll to hang in nvidia-smi")

    began = time.monotonic()
    client.send(p.launch([p.attempt_spec("quick", ["sh", "-c", "exit 3"])]))
    assert client.wait_state("quick", p.EXITED, timeout_s=2)["exit_code"] == 3
    client.send(p.read_log(7, "quick"))
    assert client.wait_message("log_data", timeout_s=2)["req"] == 7
    assert time.monotonic() - began < 2 < NVIDIA_SMI_TIMEOUT_S  # answered while it hangs

    hung = client.wait_message("gpus")
    assert (hung["gpus"], hung["gpus_reason"]) == (
        gpus,
        f"nvidia-smi timed out after {NVIDIA_SMI_TIMEOUT_S:g} s (killed)",
    )
    stub.prints("nvidia_smi_2x_h100.csv")  # a good run again: every hung one was ended before
    recovered = client.wait_message("gpus")
    assert (recovered["gpus"], "gpus_reason" in recovered) == (gpus, False)
    for sleeper in map(int, pidfile.read_text().split()):
        poll_until(lambda s=sleeper: process_gone(s), what=f"hung nvidia-smi's child {sleeper}")
    client.close()


def test_poll_period_zero_never_polls_and_the_env_sets_the_default(
    start_agent, tmp_path: Path
) -> None:
    stubs = {}
    for name, args in (("never", ["--gpu-poll-s", "0"]), ("env", [])):
        stub = stubs[name] = SwitchableStub(tmp_path / name)
        stub.prints("nvidia_smi_h200.csv")
        env = {"PATH": path_with(stub.bin_dir), POLL_VAR: "0.01"}
        start_agent(
            *args, "--heartbeat-s", "0.01", state_dir=tmp_path / name / "agent", env_extra=env
        )
    poll_until(lambda: stubs["env"].runs() >= 5, what="the env's period to poll")
    client = Client(tmp_path / "never" / "agent")
    client.hello()
    for _ in range(5):  # time passes for the other agent too: five of its heartbeats
        client.wait_message("heartbeat")
    assert stubs["never"].runs() == 1  # the detection at start, and no poll since
    client.close()
