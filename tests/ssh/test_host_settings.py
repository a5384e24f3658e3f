"""How SSH hosts are described to the head: a host key always means something (trust on first
use needs a known_hosts file to record into), host names are checked in linear time, and the
agent's command line runs Python isolated. Pure: no sshd."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.hosts import is_host_name, parse_compute_environments
from hpcbatch.transport.ssh import SshHost, attach_command, installed_digest, probe_command

WHERE = "config.compute_environments[0].hosts[0] (n1)"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id"
    path.write_text("not really a key")
    os.chmod(path, 0o600)
    return path


def parse_one(key: Path, **fields: Any) -> SshHost:
    raw = {"name": "n1", "address": "10.0.0.11", "key": str(key), **fields}
    (ce,) = parse_compute_environments([{"name": "ce", "kind": "SSH", "hosts": [raw]}], set())
    (host,) = ce.hosts
    return host


def test_trust_on_first_use_without_known_hosts_is_refused(key: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_one(key, trust_on_first_use=True)
    assert raised.value.field == f"{WHERE}.known_hosts"
    assert "required with trust_on_first_use = true" in raised.value.rule
    assert "recorded there" in raised.value.rule


def test_trust_on_first_use_with_known_hosts_is_kept(key: Path, tmp_path: Path) -> None:
    host = parse_one(key, trust_on_first_use=True, known_hosts=str(tmp_path / "kh"))
    assert host.trust_on_first_use and host.known_hosts == tmp_path / "kh"


def test_trust_on_first_use_must_be_a_boolean(key: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_one(key, trust_on_first_use="yes", known_hosts="/kh")
    assert raised.value.field == f"{WHERE}.trust_on_first_use"
    assert "true or false" in raised.value.rule


def test_no_ssh_host_trusts_on_first_use_without_known_hosts(key: Path) -> None:
    with pytest.raises(ValueError, match="host n1: trust_on_first_use needs a known_hosts"):
        SshHost(name="n1", address="10.0.0.11", key=key, trust_on_first_use=True)


@pytest.mark.parametrize(
    "name",
    ["a" * 25 + "!", "a-a-a-a-a-a-a-a-a-a-a-a-a-!", "a" * 200 + "!", "ab." * 80 + "-"],
)
def test_pathological_host_names_are_refused(key: Path, name: str) -> None:
    # "a"*25+"!" took 1.4 s with the old single pattern (each extra "a" doubled it); now ~us.
    assert not is_host_name(name)
    with pytest.raises(ValidationError, match="not an IP address or a host name"):
        parse_one(key, address=name, known_hosts="/kh")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("node1", True),
        ("node-1.example.com", True),
        ("node-1.example.com.", True),
        ("a" * 63, True),
        (".".join(["a" * 63] * 3) + "." + "a" * 61, True),  # 253 characters
        ("a" * 64, False),
        (".".join(["a" * 63] * 4), False),  # 255 characters
        ("-node", False),
        ("node-", False),
        ("a..b", False),
        (".a", False),
        ("", False),
        ("bad host", False),
        ("node_1", False),
    ],
)
def test_host_names_follow_the_dns_rules(name: str, ok: bool) -> None:
    assert is_host_name(name) is ok


def test_the_agent_command_runs_python_isolated(key: Path) -> None:
    host = SshHost(name="n1", address="10.0.0.11", key=key, python="/usr/bin/python3")
    argv = shlex.split(attach_command(host, "/s/bin/a.pyz"))
    assert argv[:4] == ["/usr/bin/python3", "-I", "/s/bin/a.pyz", "attach"]


def test_the_install_probe_prints_the_builds_digest() -> None:
    command = probe_command("/s dir/bin", "/s dir/bin/a.pyz")
    assert (
        command == "mkdir -p '/s dir/bin' && { sha256sum '/s dir/bin/a.pyz' 2>/dev/null || true; }"
    )
    assert installed_digest("ABC123  /s dir/bin/a.pyz\n") == "abc123"
    assert installed_digest("") is None
