"""``hpcbatch nodes`` lists every GPU: free, in use by which job, or out of service and why, and
how each node keeps jobs to their own GPUs."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead
from tests.cli.test_nodes_gang_columns import _node

A = "GPU-16794395-1c2a-4f5e-9a0b-3d2e1f0a9b8c"
B = "GPU-8c4a2b1d-7e6f-4a3b-8c9d-0e1f2a3b4c5d"


def _gpu(index: int, gpu_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "index": index,
        "id": gpu_id,
        "model": "NVIDIA H200",
        "memoryMiB": 143771,
        "status": status,
        **extra,
    }


def _out(stub: StubHead, capsys: pytest.CaptureFixture[str], *nodes: Any) -> str:
    stub.on("GET", "/hpcbatch/v1/nodes", {"nodes": list(nodes)})
    assert main(["nodes", "-e", stub.endpoint]) == 0
    return capsys.readouterr().out


def test_each_gpu_is_listed_with_its_holder_or_why_it_is_out_of_service(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    gpus = [
        _gpu(0, A, "IN_USE", jobId="job-1", attemptId="job-1/1"),
        _gpu(1, B, "OUT_OF_SERVICE", reason=f"{B} (index 1) is no longer listed by nvidia-smi"),
    ]
    node = _node(
        "gpu-1",
        gpus=2,
        allocatedGpus=1,
        gpuDevices=gpus,
        gpuIsolation="env",
        gpuIsolationReason="cgroup v2: no eBPF device filter yet",
    )
    out = _out(stub, capsys, node, _node("cpu-1"))
    table, gpu_table = out.split("\n\n")
    header, gpu_row, cpu_row = (line.split() for line in table.splitlines())
    assert header[-3:-1] == ["GPU", "ISOLATION"]  # "GPU ISOLATION", before REASON
    assert gpu_row[-2] == "env" and cpu_row[-2] == "-"  # the last is REASON
    lines = gpu_table.splitlines()
    assert lines[0].split() == [
        "NODE",
        "GPU",
        "ID",
        "MODEL",
        "MEM",
        "MiB",
        "STATUS",
        "JOB",
        "/",
        "REASON",
    ]
    assert lines[1].split() == ["gpu-1", "0", A, "NVIDIA", "H200", "143771", "IN_USE", "job-1"]
    assert lines[2].split()[:7] == ["gpu-1", "1", B, "NVIDIA", "H200", "143771", "OUT_OF_SERVICE"]
    assert lines[2].endswith("is no longer listed by nvidia-smi")
    assert lines[3] == "gpu-1: cgroup v2: no eBPF device filter yet"


def test_a_cluster_without_gpus_keeps_its_narrow_table(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _out(stub, capsys, _node("cpu-1"))
    assert "ISOLATION" not in out and "\n\n" not in out.strip()


def test_a_node_whose_nvidia_smi_failed_says_why(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    node = _node("gpu-1", gpusReason="nvidia-smi timed out after 5 s (killed)")
    out = _out(stub, capsys, node)
    assert out.rstrip().endswith("no GPUs\ngpu-1: nvidia-smi timed out after 5 s (killed)")
