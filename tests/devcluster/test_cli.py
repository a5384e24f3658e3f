"""``hpcbatch dev-cluster up/status/down`` through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from hpcbatch.cli.commands.devcluster import DEFAULT_DISK_MIB
from hpcbatch.devcluster import DevCluster, disks

from .conftest import Clusters

HPCBATCH = Path(sys.executable).parent / "hpcbatch"


def hpcbatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HPCBATCH_DEVCLUSTER_DIR"}
    return subprocess.run(
        [str(HPCBATCH), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_up_status_down(clusters: Clusters) -> None:
    base_dir = clusters.root / "cli"
    clusters.made.append((base_dir, None))  # the finalizer takes it down if a step fails

    up = hpcbatch("dev-cluster", "up", "--hosts", "2", "--dir", str(base_dir))
    assert up.returncode == 0, up.stderr
    cluster = DevCluster.load(base_dir)
    assert cluster.prefix in up.stdout and cluster.hosts[1].address in up.stdout
    snippet = (base_dir / "head-ce.toml").read_text()
    assert snippet == cluster.head_config() and snippet in up.stdout
    hosts = tomllib.loads(snippet)["compute_environments"][0]["hosts"]
    assert [h["name"] for h in hosts] == [h.name for h in cluster.hosts]

    again = hpcbatch("dev-cluster", "up", "--dir", str(base_dir))
    assert again.returncode == 1 and "dev-cluster down" in again.stderr

    status = hpcbatch("dev-cluster", "status", "--dir", str(base_dir))
    assert status.returncode == 0, status.stderr
    for host in cluster.hosts:
        assert host.name in status.stdout and host.address in status.stdout
    assert "DISK" in status.stdout and status.stdout.count(" own") == 2
    as_json = hpcbatch("-o", "json", "dev-cluster", "status", "--dir", str(base_dir))
    hosts_json = json.loads(as_json.stdout)["hosts"]
    assert all(h["alive"] and h["reachable"] and h["disk"] == "own" for h in hosts_json)

    down = hpcbatch("dev-cluster", "down", "--dir", str(base_dir))
    assert down.returncode == 0, down.stderr
    assert not base_dir.exists()
    assert hpcbatch("dev-cluster", "down", "--dir", str(base_dir)).returncode == 0
    missing = hpcbatch("dev-cluster", "status", "--dir", str(base_dir))
    assert missing.returncode == 1 and "no dev cluster" in missing.stderr


def test_disk_size_option(clusters: Clusters, tmp_path: Path) -> None:
    assert DEFAULT_DISK_MIB == disks.DEFAULT_MIB  # the CLI's copy of the default
    bad = hpcbatch("dev-cluster", "up", "--disk-mib", "10", "--dir", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "disk_mib must be 0" in bad.stderr
    assert not (tmp_path / "bad").exists()
    base_dir = clusters.root / "nodisk"
    clusters.made.append((base_dir, None))
    up = hpcbatch("dev-cluster", "up", "--hosts", "1", "--disk-mib", "0", "--dir", str(base_dir))
    assert up.returncode == 0, up.stderr
    status = hpcbatch("-o", "json", "dev-cluster", "status", "--dir", str(base_dir))
    assert [h["disk"] for h in json.loads(status.stdout)["hosts"]] == ["none"]
    assert hpcbatch("dev-cluster", "down", "--dir", str(base_dir)).returncode == 0


def test_a_bad_prefix_is_refused(tmp_path: Path) -> None:
    result = hpcbatch("dev-cluster", "up", "--prefix", "NO", "--dir", str(tmp_path / "x"))
    assert result.returncode == 1
    assert "prefix" in result.stderr
