"""Each configured node's profile (``agents.NodeProfile``): the address other nodes of a gang
reach it at, its placement group, its compute environment's fabric variables.

A LOCAL virtual node ``i`` (0-based) is ``127.0.0.(i+2)``: every address in 127.0.0.0/8 is
this host's loopback, so the nodes share the host yet an MPI hostfile tells them apart and each
rank lands in its own node's allocation (its agent's launch server listens on that address).
127.0.0.1 stays the head's own. An SSH host keeps its configured address (its link's).
"""

from __future__ import annotations

from dataclasses import replace

from hpcbatch.core.ce_capacity import Machine
from hpcbatch.head.agents import NodeProfile
from hpcbatch.head.config import LocalConfig
from hpcbatch.head.hosts import PLACEMENT_GROUP_LABEL, CeConfig
from hpcbatch.transport.ssh import SshHost

HEAD_MACHINE = "head"  # the machine group of the LOCAL nodes (core/shared_capacity.py)
MAX_LOCAL_NODES = 64  # config.local.nodes' bound: 127.0.0.2 .. 127.0.0.65


def local_address(index: int) -> str:
    if not 0 <= index < MAX_LOCAL_NODES:
        raise ValueError(f"a LOCAL node index is 0 to {MAX_LOCAL_NODES - 1} (got {index})")
    return f"127.0.0.{index + 2}"


def machine_profile(machine: Machine) -> NodeProfile:
    """A node on the head's machine, whose jobs share its CPUs and memory with the other
    LOCAL nodes' (core/shared_capacity.py)."""
    return NodeProfile(
        machine=HEAD_MACHINE, machine_cpus=machine.cpus, machine_memory_mib=machine.memory_mib
    )


def local_profiles(local: LocalConfig, machine: Machine | None = None) -> list[NodeProfile]:
    """The embedded ``local`` CE's nodes. Its default one node sized by the machine
    (``[local] nodes = 1``, ``vcpus = 0``) shares the machine with the API-made LOCAL CEs'
    nodes; nodes the admin sized (``vcpus``) or multiplied (``nodes = 2`` makes two nodes of
    the whole machine, say to try MPI gangs) are virtual on purpose and not counted against
    it."""
    alone = local.nodes == 1 and local.vcpus == 0
    shared = machine_profile(machine) if machine is not None and alone else None
    return [
        replace(
            shared or NodeProfile(),
            address=local_address(i),
            placement_group=local.placement_group,
            fabric_environment=local.fabric_environment,
        )
        for i in range(local.nodes)
    ]


def ssh_profile(ce: CeConfig, host: SshHost) -> NodeProfile:
    group = host.labels.get(PLACEMENT_GROUP_LABEL)
    return NodeProfile(None, group, ce.fabric_environment)
