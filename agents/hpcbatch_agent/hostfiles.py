"""Hostfiles of a multi-node job's allocation, in the formats MPI launchers read.

Vocabulary:
- **slot**: one MPI process's place on a node (``mpirun -n`` fills slots in hostfile order).
- **allocation**: the job's nodes as ``HostSlots(address, slots)`` in node-index order. The
  main node (where ``mpirun`` runs) goes first (:func:`main_first`), so rank 0 lands on it.
- **hostfile set**: the files hpcbatch writes on the main node, and the environment variables
  that name them (:func:`hostfile_environment`).
- **HPCBATCH_HOSTS**: how the head hands a gang's allocation to each node, ``addr:slots,...`` in
  node-index order (:func:`parse_hosts`); the agent writes the hostfiles from it.

This module lives in the agent (standard library only), which writes the files on each node;
``hpcbatch.mpi.hostfile`` re-exports it, so there is one copy.

Formats (golden tests in tests/mpi/golden/):
- Open MPI: ``10.0.0.11 slots=2`` per line (``mpirun --hostfile``; its default hostfile comes
  from ``OMPI_MCA_orte_default_hostfile``).
- MPICH Hydra: ``10.0.0.11:2`` per line (``mpiexec -f``; its default from ``HYDRA_HOST_FILE``).
- plain: one address per line, once per node (for scripts, ``pdsh -w ^file``, ``xargs``).

Several nodes at one address (the LOCAL compute environment's virtual nodes are all
127.0.0.1) are one host to MPI: the MPI formats list it once, with the nodes' slots summed,
at the place of its first node. Open MPI sums repeated lines itself but Hydra's behaviour
differs by version, so hpcbatch never writes a repeat. The plain list keeps one line a node.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

# The variables hpcbatch sets on every node of a multi-node job (docs/mpi.md).
HOSTFILE = "HPCBATCH_HOSTFILE"  # Open MPI format
HOSTFILE_MPICH = "HPCBATCH_HOSTFILE_MPICH"  # Hydra's host:n format
HOSTFILE_PLAIN = "HPCBATCH_HOSTFILE_PLAIN"  # one address per node
HOSTS = "HPCBATCH_HOSTS"  # the head's "addr:slots,..." of every node, in node-index order
NUM_SLOTS = "HPCBATCH_NUM_SLOTS"  # total slots: mpirun -n "$HPCBATCH_NUM_SLOTS"
OMPI_DEFAULT_HOSTFILE = "OMPI_MCA_orte_default_hostfile"  # Open MPI 4.x reads it
HYDRA_HOST_FILE = "HYDRA_HOST_FILE"  # MPICH Hydra reads it

FILE_NAMES = {HOSTFILE: "hostfile", HOSTFILE_MPICH: "hostfile.mpich", HOSTFILE_PLAIN: "hosts"}
MAX_SLOTS = 100_000

# RFC 1123 host names: labels of letters, digits and inner hyphens, at most 253 characters.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


class HostfileError(ValueError):
    """An allocation that cannot be written as a hostfile; the message names the field."""


@dataclass(frozen=True, slots=True)
class HostSlots:
    """One node of an allocation: the address the other nodes reach it at, and its slots."""

    address: str
    slots: int


def check_address(address: object, field: str = "address") -> str:
    """An IPv4 address or an RFC 1123 host name. IPv6 is refused: Hydra's ``host:n`` lines
    cannot carry its colons."""
    if not isinstance(address, str) or not address:
        raise HostfileError(f"{field} must be a non-empty string, got {address!r}")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        if len(address) > 253 or not _HOSTNAME_RE.fullmatch(address):
            raise HostfileError(
                f"{field} {address!r} is neither an IPv4 address nor a host name "
                "(letters, digits, inner hyphens, dot-separated, at most 253 characters)"
            ) from None
        return address
    if parsed.version != 4:
        raise HostfileError(f"{field} {address!r} is IPv6: MPICH's host:n hostfile cannot hold it")
    return str(parsed)


def check_allocation(nodes: Sequence[HostSlots]) -> tuple[HostSlots, ...]:
    """The allocation, each node's address and slots checked; at least one node."""
    if not nodes:
        raise HostfileError("allocation must hold at least one node")
    checked = []
    for index, node in enumerate(nodes):
        address = check_address(node.address, f"allocation[{index}].address")
        slots = node.slots
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_SLOTS:
            raise HostfileError(
                f"allocation[{index}].slots must be an integer from 1 to {MAX_SLOTS}, got {slots!r}"
            )
        checked.append(HostSlots(address, slots))
    return tuple(checked)


