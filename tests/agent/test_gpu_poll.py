"""GPU re-detection, piece by piece: the poller's decisions on scripted detections, the hand-over
of a reaped child's status, a reaped nvidia-smi run, and the serve options (end to end through
a real agent: test_agent_gpus.py)."""

from __future__ import annotations

import os
import selectors
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_harness import poll_until, process_gone
from gpu_stubs import GOLDEN, hanging, printing
from hpcbatch_agent import main as agent_main
from hpcbatch_agent import protocol as p
from hpcbatch_agent.capacity import select_gpus
from hpcbatch_agent.cgroups import Cgroups, Hierarchy
from hpcbatch_agent.gpudevices import GpuDevices
from hpcbatch_agent.gpupoll import POLL_VAR, ChildExits, GpuPoller, poll_wanted, reaped_run
from hpcbatch_agent.gpus import GpuDetection, parse_nvidia_smi

GONE = "GPU-e0f1a2b3-c4d5-4e6f-7a8b-9c0d1e2f3a4b"  # index 5 of the 8, absent from one_gone


def inventory(name: str) -> GpuDetection:
    return GpuDetection(parse_nvidia_smi((GOLDEN / name).read_text()))


def node_with(detection: GpuDetection) -> p.NodeInfo:
    node: p.NodeInfo = {
        "name": "n1",
        "vcpus": 1,
        "memory_mib": 1,
        "gpus": detection.gpus,
        "cgroups": "none",
        "hostname": "h",
    }
    if detection.reason is not None:
        node["gpus_reason"] = detection.reason
    return node


class Scripted:
    """A detect function that returns the next of ``results`` (an exception is raised)."""

    def __init__(self, *results: GpuDetection | Exception) -> None:
        self.results = list(results)

    def __call__(self) -> GpuDetection:
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def poll_once(poller: GpuPoller) -> p.Message | None:
    """Start the due poll and collect it as the agent's loop would, once its pipe is readable."""
    poller.run_timers()
    assert poller.next_due() is None  # one poll at a time
    with selectors.DefaultSelector() as selector:
        poller.register(selector)
        assert selector.select(timeout=15), "the poll never handed its result over"
    return poller.collect()


def make_poller(node: p.NodeInfo, *results: GpuDetection | Exception, **kwargs) -> GpuPoller:
    return GpuPoller(node, kwargs.pop("configured", None), 0.0, detect=Scripted(*results), **kwargs)


def test_a_changed_inventory_is_one_message_and_an_unchanged_one_none() -> None:
    eight, seven = inventory("nvidia_smi_8x_h100.csv"), inventory("nvidia_smi_8x_h100_one_gone.csv")
    node = node_with(eight)
    poller = make_poller(node, eight, seven, seven)
    try:
        assert poll_once(poller) is None
        message = poll_once(poller)
        assert message is not None
        p.check_agent_message(message)
        assert message == {"v": 1, "type": "gpus", "gpus": seven.gpus}
        assert GONE not in [g["uuid"] for g in message["gpus"]] and len(message["gpus"]) == 7
        assert node["gpus"] == seven.gpus  # what the next hello carries
        assert poll_once(poller) is None
    finally:
        poller.close()


def test_a_failed_run_keeps_the_last_gpus_and_changes_only_the_reason() -> None:
    two = inventory("nvidia_smi_2x_h100.csv")
    node = node_with(two)
    hung = GpuDetection(reason="nvidia-smi timed out after 5 s (killed)")
    missing = GpuDetection(reason="nvidia-smi not found on PATH")
    poller = make_poller(node, hung, hung, missing, RuntimeError("boom"), two)
    try:
        assert poll_once(poller) == p.gpus_update(two.gpus, hung.reason)
        assert (node["gpus"], node["gpus_reason"]) == (two.gpus, hung.reason)
        assert poll_once(poller) is None
        assert poll_once(poller) == p.gpus_update(two.gpus, missing.reason)
        assert poll_once(poller) == p.gpus_update(
            two.gpus, "GPU detection failed: RuntimeError: boom"
        )
        recovered = poll_once(poller)
        assert recovered == {"v": 1, "type": "gpus", "gpus": two.gpus}  # no reason any more
        assert "gpus_reason" not in node
    finally:
        poller.close()


