"""The ownership rules on stat results, and ``not_its_own`` on descriptors. Pure; no root."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from hpcbatch.devcluster import descriptor as desc
from hpcbatch.devcluster.ownership import stat_problem

P = Path("/x")


def st(mode: int, uid: int = 0) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "kind", "problem"),
    [
        (stat.S_IFDIR | 0o700, 0, "dir", None),
        (stat.S_IFDIR | 0o755, 0, "dir", None),
        (stat.S_IFDIR | 0o700, 65534, "dir", "is not owned by root"),
        (stat.S_IFDIR | 0o770, 0, "dir", "writable by group or others"),
        (stat.S_IFDIR | 0o1777, 0, "dir", "writable by group or others"),  # sticky: not for DIR
        (stat.S_IFDIR | 0o1777, 0, "above", None),  # /tmp: others cannot rename root's entries
        (stat.S_IFDIR | 0o777, 0, "above", "writable by group or others"),
        (stat.S_IFDIR | 0o1777, 1000, "above", "is not owned by root"),
        (stat.S_IFLNK | 0o777, 0, "dir", "is not a directory"),
        (stat.S_IFLNK | 0o777, 0, "link", None),
        (stat.S_IFLNK | 0o777, 1000, "link", "is not owned by root"),
        (stat.S_IFREG | 0o600, 0, "file", None),
        (stat.S_IFREG | 0o644, 0, "file", None),
        (stat.S_IFREG | 0o666, 0, "file", "writable by group or others"),
        (stat.S_IFLNK | 0o777, 0, "file", "is not a regular file"),
    ],
)
def test_stat_rules(mode: int, uid: int, kind: str, problem: str | None) -> None:
    found = stat_problem(P, st(mode, uid), kind)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and found.startswith("/x (owner ")


BASE = Path("/var/lib/hpcbatch-devcluster")
PLAN = desc.plan(BASE, "hb3f2a", IPv4Network("10.77.12.0/24"), 2, created_dir=True, disk_mib=64)


def test_a_planned_descriptor_is_its_own() -> None:
    assert desc.not_its_own(PLAN, BASE) is None
    assert desc.not_its_own(PLAN.without_disks("no mkfs"), BASE) is None
    assert desc.not_its_own(desc.from_json(desc.to_json(PLAN)), BASE) is None


@pytest.mark.parametrize(
    ("changed", "phrase"),
    [
        (replace(PLAN, base_dir=Path("/etc")), "its directory is /etc, but it lies in"),
        (replace(PLAN, prefix="eth"), "bridge is 'hb3f2a-br', not 'eth-br'"),
        (replace(PLAN, prefix="BAD!"), "prefix 'BAD!' must be"),
        (replace(PLAN, bridge="docker0"), "bridge is 'docker0', not 'hb3f2a-br'"),
        (replace(PLAN, key_path=Path("/root/.ssh/id")), "key_path is '/root/.ssh/id'"),
        (
            replace(PLAN, hosts=(replace(PLAN.hosts[0], host_dir=Path("/home")), PLAN.hosts[1])),
            "hosts[0].host_dir is '/home'",
        ),
        (
            replace(PLAN, hosts=(PLAN.hosts[0], replace(PLAN.hosts[1], namespace="other-h1"))),
            "hosts[1].namespace is 'other-h1', not 'hb3f2a-h2'",
        ),
        (
            replace(PLAN, hosts=(replace(PLAN.hosts[0], disk_image=Path("/dev/sda")),)),
            "hosts[0].disk_image is '/dev/sda'",
        ),
    ],
)
def test_what_is_not_its_own_is_named(changed: desc.Descriptor, phrase: str) -> None:
    problem = desc.not_its_own(changed, BASE)
    assert problem is not None and phrase in problem
