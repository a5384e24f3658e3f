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
    )
    ces = (CeConfig("cluster", "SSH", (host,), parse_fabric("efa", "eth1")),)
    remembered = host_memory.configured(ces)
    assert remembered["node2"].profile.placement_group == "g1"
    assert remembered["node2"].profile.fabric_environment  # efa's variables

    store = MemoryStore()
    assert host_memory.load(store) == {}
    host_memory.save(store, remembered)
    assert host_memory.load(store) == remembered
