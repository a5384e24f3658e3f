"""nvidia-smi: golden outputs through the parser, and detection through stub binaries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agent_harness import poll_until, process_gone
from gpu_stubs import GOLDEN, hanging, path_with, printing, stub_nvidia_smi
from hpcbatch_agent import protocol as p
from hpcbatch_agent.gpus import NvidiaSmiError, detect_gpus, parse_nvidia_smi


def golden(name: str) -> str:
    return (GOLDEN / name).read_bytes().decode(errors="replace")


def test_one_h200_as_the_testbed_prints_it() -> None:
    assert parse_nvidia_smi(golden("nvidia_smi_h200.csv")) == [
        {
            "index": 0,
            "uuid": "GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24",
            "name": "NVIDIA H200",
            "memory_mib": 143771,
        }
    ]


def test_eight_gpus_keep_their_order_and_distinct_uuids() -> None:
    gpus = parse_nvidia_smi(golden("nvidia_smi_8x_h100.csv"))
    assert [g["index"] for g in gpus] == list(range(8))
    assert len({g["uuid"] for g in gpus}) == 8
    assert all(g["uuid"].startswith("GPU-") for g in gpus)  # type: ignore[union-attr]
    assert {(g["name"], g["memory_mib"]) for g in gpus} == {("NVIDIA H100 80GB HBM3", 81559)}


def test_a_mig_enabled_board_is_one_whole_gpu() -> None:
    gpus = parse_nvidia_smi(golden("nvidia_smi_mig_a100.csv"))
    assert [(g["index"], g["name"], g["memory_mib"]) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-40GB", 40960),
        (1, "NVIDIA A100-SXM4-40GB", 40960),
    ]


def test_a_board_gone_from_the_bus_is_missing_and_the_rest_keep_their_uuids() -> None:
    before = parse_nvidia_smi(golden("nvidia_smi_8x_h100.csv"))
    after = parse_nvidia_smi(golden("nvidia_smi_8x_h100_one_gone.csv"))
    assert [g["index"] for g in after] == list(range(7))  # indices close up: ids are UUIDs
    assert [g["uuid"] for g in after] == [g["uuid"] for g in before if g["index"] != 5]


def test_fields_a_board_does_not_report_are_none() -> None:
    assert parse_nvidia_smi(golden("nvidia_smi_not_supported.csv")) == [
        {
            "index": 0,
            "uuid": "GPU-2e7c1a9f-5b3d-4f60-8a2e-c1d9b7f3e5a0",
            "name": "NVIDIA GeForce GT 710",
            "memory_mib": None,
        },
        {"index": 1, "uuid": None, "name": "Tesla K80", "memory_mib": 11441},
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (golden("nvidia_smi_driver_failed.txt"), "line 1: expected 4 comma-separated fields"),
        (golden("nvidia_smi_with_header.txt"), "line 1: index 'index' is not an integer"),
        (golden("nvidia_smi_garbage.txt"), "line 1: contains a NUL byte"),
        ("0, GPU-a, H200, 80 GiB\n", "line 1: memory.total '80 GiB' is not a number of MiB"),
        ("0, GPU-a, H200, -5\n", "line 1: memory.total '-5' is out of range"),
        ("0, GPU-a, H200, 1\n-1, GPU-b, H200, 1\n", "line 2: index '-1' is not an integer"),
        ("0, GPU-a, H200, 1\n0, GPU-b, H200, 1\n", "lists index 0 more than once"),
        ("0, GPU-a, H200, 1\n1, GPU-a, H200, 1\n", "lists uuid GPU-a more than once"),
        ("0, GPU-a, H200, 1, extra\n", "expected 4 comma-separated fields"),
        ("0, GPU a, H200, 1\n", "line 1: uuid 'GPU a' is not 1 to 128 characters of A-Z"),
    ],
)
def test_garbage_gets_a_reason_naming_line_field_and_rule(text: str, reason: str) -> None:
    with pytest.raises(NvidiaSmiError, match=reason.replace("(", r"\(")):
        parse_nvidia_smi(text)


def test_the_query_with_units_still_parses() -> None:
    text = "0, GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24, NVIDIA H200, 143771 MiB\n"
    assert parse_nvidia_smi(text)[0]["memory_mib"] == 143771


def test_detect_reads_the_nvidia_smi_on_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with(printing(tmp_path, "nvidia_smi_8x_h100.csv")))
    detection = detect_gpus()
    assert (len(detection.gpus), detection.reason) == (8, None)


def test_detect_without_nvidia_smi_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus().reason == "nvidia-smi not found on PATH"
    assert detect_gpus().gpus == []


def test_detect_reports_a_failing_nvidia_smi_by_its_exit_and_words(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", path_with(printing(tmp_path, "nvidia_smi_driver_failed.txt", 9)))
    detection = detect_gpus()
    assert detection.gpus == []
    assert detection.reason is not None
    assert detection.reason.startswith('nvidia-smi exited with 9: "NVIDIA-SMI has failed')


def test_detect_reports_garbage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with(printing(tmp_path, "nvidia_smi_garbage.txt")))
    detection = detect_gpus()
    assert detection.gpus == []
    assert detection.reason == (
        "nvidia-smi output not understood: nvidia-smi line 1: contains a NUL byte: "
        + repr("\x1b[31m???\x00\ufffd garbage, , ,")
    )


def test_detect_times_out_a_hanging_nvidia_smi_and_ends_all_it_started(
    tmp_path: Path, monkeypatch
) -> None:
    pidfile = tmp_path / "sleep.pid"
    monkeypatch.setenv("PATH", path_with(hanging(tmp_path, pidfile)))
    began = time.monotonic()
    detection = detect_gpus(timeout_s=0.5)
    assert time.monotonic() - began < 3
    assert (detection.gpus, detection.reason) == ([], "nvidia-smi timed out after 0.5 s (killed)")
    sleeper = int(pidfile.read_text())
    poll_until(lambda: process_gone(sleeper), what="the stub's child to be killed")


def test_detect_an_nvidia_smi_that_cannot_start(tmp_path: Path, monkeypatch) -> None:
    bin_dir = stub_nvidia_smi(tmp_path, "")
    (bin_dir / "nvidia-smi").write_bytes(b"#!/nonexistent/interpreter\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    reason = detect_gpus().reason
    assert reason is not None and reason.startswith("nvidia-smi could not start:")


def test_the_hello_checks_gpus_reason_is_text() -> None:
    node: dict = {
        "name": "n1",
        "vcpus": 1,
        "memory_mib": 1,
        "gpus": [],
        "cgroups": "none",
        "hostname": "h",
    }
    p.check_agent_message(p.agent_hello({**node, "gpus_reason": "nvidia-smi not found"}, []))
    with pytest.raises(p.MessageError, match="hello.node has a bad 'gpus_reason': 5"):
        p.check_agent_message(p.agent_hello({**node, "gpus_reason": 5}, []))
