"""What the head's config says of a gang's nodes: the fabric and network interface of a
compute environment (LOCAL's [local] and SSH's [[compute_environments]]), placement groups,
the LOCAL virtual nodes' own addresses; and the head's launch secret in its data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import load_config
from hpcbatch.head.launch_keys import LaunchKeys
from hpcbatch.head.node_profiles import local_profiles, ssh_profile


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "head.toml"
    path.write_text(text)
    return path


def _ssh(tmp_path: Path, ce: str = "", labels: str = "") -> Path:
    key = tmp_path / "id"
    key.write_text("k")
    os.chmod(key, 0o600)
    return _config(
        tmp_path,
        f"""
[local]
nodes = 0
[[compute_environments]]
name = "cluster"
{ce}
[[compute_environments.hosts]]
name = "h1"
address = "10.0.0.1"
key = "{key}"
known_hosts = "/kh"
{labels}
""",
    )


def test_local_nodes_get_their_own_addresses_group_and_fabric(tmp_path: Path) -> None:
    text = '[local]\nnodes = 3\nfabric = "efa"\nnetwork_interface = "lo"\nplacement_group = "g1"\n'
    config = load_config(_config(tmp_path, text))
    profiles = local_profiles(config.local)
    assert [p.address for p in profiles] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert {p.placement_group for p in profiles} == {"g1"}
    env = dict(profiles[0].fabric_environment)
    assert env["FI_PROVIDER"] == "efa" and env["NCCL_SOCKET_IFNAME"] == "=lo"


def test_the_default_fabric_is_tcp_with_no_interface(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "[local]\nnodes = 1\n"))
    (profile,) = local_profiles(config.local)
    assert dict(profile.fabric_environment) == {"HPCBATCH_FABRIC": "tcp"}
    assert profile.placement_group is None


def test_an_ssh_ce_s_fabric_and_a_host_s_placement_group(tmp_path: Path) -> None:
    ce_text = 'fabric = "ucx"\nnetwork_interface = "ib0"'
    path = _ssh(tmp_path, ce_text, 'labels = { rack = "a", placement_group = "pg-1" }')
    (ce,) = load_config(path).compute_environments
    profile = ssh_profile(ce, ce.hosts[0])
    assert profile.address is None  # the SSH link's own address
    assert profile.placement_group == "pg-1"
    assert dict(profile.fabric_environment)["OMPI_MCA_pml"] == "ucx"


@pytest.mark.parametrize(
    ("ce", "labels", "field"),
    [
        ('fabric = "infiniband"', "", "config.compute_environments[0].fabric"),
        ('network_interface = "eth0/1"', "", "config.compute_environments[0].network_interface"),
        ('fabrik = "tcp"', "", "config.compute_environments[0].fabrik"),
        ("", 'labels = { placement_group = "a b" }', "labels.placement_group"),
    ],
)
def test_bad_ssh_settings_are_refused_naming_the_field(
    tmp_path: Path, ce: str, labels: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_config(_ssh(tmp_path, ce, labels))
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        ('fabric = "rdma"', "config.local.fabric", "one of tcp, efa, ucx, verbs"),
        ('network_interface = ""', "config.local.network_interface", "interface name"),
        ("placement_group = 3", "config.local.placement_group", "letters, digits"),
    ],
)
def test_bad_local_settings_are_refused_naming_the_field(
    tmp_path: Path, text: str, field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_config(_config(tmp_path, f"[local]\n{text}\n"))
    assert field in str(caught.value) and rule in str(caught.value)


def test_the_launch_secret_is_made_once_0600_and_kept_across_restarts(tmp_path: Path) -> None:
    first = LaunchKeys.in_dir(tmp_path)
    assert os.stat(tmp_path / "launch.secret").st_mode & 0o777 == 0o600
    again = LaunchKeys.in_dir(tmp_path)
    assert first.key_for("job/1") == again.key_for("job/1")
    assert first.key_for("job/1") != first.key_for("job/2")
    assert LaunchKeys().key_for("job/1") != first.key_for("job/1")  # another head's secret


def test_a_launch_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    LaunchKeys.in_dir(tmp_path)
    os.chmod(tmp_path / "launch.secret", 0o644)
    with pytest.raises(ValueError, match="readable by the head only"):
        LaunchKeys.in_dir(tmp_path)
