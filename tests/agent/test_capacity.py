"""Capacity detection: golden nvidia-smi parsing, meminfo, overrides, which configured GPUs a
node offers (select_gpus) and why some are missing (cgroups: test_cgroups)."""

from __future__ import annotations

import os
from pathlib import Path

from hpcbatch_agent.capacity import (
    detect_node,
    parse_meminfo,
    parse_nvidia_smi,
    select_gpus,
)
from hpcbatch_agent.gpudevices import GpuIsolation
from hpcbatch_agent.gpus import GpuDetection
from hpcbatch_agent.protocol import gpu_id

GOLDEN = Path(__file__).parent / "golden"


def test_parse_nvidia_smi_golden() -> None:
    gpus = parse_nvidia_smi((GOLDEN / "nvidia_smi_query_gpu.csv").read_text())
    assert gpus == [
        {
            "index": 0,
            "uuid": "GPU-5c3d2a8e-1f4b-7a90-3c2e-8d9f0a1b2c3d",
            "name": "NVIDIA H100 80GB HBM3",
            "memory_mib": 81559,
        },
        {
            "index": 1,
            "uuid": "GPU-9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4",
            "name": "NVIDIA H100 80GB HBM3",
            "memory_mib": 81559,
        },
        {
            "index": 2,
            "uuid": "GPU-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
            "name": "Tesla V100-SXM2-32GB",
            "memory_mib": 32768,
        },
        {"index": 3, "uuid": None, "name": "NVIDIA A100-SXM4-40GB", "memory_mib": None},
    ]


def test_parse_nvidia_smi_empty_output_means_no_gpus() -> None:
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("\n") == []


def test_parse_meminfo() -> None:
    text = "MemTotal:       24683880 kB\nMemFree:        24291284 kB\n"
    assert parse_meminfo(text) == 24683880 // 1024


def inventory(name: str = "nvidia_smi_query_gpu.csv") -> GpuDetection:
    return GpuDetection(parse_nvidia_smi((GOLDEN / name).read_text()))


UUID_1 = "GPU-9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4"
UUID_2 = "GPU-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
LISTING = f"nvidia-smi lists 0 GPU-5c3d2a8e-1f4b-7a90-3c2e-8d9f0a1b2c3d, 1 {UUID_1}, 2 {UUID_2}, 3"


def test_not_configured_offers_everything_nvidia_smi_lists() -> None:
    detected = inventory()
    assert select_gpus(detected, None) == detected
    failed = GpuDetection(reason="nvidia-smi not found on PATH")
    assert select_gpus(failed, None) == failed


def test_configured_indices_pick_boards_and_nvidia_smi_fills_in() -> None:
    offered = select_gpus(inventory(), [2, 3])
    assert [(g["index"], g["uuid"]) for g in offered.gpus] == [(2, UUID_2), (3, None)]
    assert offered.gpus[0]["name"] == "Tesla V100-SXM2-32GB"
    assert offered.reason is None


def test_configured_uuids_pick_boards_by_uuid_in_the_configured_order() -> None:
    offered = select_gpus(inventory(), [UUID_2, UUID_1])
    assert [(g["index"], g["uuid"]) for g in offered.gpus] == [(2, UUID_2), (1, UUID_1)]
    assert offered.reason is None
    mixed = select_gpus(inventory(), [0, UUID_2])
    assert [g["index"] for g in mixed.gpus] == [0, 2]


def test_a_configured_gpu_nvidia_smi_does_not_list_is_not_offered_and_named() -> None:
    offered = select_gpus(inventory(), [1, 7, "GPU-aaa"])
    assert [g["uuid"] for g in offered.gpus] == [UUID_1]
    assert offered.reason == (
        f"configured GPU 7 is not on this host ({LISTING}); "
        f"configured GPU GPU-aaa is not on this host ({LISTING})"
    )
    one = GpuDetection([{"index": 0, "uuid": "GPU-aaa", "name": None, "memory_mib": None}])
    assert select_gpus(one, [3]).reason == (
        "configured GPU 3 is not on this host (nvidia-smi lists 0 GPU-aaa)"
    )
    none = select_gpus(GpuDetection([]), [0])
    assert (none.gpus, none.reason) == (
        [],
        "configured GPU 0 is not on this host (nvidia-smi lists no GPUs)",
    )


def test_one_board_configured_twice_is_offered_once() -> None:
    offered = select_gpus(inventory(), [1, UUID_1])
    assert [g["uuid"] for g in offered.gpus] == [UUID_1]
    assert offered.reason == f"configured GPU {UUID_1} is GPU 1 again: offered once"


def test_without_an_inventory_the_configured_gpus_are_offered_as_given() -> None:
    failed = GpuDetection(reason="nvidia-smi timed out after 5 s (killed)")
    offered = select_gpus(failed, [5, "GPU-aaa", "GPU-bbb"])
    assert offered.gpus == [
        {"index": 5, "uuid": None, "name": None, "memory_mib": None},
        {"index": 1, "uuid": "GPU-aaa", "name": None, "memory_mib": None},
        {"index": 2, "uuid": "GPU-bbb", "name": None, "memory_mib": None},
    ]
    assert offered.reason == "nvidia-smi timed out after 5 s (killed)"
    assert [gpu_id(g) for g in offered.gpus] == ["5", "GPU-aaa", "GPU-bbb"]
    assert select_gpus(failed, []) == GpuDetection([], failed.reason)


def test_detect_node_defaults_and_overrides(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no GPUs, and why
    node = detect_node("n1")
    assert node["vcpus"] == len(os.sched_getaffinity(0))
    assert node["memory_mib"] == parse_meminfo(Path("/proc/meminfo").read_text())
    assert (node["cgroups"], node["enforced"]) == ("none", [])
    assert (node["gpus"], node["gpus_reason"]) == ([], "nvidia-smi not found on PATH")
    assert (node["gpu_isolation"], "gpu_isolation_reason" in node) == ("env", False)
    node = detect_node(
        "n2",
        vcpus=3,
        memory_mib=1234,
        gpus=select_gpus(inventory(), [0, 1]),
        cgroups="v1",
        enforced=["pids"],
        isolation=GpuIsolation("devices"),
    )
    assert (node["name"], node["vcpus"], node["memory_mib"]) == ("n2", 3, 1234)
    assert (node["cgroups"], node["enforced"]) == ("v1", ["pids"])
    assert [g["index"] for g in node["gpus"]] == [0, 1]
    assert (node["gpu_isolation"], "gpus_reason" in node) == ("devices", False)
    node = detect_node("n3", gpus=GpuDetection(), isolation=GpuIsolation("env", "why"))
    assert (node["gpu_isolation"], node["gpu_isolation_reason"]) == ("env", "why")
