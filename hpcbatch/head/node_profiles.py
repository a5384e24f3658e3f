"""Each configured node's profile (``agents.NodeProfile``): the address other nodes of a gang
reach it at, its placement group, its compute environment's fabric variables.

A LOCAL virtual node ``i`` (0-based) is ``127.0.0.(i+2)``: every address in 127.0.0.0/8 is
this host's loopback, so the nodes share the host yet an MPI hostfile tells them apart and each
rank lands in its own node's allocation (its agent's launch server listens on that address).
127.0.0.1 stays the head's own. An SSH host keeps its configured address (its link's).
"""

from __future__ import annotations

from hpcbatch.head.agents import NodeProfile
from hpcbatch.head.config import LocalConfig
from hpcbatch.head.hosts import PLACEMENT_GROUP_LABEL, CeConfig
from hpcbatch.transport.ssh import SshHost

MAX_LOCAL_NODES = 64  # config.local.nodes' bound: 127.0.0.2 .. 127.0.0.65


def local_address(index: int) -> str:
    if not 0 <= index < MAX_LOCAL_NODES:
        raise ValueError(f"a LOCAL node index is 0 to {MAX_LOCAL_NODES - 1} (got {index})")
    return f"127.0.0.{index + 2}"


def local_profiles(local: LocalConfig) -> list[NodeProfile]:
    return [
        NodeProfile(local_address(i), local.placement_group, local.fabric_environment)
        for i in range(local.nodes)
    ]


def ssh_profile(ce: CeConfig, host: SshHost) -> NodeProfile:
    group = host.labels.get(PLACEMENT_GROUP_LABEL)
    return NodeProfile(None, group, ce.fabric_environment)