def test_configured_gpus_are_selected_again_and_a_vanished_one_named() -> None:
    eight, seven = inventory("nvidia_smi_8x_h100.csv"), inventory("nvidia_smi_8x_h100_one_gone.csv")
    configured = [GONE, "GPU-f7e6d5c4-b3a2-4918-0f7e-6d5c4b3a2918"]
    node = node_with(select_gpus(eight, configured))
    assert [g["index"] for g in node["gpus"]] == [5, 6]
    poller = make_poller(node, seven, configured=configured)
    try:
        message = poll_once(poller)
        assert message is not None
        assert [(g["index"], g["uuid"]) for g in message["gpus"]] == [(5, configured[1])]
        assert message["gpus_reason"].startswith(f"configured GPU {GONE} is not on this host")
    finally:
        poller.close()


def test_a_successful_run_teaches_the_device_rules_new_minors_and_forgets_none() -> None:
    cgroups = Cgroups([Hierarchy("/sys/fs/cgroup/devices", 1, ("devices",))], "n.0", 0)
    devices = GpuDevices(cgroups, {"GPU-a": 0})
    two = inventory("nvidia_smi_2x_h100.csv")
    failed = GpuDetection(reason="nvidia-smi exited with 9: 'x'")
    poller = make_poller(node_with(GpuDetection()), failed, two, devices=devices)
    try:
        poll_once(poller)
        assert devices.universe == {0}
        poll_once(poller)
        assert devices.universe == {0, 1}
        assert devices.known[two.gpus[1]["uuid"] or ""] == 1
    finally:
        poller.close()


