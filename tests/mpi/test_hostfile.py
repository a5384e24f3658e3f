"""Hostfiles of an allocation (hpcbatch.mpi.hostfile): golden text for Open MPI, MPICH Hydra
and the plain list, the main node first, repeated addresses merged, bad input refused with the
field named. Pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcbatch.mpi.hostfile import (
    HostfileError,
    HostSlots,
    check_address,
    hostfile_environment,
    hostfiles,
    main_first,
    mpich_hostfile,
    openmpi_hostfile,
    plain_hostfile,
)

GOLDEN = Path(__file__).parent / "golden"
FOUR = [HostSlots(f"10.0.0.1{i}", 2) for i in range(1, 5)]
LOCAL_VIRTUAL = [HostSlots("127.0.0.1", 1), HostSlots("127.0.0.1", 2)]


@pytest.mark.parametrize(
    ("case", "nodes"),
    [("four_nodes_main2", main_first(FOUR, 2)), ("local_virtual", LOCAL_VIRTUAL)],
)
def test_each_format_matches_its_golden_file(case: str, nodes: list[HostSlots]) -> None:
    assert openmpi_hostfile(nodes) == (GOLDEN / f"{case}.openmpi").read_text()
    assert mpich_hostfile(nodes) == (GOLDEN / f"{case}.mpich").read_text()
    assert plain_hostfile(nodes) == (GOLDEN / f"{case}.plain").read_text()


def test_the_environment_matches_its_golden_file() -> None:
    env = hostfile_environment(main_first(FOUR, 2), "/var/lib/hpcbatch/jobs/j1/")
    assert env == json.loads((GOLDEN / "four_nodes_main2.env.json").read_text())


def test_files_are_named_as_the_environment_says() -> None:
    env = hostfile_environment(FOUR, "/d")
    files = hostfiles(FOUR)
    assert files[Path(env["HPCBATCH_HOSTFILE"]).name] == openmpi_hostfile(FOUR)
    assert files[Path(env["HPCBATCH_HOSTFILE_MPICH"]).name] == mpich_hostfile(FOUR)
    assert files[Path(env["HPCBATCH_HOSTFILE_PLAIN"]).name] == plain_hostfile(FOUR)


def test_main_first_keeps_the_others_in_node_order() -> None:
    assert main_first(FOUR, 0) == tuple(FOUR)
    assert [n.address for n in main_first(FOUR, 3)] == [
        "10.0.0.14",
        "10.0.0.11",
        "10.0.0.12",
        "10.0.0.13",
    ]


def test_a_repeated_address_is_one_host_at_its_first_place() -> None:
    nodes = [HostSlots("a", 1), HostSlots("b", 1), HostSlots("a", 4)]
    assert openmpi_hostfile(nodes) == "a slots=5\nb slots=1\n"
    assert "HPCBATCH_HOSTS" not in hostfile_environment(nodes, "/d")  # the head's, not ours
    assert hostfile_environment(nodes, "/d")["HPCBATCH_NUM_SLOTS"] == "6"


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "at least one node"),
        ([HostSlots("10.0.0.1", 0)], r"allocation\[0\].slots must be an integer from 1"),
        ([HostSlots("h", 1), HostSlots("h", True)], r"allocation\[1\].slots"),
        ([HostSlots("fe80::1", 1)], r"allocation\[0\].address .* is IPv6"),
        ([HostSlots("a b", 1)], r"allocation\[0\].address 'a b' is neither"),
        ([HostSlots("h\nx slots=99", 1)], r"allocation\[0\].address"),
        ([HostSlots("", 1)], r"allocation\[0\].address must be a non-empty string"),
        ([HostSlots("-h", 1)], r"allocation\[0\].address '-h' is neither"),
    ],
)
def test_bad_allocations_are_refused_naming_the_field(nodes: list[HostSlots], message: str) -> None:
    with pytest.raises(HostfileError, match=message):
        openmpi_hostfile(nodes)


def test_bad_main_node_and_directory_are_refused() -> None:
    with pytest.raises(HostfileError, match="mainNode 4 is not a node of this 4-node"):
        main_first(FOUR, 4)
    with pytest.raises(HostfileError, match="absolute path"):
        hostfile_environment(FOUR, "relative/dir")


def test_addresses_are_normalised_and_host_names_accepted() -> None:
    assert check_address("node-01.cluster") == "node-01.cluster"
    assert check_address("10.0.0.1") == "10.0.0.1"
    with pytest.raises(HostfileError, match="x.address"):
        check_address("a" * 254, "x.address")
