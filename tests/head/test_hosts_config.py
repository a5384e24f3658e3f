"""SSH hosts in the head's config: every bad host is refused with its name and the rule."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.hosts import parse_compute_environments
from hpcbatch.transport.ssh import attach_command


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id"
    path.write_text("not really a key")
    os.chmod(path, 0o600)
    return path


def host(key_path: Path, **fields: Any) -> dict[str, Any]:
    return {
        "name": "n1",
        "address": "10.0.0.11",
        "key": str(key_path),
        "known_hosts": "/kh",
        **fields,
    }


def parse(*hosts: dict[str, Any]) -> Any:
    return parse_compute_environments(
        [{"name": "ce", "kind": "SSH", "hosts": list(hosts)}], {"local-1"}
    )


def test_good_hosts_parse(key: Path) -> None:
    (ce,) = parse(host(key), host(key, name="n2", address="node2.example", port=2222, vcpus=8))
    assert [h.name for h in ce.hosts] == ["n1", "n2"]
    assert (ce.hosts[1].port, ce.hosts[1].vcpus) == (2222, 8)


def test_agent_durability_reaches_the_agents_command_line(key: Path) -> None:
    (ce,) = parse(host(key), host(key, name="n2", address="10.0.0.12", agent_durability="power"))
    default, power = (shlex.split(attach_command(h, "/a.pyz")) for h in ce.hosts)
    assert "--durability" not in default  # the agent's own default: process
    assert power[power.index("--durability") + 1] == "power"


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"address": "10.0.0.300"}, "hosts[0] (n1).address", "not an IP address or a host name"),
        ({"address": "bad host"}, "hosts[0] (n1).address", "not an IP address"),
        ({"key": "/nope/id"}, "hosts[0] (n1).key", "cannot be read"),
        ({"known_hosts": None}, "hosts[0] (n1).known_hosts", "trust_on_first_use"),
        ({"port": 0}, "hosts[0] (n1).port", "integer >= 1"),
        ({"colour": "red"}, "hosts[0].colour", "not a known host setting"),
        ({"name": "local-1"}, "hosts[0].name", "listed twice"),
        ({"name": "has space"}, "hosts[0].name", "letters"),
        ({"agent_durability": "disk"}, "hosts[0] (n1).agent_durability", "'process' or 'power'"),
    ],
)
def test_bad_hosts_are_refused(key: Path, change: dict[str, Any], field: str, rule: str) -> None:
    raw = {k: v for k, v in host(key, **change).items() if v is not None}
    with pytest.raises(ValidationError) as raised:
        parse(raw)
    assert raised.value.field == f"config.compute_environments[0].{field}"
    assert rule in raised.value.rule


def test_open_key_permissions_are_refused(key: Path) -> None:
    os.chmod(key, 0o644)
    with pytest.raises(ValidationError, match="readable by others .* chmod 600"):
        parse(host(key))


def test_duplicate_hosts_are_refused(key: Path) -> None:
    with pytest.raises(ValidationError, match="'n1' is listed twice"):
        parse(host(key), host(key, address="10.0.0.12"))
    with pytest.raises(ValidationError, match="10.0.0.11:22 is already host 'n1'"):
        parse(host(key), host(key, name="n2"))


def slurm_ce(key_path: Path, **fields: Any) -> Any:
    table = {"name": "hpc", "kind": "SLURM", "max_vcpus": 64, "hosts": [host(key_path)]}
    return parse_compute_environments([{**table, **fields}], {"local-1"})


def test_a_slurm_ce_runs_its_bridge_on_its_one_host_with_the_target(key: Path) -> None:
    (ce,) = slurm_ce(key, partitions=["batch", "gpu"], account="phys", slurm_conf="/etc/s.conf")
    (login,) = ce.hosts
    assert (ce.kind, login.vcpus) == ("SLURM", 64)
    argv = shlex.split(attach_command(login, "/a.pyz"))
    flags = argv[argv.index("--slurm") :]
    assert flags == [
        "--slurm", "--slurm-partition", "batch", "--slurm-partition", "gpu",
        "--slurm-account", "phys", "--slurm-conf", "/etc/s.conf",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"max_vcpus": 0}, "max_vcpus", "is required: the most vCPUs"),
        ({"max_vcpus": None}, "max_vcpus", "is required"),
        ({"hosts": []}, "hosts", "exactly one host, the login node"),
        ({"partitions": ["a b"]}, "partitions[0]", "must name a Slurm partition"),
        ({"qos": ""}, "qos", "must be a non-empty string"),
        ({"kind": "PBS"}, "kind", "must be SSH or SLURM"),
    ],
)
def test_a_bad_slurm_ce_is_refused_naming_the_field(
    key: Path, change: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        slurm_ce(key, **change)
    assert refused.value.field == f"config.compute_environments[0].{field}"
    assert rule in refused.value.message
