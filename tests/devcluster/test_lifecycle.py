"""Clusters coming and going: two at once, refusals, ``down`` leaving nothing behind, and a
failed ``up`` rolling back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hpcbatch.devcluster import DevCluster, DevClusterError, disks, processes, sshd

from .conftest import Clusters, SshFactory, fresh_prefix, require_root, ssh_run


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}


def owned(prefix: str, names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(prefix + "-")}


def assert_gone(cluster: DevCluster, pids: list[int]) -> None:
    assert disks.mounts_under(cluster.base_dir) == []
    assert owned(cluster.prefix, namespaces()) == set()
    assert owned(cluster.prefix, links()) == set()
    assert [pid for pid in pids if processes.is_alive(pid)] == []
    assert not cluster.base_dir.exists()


def test_two_clusters_at_once_do_not_collide(clusters: Clusters, ssh: SshFactory) -> None:
    a = clusters.up("a", hosts=2)
    b = clusters.up("b", hosts=2)
    assert a.prefix != b.prefix and a.subnet != b.subnet
    assert not {h.address for h in a.hosts} & {h.address for h in b.hosts}
    assert owned(a.prefix, namespaces()) == {h.namespace for h in a.hosts}
    assert owned(b.prefix, namespaces()) == {h.namespace for h in b.hosts}
    for host in (*a.hosts, *b.hosts):
        assert ssh_run(ssh(host), "hostname") == (0, host.name + "\n")
    a.down()
    assert all(s["alive"] and s["reachable"] for s in b.status())  # b untouched by a's down


def test_a_prefix_in_use_is_refused_without_harming_its_owner(clusters: Clusters) -> None:
    first = clusters.up("first", hosts=1, prefix=fresh_prefix())
    with pytest.raises(DevClusterError, match="in use"):
        clusters.up("second", hosts=1, prefix=first.prefix)
    assert all(s["alive"] and s["reachable"] for s in first.status())
    assert not (clusters.root / "second").exists()


def test_up_into_a_dir_that_holds_a_cluster_is_refused(clusters: Clusters) -> None:
    cluster = clusters.up("one", hosts=1)
    with pytest.raises(DevClusterError, match="already holds a dev cluster.*down"):
        DevCluster.up(cluster.base_dir, hosts=1)
    assert all(s["alive"] and s["reachable"] for s in cluster.status())


def test_down_leaves_nothing_and_can_be_repeated(clusters: Clusters, ssh: SshFactory) -> None:
    cluster = clusters.up("gone", hosts=2)
    assert len(disks.mounts_under(cluster.base_dir)) == 2  # each host's disk
    pids = [h.sshd_pid for h in cluster.hosts if h.sshd_pid is not None]
    client = ssh(cluster.hosts[0])  # an open session: a process in the namespace
    # ...with a file open on its host's disk: down must still unmount it
    state_dir = cluster.hosts[0].agent_state_dir
    hold_open = f"echo busy > {state_dir}/f && (sleep 600 < {state_dir}/f > /dev/null 2>&1 &)"
    assert ssh_run(client, hold_open)[0] == 0
    cluster.down()
    assert_gone(cluster, pids)
    cluster.down()
    assert_gone(cluster, pids)


def break_sshd_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every sshd exit at start-up, after the network and the keys are made."""
    real = sshd.sshd_config
    monkeypatch.setattr(sshd, "sshd_config", lambda *a: real(*a) + "BogusOption yes\n")


def test_a_failing_up_rolls_back_everything(
    clusters: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_sshd_config(monkeypatch)
    prefix = fresh_prefix()
    with pytest.raises(DevClusterError, match="sshd of .* exited .*Bogus"):
        clusters.up("broken", hosts=2, prefix=prefix)
    assert owned(prefix, namespaces()) == set()
    assert owned(prefix, links()) == set()
    assert not (clusters.root / "broken").exists()


def test_down_removes_a_half_built_cluster(
    clusters: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if ``up`` had been killed midway: the network is made, an sshd never came up, and
    nothing rolled back."""
    break_sshd_config(monkeypatch)
    monkeypatch.setattr(DevCluster, "_roll_back", lambda self: None)
    prefix = fresh_prefix()
    with pytest.raises(DevClusterError):
        clusters.up("half", hosts=2, prefix=prefix)
    assert len(owned(prefix, namespaces())) == 2
    left = DevCluster.load(clusters.root / "half")
    assert left.descriptor.state == "building"
    left.down()
    assert_gone(left, [])


def test_hosts_without_a_disk_of_their_own(clusters: Clusters) -> None:
    cluster = clusters.up("plain", hosts=1, disk_mib=0)
    (host,) = cluster.hosts
    assert host.agent_state_dir == host.host_dir / "agent"
    assert os.stat(host.agent_state_dir).st_dev == os.stat(cluster.base_dir).st_dev
    assert disks.mounts_under(cluster.base_dir) == []
    assert [s["disk"] for s in cluster.status()] == ["none"]


def test_a_machine_that_cannot_make_disks_gets_hosts_without_and_says_why(
    clusters: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disks, "MKFS", "mkfs.no-such-filesystem")
    cluster = clusters.up("nodisk", hosts=2)
    assert cluster.descriptor.disk_problem is not None
    assert "mkfs.no-such-filesystem not found" in cluster.descriptor.disk_problem
    assert DevCluster.load(cluster.base_dir).descriptor.disk_problem == (
        cluster.descriptor.disk_problem
    )
    for host in cluster.hosts:
        assert host.agent_state_dir == host.host_dir / "agent" and host.agent_state_dir.is_dir()
        assert not (host.host_dir / "disk.img").exists()
    assert [s["disk"] for s in cluster.status()] == ["none", "none"]


def test_a_bad_disk_size_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(DevClusterError, match="disk_mib must be 0 .* or at least 64, not 10"):
        DevCluster.up(tmp_path / "c", hosts=1, disk_mib=10)
    assert not (tmp_path / "c").exists()


def test_up_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DevClusterError, match="needs root"):
        DevCluster.up(tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_load_without_a_cluster_says_how_to_make_one(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(DevClusterError, match="dev-cluster up"):
        DevCluster.load(tmp_path)
