"""GPUs over SSH: 4 real sshd hosts, each with a stub ``nvidia-smi`` (configured with the host
setting ``nvidia_smi``) printing real CSV with its own boards' UUIDs. An array's children get one
board each, never one board twice; a configured GPU the host does not have is not offered, with
the reason in the node's view, and the host's CPUs and other GPUs still serve."""

from __future__ import annotations

from pathlib import Path

from hpcbatch.devcluster import DevCluster, DevHost
from tests.cluster.conftest import start_head
from tests.head.headproc import HeadProcess, wait_for

GPU = [{"type": "GPU", "value": "1"}]


def _uuid(host: int, index: int) -> str:
    return f"GPU-{host:08x}-0000-4000-8000-{index:012x}"


def _stub(directory: Path, host: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i}, {_uuid(host, i)}, NVIDIA H100 80GB HBM3, 81559\n" for i in range(2))
    (directory / "nvidia-smi.csv").write_text(rows)
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat {directory / 'nvidia-smi.csv'}\n")
    script.chmod(0o755)
    return script


def test_array_children_get_one_board_each_across_ssh_hosts(
    cluster: DevCluster, tmp_path: Path
) -> None:
    stubs = {h.name: _stub(tmp_path / "smi" / h.name, i) for i, h in enumerate(cluster.hosts)}
    first = cluster.hosts[0].name

    def host_lines(host: DevHost) -> list[str]:
        lines = [f'nvidia_smi = "{stubs[host.name]}"']
        if host.name == first:
            lines.append("gpus = [0, 7]")  # this host has no GPU 7
        return lines

    head: HeadProcess = start_head(tmp_path, cluster, host_lines=host_lines)
    try:
        _check(head, cluster, tmp_path)
    finally:
        head.cleanup()


def _check(head: HeadProcess, cluster: DevCluster, tmp_path: Path) -> None:
    nodes = {n["name"]: n for n in head.get("/hpcbatch/v1/nodes")["nodes"]}
    first = nodes[cluster.hosts[0].name]
    assert [g["id"] for g in first["gpuDevices"]] == [_uuid(0, 0)]
    assert "configured GPU 7 is not on this host" in first["gpusReason"], first["gpusReason"]
    for i, host in enumerate(cluster.hosts[1:], start=1):
        assert [g["id"] for g in nodes[host.name]["gpuDevices"]] == [_uuid(i, 0), _uuid(i, 1)]
    trail, go = tmp_path / "trail", tmp_path / "go"
    trail.mkdir()
    script = (
        f'echo "$(hostname) $CUDA_VISIBLE_DEVICES" > {trail}/$AWS_BATCH_JOB_ARRAY_INDEX; '
        f"until [ -e {go} ]; do sleep 0.05; done"
    )
    parent = head.batch().submit_job(
        jobName="gpus",
        jobQueue="cluster",
        jobDefinition="default",
        arrayProperties={"size": 7},
        containerOverrides={"command": ["sh", "-c", script], "resourceRequirements": GPU},
    )["jobId"]
    # 7 boards in all (1 + 2 + 2 + 2): every child runs at once, each on a board of its own
    wait_for(lambda: len(list(trail.iterdir())) == 7, 60, "all 7 children running")
    seen = [(trail / str(i)).read_text().split() for i in range(7)]
    boards = [board for _, board in seen]
    assert sorted(boards) == sorted(
        [_uuid(0, 0)] + [_uuid(h, i) for h in range(1, 4) for i in range(2)]
    )
    by_host = {h.name: i for i, h in enumerate(cluster.hosts)}
    for hostname, board in seen:  # each board is one of the host it ran on (its UTS name)
        assert board.startswith(f"GPU-{by_host[hostname]:08x}-"), (hostname, board)
    go.touch()
    done = head.wait_status(parent, "SUCCEEDED", "FAILED", timeout=60)
    assert done["status"] == "SUCCEEDED", done
