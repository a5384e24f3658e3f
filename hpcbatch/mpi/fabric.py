"""The interconnect of a compute environment, and the environment hpcbatch sets for it on every
node of a multi-node job.

Vocabulary:
- **fabric**: how ranks on different nodes talk. ``tcp`` (the default: kernel sockets),
  ``efa`` (AWS Elastic Fabric Adapter through libfabric), ``ucx`` (Unified Communication X,
  usually InfiniBand/RoCE), ``verbs`` (InfiniBand verbs through libfabric's verbs provider).
- **network interface**: the IP interface nodes reach each other on (``eth0``, ``ib0``); the
  launch and bootstrap traffic of Open MPI, Hydra and NCCL is pinned to it, and with ``tcp``
  the MPI messages too.

:func:`fabric_environment` returns the variables; :func:`node_environment` lays a job's own
environment over them, so a job overrides any of them. Every variable, with the library that
reads it and where that is documented, is in docs/mpi.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FABRICS = ("tcp", "efa", "ucx", "verbs")
FABRIC_FIELD = "fabric"
INTERFACE_FIELD = "network_interface"

# Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':', whitespace; hpcbatch
# takes the portable subset, so the name is safe in any variable and on any command line.
_INTERFACE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")

# Each fabric's own variables, whatever the interface.
_BY_FABRIC: dict[str, dict[str, str]] = {
    "tcp": {},
    "efa": {
        "FI_PROVIDER": "efa",
        "FI_EFA_USE_DEVICE_RDMA": "1",
        "OMPI_MCA_pml": "cm",
        "OMPI_MCA_mtl": "ofi",
        "OMPI_MCA_mtl_ofi_provider_include": "efa",
    },
    "ucx": {"OMPI_MCA_pml": "ucx", "OMPI_MCA_osc": "ucx"},
    "verbs": {
        "FI_PROVIDER": "verbs;ofi_rxm",
        "OMPI_MCA_pml": "cm",
        "OMPI_MCA_mtl": "ofi",
        "OMPI_MCA_mtl_ofi_provider_include": "verbs;ofi_rxm",
        "NCCL_NET": "IB",
    },
}


class FabricError(ValueError):
    """A fabric or interface that hpcbatch cannot configure; the message names the field."""


@dataclass(frozen=True, slots=True)
class Fabric:
    kind: str = "tcp"
    interface: str | None = None


def parse_fabric(kind: object = "tcp", interface: object = None) -> Fabric:
    """A compute environment's ``fabric`` and ``network_interface``, checked."""
    if kind not in FABRICS:
        raise FabricError(f"{FABRIC_FIELD} must be one of {', '.join(FABRICS)}; got {kind!r}")
    if interface is None:
        return Fabric(str(kind))
    if (
        not isinstance(interface, str)
        or interface in (".", "..")
        or not _INTERFACE_RE.fullmatch(interface)
    ):
        raise FabricError(
            f"{INTERFACE_FIELD} must be a Linux interface name: 1 to 15 of letters, digits, "
            f"'_', '.', '-', not starting with '.' or '-'; got {interface!r}"
        )
    return Fabric(str(kind), interface)


def interface_environment(fabric: Fabric) -> dict[str, str]:
    """The variables that pin launch, bootstrap and (for ``tcp``) MPI traffic to the
    interface; none without one."""
    name = fabric.interface
    if name is None:
        return {}
    env = {
        "OMPI_MCA_oob_tcp_if_include": name,
        "OMPI_MCA_btl_tcp_if_include": name,
        "HYDRA_IFACE": name,
        # NCCL matches prefixes ("eth" is eth0, eth1, ...); "=" asks for this one exactly.
        "NCCL_SOCKET_IFNAME": f"={name}",
    }
    if fabric.kind == "tcp":
        # MPI messages over sockets: UCX (Debian's MPICH is ch4:ucx) and libfabric's tcp
        # provider (MPICH ch4:ofi) take their device here. Not for ucx/verbs/efa, whose
        # device is an HCA or EFA device, not this IP interface.
        env["UCX_NET_DEVICES"] = name
        env["FI_TCP_IFACE"] = name
    return env


def fabric_environment(fabric: Fabric) -> dict[str, str]:
    """Everything hpcbatch sets on every node for this fabric, sorted by name."""
    env = {"HPCBATCH_FABRIC": fabric.kind}
    if fabric.interface is not None:
        env["HPCBATCH_NETWORK_INTERFACE"] = fabric.interface
    env.update(_BY_FABRIC[fabric.kind])
    env.update(interface_environment(fabric))
    return dict(sorted(env.items()))


def node_environment(fabric: Fabric, job_environment: Mapping[str, str]) -> dict[str, str]:
    """The fabric's variables with the job's own laid over them: a job that sets
    ``OMPI_MCA_pml`` or ``FI_PROVIDER`` itself gets its value."""
    return {**fabric_environment(fabric), **job_environment}
