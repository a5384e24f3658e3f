"""``[[host_pools]]`` in the head's config: named lists of SSH hosts, each host in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import load_config


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id"
    path.write_text("not really a key")
    os.chmod(path, 0o600)
    return path


def _host(key: Path, name: str, address: str) -> str:
    return f'name = "{name}"\naddress = "{address}"\nkey = "{key}"\nknown_hosts = "/kh"\n'


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "head.toml"
    path.write_text(text)
    return load_config(path, data_dir=tmp_path)


def test_pools_parse_in_order(tmp_path: Path, key: Path) -> None:
    config = _load(
        tmp_path,
        '[[host_pools]]\nname = "gpu"\n[[host_pools.hosts]]\n'
        + _host(key, "g1", "10.0.0.1")
        + "[[host_pools.hosts]]\n"
        + _host(key, "g2", "10.0.0.2")
        + '[[host_pools]]\nname = "cpu"\n[[host_pools.hosts]]\n'
        + _host(key, "c1", "10.0.0.3"),
    )
    assert [(p.name, [h.name for h in p.hosts]) for p in config.host_pools] == [
        ("gpu", ["g1", "g2"]),
        ("cpu", ["c1"]),
    ]


def test_a_host_in_two_pools_is_refused(tmp_path: Path, key: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        _load(
            tmp_path,
            '[[host_pools]]\nname = "a"\n[[host_pools.hosts]]\n'
            + _host(key, "h", "10.0.0.1")
            + '[[host_pools]]\nname = "b"\n[[host_pools.hosts]]\n'
            + _host(key, "h", "10.0.0.2"),
        )
    assert refused.value.field == "config.host_pools[1].hosts[0].name"
    assert "already in another host pool or compute environment" in refused.value.rule


def test_a_host_in_a_pool_and_a_compute_environment_is_refused(tmp_path: Path, key: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        _load(
            tmp_path,
            '[[compute_environments]]\nname = "c"\n[[compute_environments.hosts]]\n'
            + _host(key, "h1", "10.0.0.1")
            + '[[host_pools]]\nname = "p"\n[[host_pools.hosts]]\n'
            + _host(key, "h2", "10.0.0.1"),
        )
    assert refused.value.field == "config.host_pools[0].hosts[0].address"
    assert "10.0.0.1:22 is already host 'h1'" in refused.value.rule