def test_polling_only_where_gpus_may_be(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    cpu_only = node_with(GpuDetection(reason="nvidia-smi not found on PATH"))
    assert not poll_wanted(30, cpu_only, None)
    assert not poll_wanted(30, cpu_only, [])
    assert poll_wanted(30, cpu_only, [0])
    assert poll_wanted(30, node_with(inventory("nvidia_smi_2x_h100.csv")), None)
    assert not poll_wanted(0, node_with(inventory("nvidia_smi_2x_h100.csv")), [0])
    monkeypatch.setenv("PATH", str(printing(tmp_path, "nvidia_smi_h200.csv")))
    assert poll_wanted(30, cpu_only, None)


# --- the reaped child's status ---------------------------------------------------------------


def test_a_child_reaped_before_its_claim_is_still_handed_over() -> None:
    exits = ChildExits()
    answers: list[bool] = []

    def start() -> int:
        # The loop reaps the child at once, while the spawn still holds the lock.
        reaper = threading.Thread(target=lambda: answers.append(exits.exited(4242, 7 << 8)))
        reaper.start()
        return 4242

    assert exits.spawn(start) == 4242
    assert exits.wait(4242, 15) == 7 << 8
    assert answers == [True]
    assert exits.exited(4243, 0) is False  # not the poll's: the launch server's to judge


def test_a_status_that_comes_too_late_is_dropped() -> None:
    exits = ChildExits()
    exits.spawn(lambda: 99)
    assert exits.wait(99, 0.01) is None
    assert exits.exited(99, 0) is False


class Reaper:
    """Stands in for the agent's loop: reaps each claimed child and hands its status over."""

    def __init__(self) -> None:
        self.exits = ChildExits()
        self.pids: list[int] = []
        spawn = self.exits.spawn

        def claim(start: Callable[[], int]) -> int:
            pid = spawn(start)
            self.pids.append(pid)
            threading.Thread(target=self._reap, args=(pid,), daemon=True).start()
            return pid

        self.exits.spawn = claim  # type: ignore[method-assign]

    def _reap(self, pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        self.exits.exited(pid, status)


def test_a_reaped_run_reads_the_output_and_the_exit_status(tmp_path: Path) -> None:
    reaper = Reaper()
    run = reaped_run(reaper.exits)
    binary = printing(tmp_path / "ok", "nvidia_smi_2x_h100.csv") / "nvidia-smi"
    outcome = run(str(binary), 15)
    assert outcome == (0, (GOLDEN / "nvidia_smi_2x_h100.csv").read_text(), "")
    failing = printing(tmp_path / "bad", "nvidia_smi_driver_failed.txt", 9) / "nvidia-smi"
    code, stdout, _ = run(str(failing), 15)  # type: ignore[misc]
    assert code == 9 and stdout.startswith("NVIDIA-SMI has failed")
    assert run(str(tmp_path / "missing"), 15) == (
        f"nvidia-smi could not start: [Errno 2] No such file or directory: '{tmp_path / 'missing'}'"
    )


def test_a_reaped_run_that_hangs_is_killed_with_all_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    binary = hanging(tmp_path, pidfile) / "nvidia-smi"
    reaper = Reaper()
    began = time.monotonic()
    assert reaped_run(reaper.exits)(str(binary), 0.5) == "nvidia-smi timed out after 0.5 s (killed)"
    assert time.monotonic() - began < 5
    poll_until(lambda: process_gone(reaper.pids[0]), what="the stub to be gone")
    poll_until(lambda: process_gone(int(pidfile.read_text())), what="the stub's child to be killed")


# --- serve options ---------------------------------------------------------------------------


def serve_args(*words: str):
    return agent_main.build_parser().parse_args(["serve", "--state-dir", "/tmp/x", *words])


def test_gpus_option_takes_indices_and_uuids() -> None:
    args = serve_args("--gpus", "0, 1,GPU-aaa,MIG-b.c:d")
    assert args.gpus == [0, 1, "GPU-aaa", "MIG-b.c:d"]
    assert serve_args("--gpus", "").gpus == []
    argv = agent_main.serve_argv(args)
    assert argv[argv.index("--gpus") + 1] == "0,1,GPU-aaa,MIG-b.c:d"
    assert agent_main.build_parser().parse_args(argv).gpus == args.gpus


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0,x", "GPU 'x' is neither an index (0, 1, ...) nor a UUID as nvidia-smi prints it"),
        ("GPU-a b", "GPU 'GPU-a b' is neither an index"),
        ("-1", "GPU '-1' is neither an index"),
        ("70000", "GPU index 70000 is out of range (0 to 65535)"),
        ("0,1,0", "GPU 0 is listed twice"),
        ("GPU-" + "a" * 125, f"GPU 'GPU-{'a' * 125}' is neither an index"),
    ],
)
def test_a_bad_gpus_item_is_a_clear_argparse_error(text: str, error: str, capsys) -> None:
    with pytest.raises(SystemExit):
        serve_args("--gpus", text)
    assert f"argument --gpus: {error}" in capsys.readouterr().err


def test_gpu_poll_period_from_option_env_or_default(monkeypatch, capsys) -> None:
    monkeypatch.delenv(POLL_VAR, raising=False)
    assert serve_args().gpu_poll_s == 30
    assert serve_args("--gpu-poll-s", "0").gpu_poll_s == 0
    monkeypatch.setenv(POLL_VAR, "2.5")
    assert serve_args().gpu_poll_s == 2.5
    assert serve_args("--gpu-poll-s", "7").gpu_poll_s == 7
    argv = agent_main.serve_argv(serve_args())
    assert argv[argv.index("--gpu-poll-s") + 1] == "2.5"
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(SystemExit):
            serve_args("--gpu-poll-s", bad)
        assert f"{bad!r} is not a number of seconds >= 0" in capsys.readouterr().err