def main_first(nodes: Sequence[HostSlots], main_index: int) -> tuple[HostSlots, ...]:
    """The allocation in node-index order with the main node moved to the front: ``mpirun``
    runs there and puts rank 0 on the first host of its hostfile."""
    if isinstance(main_index, bool) or not 0 <= main_index < len(nodes):
        raise HostfileError(
            f"mainNode {main_index!r} is not a node of this {len(nodes)}-node allocation"
        )
    return (nodes[main_index], *nodes[:main_index], *nodes[main_index + 1 :])


def merged(nodes: Sequence[HostSlots]) -> tuple[HostSlots, ...]:
    """One entry per address, slots summed, in order of first appearance."""
    totals: dict[str, int] = {}
    for node in check_allocation(nodes):
        totals[node.address] = totals.get(node.address, 0) + node.slots
    return tuple(HostSlots(address, slots) for address, slots in totals.items())


def openmpi_hostfile(nodes: Sequence[HostSlots]) -> str:
    return "".join(f"{n.address} slots={n.slots}\n" for n in merged(nodes))


def mpich_hostfile(nodes: Sequence[HostSlots]) -> str:
    return "".join(f"{n.address}:{n.slots}\n" for n in merged(nodes))


def plain_hostfile(nodes: Sequence[HostSlots]) -> str:
    return "".join(f"{n.address}\n" for n in check_allocation(nodes))


def hostfiles(nodes: Sequence[HostSlots]) -> dict[str, str]:
    """Each hostfile's text by its file name (:data:`FILE_NAMES`)."""
    return {
        FILE_NAMES[HOSTFILE]: openmpi_hostfile(nodes),
        FILE_NAMES[HOSTFILE_MPICH]: mpich_hostfile(nodes),
        FILE_NAMES[HOSTFILE_PLAIN]: plain_hostfile(nodes),
    }


def hostfile_environment(nodes: Sequence[HostSlots], directory: str) -> dict[str, str]:
    """The variables that name the hostfiles written in ``directory`` (an absolute path), plus
    the slot count, and the two defaults that make a bare ``mpirun``/``mpiexec``
    use the allocation."""
    if not directory.startswith("/") or "\0" in directory or "\n" in directory:
        raise HostfileError(
            f"hostfile directory must be an absolute path without NUL or newline, got {directory!r}"
        )
    base = directory.rstrip("/")
    paths = {name: f"{base}/{file}" for name, file in FILE_NAMES.items()}
    hosts = merged(nodes)
    return {
        **paths,
        NUM_SLOTS: str(sum(n.slots for n in hosts)),
        OMPI_DEFAULT_HOSTFILE: paths[HOSTFILE],
        HYDRA_HOST_FILE: paths[HOSTFILE_MPICH],
    }


def parse_hosts(text: str, field: str = HOSTS) -> tuple[HostSlots, ...]:
    """The allocation from ``addr:slots,addr:slots,...`` (node-index order), checked."""
    nodes = []
    for index, item in enumerate(text.split(",")):
        address, colon, slots = item.strip().rpartition(":")
        if not colon or not slots.isdigit():
            raise HostfileError(
                f"{field}[{index}] must be 'address:slots' (slots a whole number), got {item!r}"
            )
        nodes.append(HostSlots(address, int(slots)))
    try:
        return check_allocation(nodes)
    except HostfileError as exc:
        raise HostfileError(f"{field}: {exc}") from None
