"""Four real hosts (namespaces + sshd), reached the way the head reaches them: paramiko, the
cluster's key, host keys verified against its known_hosts."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import paramiko
import pytest

from hpcbatch.devcluster import DevCluster, DevClusterError

from .conftest import SshFactory, ssh_run

CONNECT = (
    "import socket, sys\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))\n"
    "print(s.recv(64).decode().strip())\n"
)


def test_up_records_every_host(cluster: DevCluster) -> None:
    assert len(cluster.hosts) == 4
    assert len({h.address for h in cluster.hosts}) == 4
    assert [h.name for h in cluster.hosts] == [f"{cluster.prefix}-h{i}" for i in range(1, 5)]
    assert oct(cluster.key_path.stat().st_mode & 0o777) == "0o600"
    for host in cluster.hosts:
        assert host.agent_state_dir == cluster.base_dir / "hosts" / host.name / "disk" / "agent"
        assert host.agent_state_dir.is_dir()
    assert DevCluster.load(cluster.base_dir).hosts == cluster.hosts
    assert all(s["alive"] and s["reachable"] and s["link"] == "up" for s in cluster.status())


def test_each_host_keeps_its_state_on_a_disk_of_its_own(cluster: DevCluster) -> None:
    assert cluster.descriptor.disk_problem is None, cluster.descriptor.disk_problem
    devices = {os.stat(h.agent_state_dir).st_dev for h in cluster.hosts}
    assert len(devices) == 4  # four filesystems...
    assert os.stat(cluster.base_dir).st_dev not in devices  # ...none of them the cluster dir's
    for host in cluster.hosts:
        usage = os.statvfs(host.agent_state_dir)
        assert usage.f_blocks * usage.f_frsize > 1024 * 1024 * 1024  # the 2 GiB default
        image = host.host_dir / "disk.img"
        assert os.stat(image).st_blocks * 512 < 256 * 1024 * 1024  # sparse: only what is used
    assert {s["disk"] for s in cluster.status()} == {"own"}


def test_each_host_answers_ssh_as_itself_with_no_way_out(
    cluster: DevCluster, ssh: SshFactory
) -> None:
    for host in cluster.hosts:
        client = ssh(host)
        assert ssh_run(client, "hostname") == (0, host.name + "\n")
        status, routes = ssh_run(client, "ip route")
        assert status == 0 and host.address in routes
        assert "default" not in routes
        # The job's view keeps cgroups (nsenter, not `ip netns exec`).
        assert ssh_run(client, "test -d /sys/fs/cgroup && ls /sys/fs/cgroup | head -1")[0] == 0


def test_bashrc_is_hidden_inside_the_hosts_only(cluster: DevCluster, ssh: SshFactory) -> None:
    bashrc = Path("/root/.bashrc")
    if not bashrc.exists():
        pytest.skip("this machine has no /root/.bashrc to hide")
    before = bashrc.stat().st_size
    client = ssh(cluster.hosts[0])
    assert ssh_run(client, "stat -c %s /root/.bashrc") == (0, "0\n")
    assert bashrc.stat().st_size == before  # the real file, untouched
    mounts = Path("/proc/self/mountinfo").read_text().split("\n")
    assert not [line for line in mounts if " /root/.bashrc " in line]  # nothing leaked here


def test_an_unknown_host_key_is_rejected(cluster: DevCluster, tmp_path: Path) -> None:
    host = cluster.hosts[0]
    client = paramiko.SSHClient()
    (tmp_path / "known_hosts").write_text("")
    client.load_host_keys(str(tmp_path / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException):
        client.connect(
            host.address,
            username=host.user,
            key_filename=str(host.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def test_a_host_reaches_another_hosts_ssh_port(cluster: DevCluster) -> None:
    first, second = cluster.hosts[0], cluster.hosts[1]
    result = cluster.run(first.name, [sys.executable, "-c", CONNECT, second.address, "22", "5"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SSH-2.0-")


def test_nothing_leaves_the_machine(cluster: DevCluster) -> None:
    result = cluster.run(cluster.hosts[0].name, ["ip", "route"])
    assert result.returncode == 0 and "default" not in result.stdout
    outside = cluster.run(
        cluster.hosts[0].name, [sys.executable, "-c", CONNECT, "192.0.2.1", "22", "2"]
    )
    assert outside.returncode != 0
    assert "unreachable" in outside.stderr.lower()


def test_link_down_cuts_a_host_off_and_link_up_brings_it_back(cluster: DevCluster) -> None:
    first, lost = cluster.hosts[0], cluster.hosts[2]
    cluster.link_down(lost.name)
    try:
        by_name = {s["name"]: s for s in cluster.status()}
        assert by_name[lost.name]["alive"] and by_name[lost.name]["link"] == "down"
        assert not by_name[lost.name]["reachable"]
        assert by_name[first.name]["reachable"]
        probe = [sys.executable, "-c", CONNECT, lost.address, "22", "0.5"]
        assert cluster.run(first.name, probe).returncode != 0
    finally:
        cluster.link_up(lost.name)
    deadline = time.monotonic() + 10
    while not {s["name"]: s for s in cluster.status()}[lost.name]["reachable"]:
        assert time.monotonic() < deadline, "the host did not come back after link_up"
    assert cluster.run(first.name, probe).returncode == 0


def test_unknown_hosts_are_named_in_the_error(cluster: DevCluster) -> None:
    with pytest.raises(DevClusterError, match="no host 'nope'"):
        cluster.link_down("nope")


def test_sshd_pids_are_the_sshds_themselves(cluster: DevCluster) -> None:
    for host in cluster.hosts:
        assert host.sshd_pid is not None
        cmdline = Path(f"/proc/{host.sshd_pid}/cmdline").read_bytes().decode()
        assert "sshd" in cmdline and str(host.name) in cmdline
        assert os.readlink(f"/proc/{host.sshd_pid}/ns/net") != os.readlink("/proc/self/ns/net")
