"""A real head's nodes route and ``hpcbatch nodes`` show each LOCAL virtual node's address,
its agent's MPI launch port and the placement group the config gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
GROUP = 'placement_group = "rack1"\n'  # appended to the [local] table


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=1, memory=1024, extra_config=GROUP)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _nodes(head: HeadProcess, *flags: str) -> str:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    argv = [HPCBATCH, "nodes", *flags]
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=30, check=True
    ).stdout


def test_nodes_show_placement_group_address_and_launch_port(head: HeadProcess) -> None:
    def launching() -> list[dict[str, Any]] | None:
        nodes: list[dict[str, Any]] = json.loads(_nodes(head, "-o", "json"))["nodes"]
        return nodes if len(nodes) == 2 and all("launchPort" in n for n in nodes) else None

    nodes = wait_for(launching, 20, "both agents' launch ports in the nodes route")
    assert [n["placementGroup"] for n in nodes] == ["rack1", "rack1"]
    assert sorted(n["address"] for n in nodes) == ["127.0.0.2", "127.0.0.3"]
    assert all(isinstance(n["launchPort"], int) and n["launchPort"] > 0 for n in nodes)
    table = _nodes(head).splitlines()
    assert table[0].split()[-3:] == ["GROUP", "LAUNCH", "REASON"]
    for node in nodes:
        (row,) = [line.split() for line in table[1:] if line.startswith(node["name"] + " ")]
        group = row.index("rack1")  # the REASON after it may have several words
        assert row[group + 1] == f"{node['address']}:{node['launchPort']}", row
