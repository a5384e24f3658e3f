"""``hpcbatch nodes`` shows each node's placement group and MPI launch server where set."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead


def _node(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "computeEnvironment": "local",
        "state": "ONLINE",
        "stateReason": "",
        "vcpus": 2,
        "memoryMiB": 4096,
        "gpus": 0,
        "allocatedVcpus": 0,
        "allocatedMemoryMiB": 0,
        "allocatedGpus": 0,
        "runningJobs": 0,
        "lastHeartbeatAt": None,
        "enforcement": "none",
        **extra,
    }


def _table(stub: StubHead, capsys: pytest.CaptureFixture[str], *nodes: Any) -> list[list[str]]:
    stub.on("GET", "/hpcbatch/v1/nodes", {"nodes": list(nodes)})
    assert main(["nodes", "-e", stub.endpoint]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_group_and_launch_columns_show_where_nodes_have_them(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _table(
        stub,
        capsys,
        _node("n1", address="127.0.0.2", launchPort=40123, placementGroup="rack1"),
        _node("n2"),
    )
    assert rows[0][-3:] == ["GROUP", "LAUNCH", "REASON"]
    assert rows[1][-3:] == ["rack1", "127.0.0.2:40123", "-"]  # "-": no reason
    assert rows[2][-3:] == ["-", "-", "-"]


def test_a_cluster_without_them_keeps_its_narrow_table(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    header = _table(stub, capsys, _node("n1"))[0]
    assert "GROUP" not in header and "LAUNCH" not in header
