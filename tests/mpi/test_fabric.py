"""A compute environment's fabric and interface (hpcbatch.mpi.fabric): the environment for each
(golden), the job's own variables winning, bad names refused with the field named. Pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcbatch.mpi.fabric import (
    FABRICS,
    Fabric,
    FabricError,
    fabric_environment,
    node_environment,
    parse_fabric,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "fabric_environments.json").read_text())


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_each_fabric_sets_its_golden_environment(case: str) -> None:
    kind, _, interface = case.partition(" ")
    assert fabric_environment(parse_fabric(kind, interface or None)) == GOLDEN[case]


def test_the_default_is_tcp_with_no_interface() -> None:
    assert parse_fabric() == Fabric("tcp", None)
    assert fabric_environment(Fabric()) == {"HPCBATCH_FABRIC": "tcp"}


def test_every_fabric_has_a_variable_set_and_names_itself() -> None:
    for kind in FABRICS:
        assert fabric_environment(Fabric(kind, "eth0"))["HPCBATCH_FABRIC"] == kind


def test_an_rdma_fabric_never_pins_its_device_to_the_ip_interface() -> None:
    for kind in ("efa", "ucx", "verbs"):
        env = fabric_environment(Fabric(kind, "ib0"))
        assert "UCX_NET_DEVICES" not in env and "FI_TCP_IFACE" not in env


def test_the_jobs_own_environment_overrides_the_fabrics() -> None:
    env = node_environment(Fabric("efa", "eth0"), {"FI_PROVIDER": "tcp", "APP": "1"})
    assert env["FI_PROVIDER"] == "tcp"
    assert env["APP"] == "1"
    assert env["OMPI_MCA_mtl"] == "ofi"


@pytest.mark.parametrize(
    ("kind", "interface", "message"),
    [
        ("EFA", None, r"fabric must be one of tcp, efa, ucx, verbs; got 'EFA'"),
        ("infiniband", None, r"fabric must be one of .*'infiniband'"),
        (None, None, r"fabric must be one of .*None"),
        ("tcp", "", r"network_interface must be a Linux interface name.*got ''"),
        ("tcp", "eth0 eth1", r"network_interface .*'eth0 eth1'"),
        ("tcp", "a" * 16, r"network_interface .*1 to 15"),
        ("tcp", "..", r"network_interface"),
        ("tcp", "eth0:1", r"network_interface"),
        ("tcp", "-eth0", r"network_interface"),
        ("tcp", "br/0", r"network_interface"),
        ("tcp", 7, r"network_interface .*got 7"),
    ],
)
def test_bad_names_are_refused_naming_the_field(
    kind: object, interface: object, message: str
) -> None:
    with pytest.raises(FabricError, match=message):
        parse_fabric(kind, interface)


def test_longest_linux_names_are_accepted() -> None:
    assert parse_fabric("tcp", "enp129s0f1np1.5").interface == "enp129s0f1np1.5"
