"""The SSH hosts a head remembers come back from its store exactly as they were configured."""

from __future__ import annotations

from pathlib import Path

from hpcbatch.head import host_memory
from hpcbatch.head.hosts import CeConfig
from hpcbatch.mpi.fabric import parse_fabric
from hpcbatch.store import MemoryStore
from hpcbatch.transport.ssh import SshHost


def test_every_field_of_a_remembered_host_survives_the_store(tmp_path: Path) -> None:
    host = SshHost(
        name="node2",
        address="10.0.0.12",
        key=tmp_path / "id_ed25519",
        port=2222,
        user="batch",
        known_hosts=tmp_path / "known_hosts",
        state_dir="/srv/agent",
        python="/usr/bin/python3",
        vcpus=8,
        memory_mib=32000,
        gpus=(0, "GPU-abc"),
        nvidia_smi="/opt/nvidia-smi",
        labels={"placement_group": "g1", "rack": "a"},
        agent_durability="power",
        agent_options=("--slurm", "--slurm-partition", "batch"),
    )
    ces = (CeConfig("cluster", "SSH", (host,), parse_fabric("efa", "eth1")),)
    remembered = host_memory.configured(ces)
    assert remembered["node2"].profile.placement_group == "g1"
    assert remembered["node2"].profile.fabric_environment  # efa's variables

    store = MemoryStore()
    assert host_memory.load(store) == {}
    host_memory.save(store, remembered)
    assert host_memory.load(store) == remembered


KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHDW1AJFgr6kcjfzL/BaSIfMaMQwhlEIPRHJhjuGwR00"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGP6lJQ3yN/Hell35Gn1dg4HQb2XgCxvIIqUVzJYFTAP"


def test_a_retiring_host_is_reached_with_the_key_known_hosts_held_when_it_was_configured(
    tmp_path: Path,
) -> None:
    """Ansible rewrites known_hosts without a host it removes; the head still reaches that
    host, checking the key it trusted before, and no other."""
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.12 {KEY_A}\n[10.0.0.13]:2222 {KEY_B}\n")
    hosts = (
        SshHost(name="n2", address="10.0.0.12", key=tmp_path / "k", known_hosts=known),
        SshHost(name="n3", address="10.0.0.13", port=2222, key=tmp_path / "k", known_hosts=known),
    )
    remembered = host_memory.configured((CeConfig("cluster", "SSH", hosts),))
    assert remembered["n2"].host_keys == (KEY_A,)
    assert remembered["n3"].host_keys == (KEY_B,)
    store = MemoryStore()
    host_memory.save(store, remembered)
    known.write_text("")  # the provisioner took both out of the config and of known_hosts

    again = host_memory.load(store)
    reach = host_memory.reachable(again["n3"], tmp_path / "retiring")
    assert reach.known_hosts == tmp_path / "retiring" / "n3.known_hosts"
    assert reach.known_hosts.read_text() == f"[10.0.0.13]:2222 {KEY_B}\n"
    assert oct(reach.known_hosts.stat().st_mode & 0o777) == "0o600"
    assert not reach.trust_on_first_use
    assert host_memory.known_keys(reach) == (KEY_B,)  # what paramiko will check it against


def test_a_host_with_no_known_key_keeps_its_own_known_hosts(tmp_path: Path) -> None:
    host = SshHost(name="n4", address="10.0.0.14", key=tmp_path / "k", known_hosts=None)
    (remembered,) = host_memory.configured((CeConfig("cluster", "SSH", (host,)),)).values()
    assert remembered.host_keys == ()
    assert host_memory.reachable(remembered, tmp_path / "retiring") == host
