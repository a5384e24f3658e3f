"""Capacity detection: golden nvidia-smi parsing, meminfo, overrides (cgroups: test_cgroups)."""

from __future__ import annotations

import os
from pathlib import Path

from hpcbatch_agent.capacity import (
    detect_node,
    parse_meminfo,
    parse_nvidia_smi,
    select_gpus,
)

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


def test_gpu_override_wins_and_keeps_detected_details() -> None:
    detected = parse_nvidia_smi((GOLDEN / "nvidia_smi_query_gpu.csv").read_text())
    assert [g["index"] for g in select_gpus(detected, [2, 3])] == [2, 3]
    assert select_gpus(detected, [2])[0]["name"] == "Tesla V100-SXM2-32GB"
    assert select_gpus(None, [5]) == [{"index": 5, "uuid": None, "name": None, "memory_mib": None}]
    assert select_gpus(None, None) == []
    assert select_gpus(detected, None) == detected


def test_detect_node_defaults_and_overrides() -> None:
    node = detect_node("n1")
    assert node["vcpus"] == len(os.sched_getaffinity(0))
    assert node["memory_mib"] == parse_meminfo(Path("/proc/meminfo").read_text())
    assert (node["cgroups"], node["enforced"]) == ("none", [])
    node = detect_node("n2", vcpus=3, memory_mib=1234, gpus=[0, 1], cgroups="v1", enforced=["pids"])
    assert (node["name"], node["vcpus"], node["memory_mib"]) == ("n2", 3, 1234)
    assert (node["cgroups"], node["enforced"]) == ("v1", ["pids"])
    assert [g["index"] for g in node["gpus"]] == [0, 1]
