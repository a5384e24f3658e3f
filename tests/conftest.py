"""Suite-wide guard: no test may leave an agent (or its keeper) or an sshd of its own running."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Every head a test starts serves /metrics on a port of its own (0: the kernel's choice), not
# on the default 9650 that concurrent test heads would fight over; tests/metrics/
# give theirs explicitly.
os.environ.setdefault("HPCBATCH_METRICS_LISTEN", "127.0.0.1:0")
# Nor on the default Unix socket /run/hpcbatch/head.sock: tests that call a head on a Unix socket
# give it one of their own (--socket); the others call it on loopback TCP.
os.environ.setdefault("HPCBATCH_SOCKET", "")

# Under pytest-xdist (scripts/test.sh runs `-n 2`), a module's tests stay together on one
# worker: its module fixtures start once, and the modules whose tests build on each other in file
# order (tests/ansible) keep that order. A directory whose tests share a session fixture that
# must exist once on the machine stays whole: tests/slurm (one Slurm cluster, ~15 s to start),
# tests/auth (Unix users with fixed names), tests/vagrant (one VAGRANT_HOME). (xdist's own
# `--dist loadgroup` marks do nothing under pytest 9.2, whose node ids it can no longer rename.)
WHOLE_DIRECTORIES = frozenset({"slurm", "auth", "vagrant"})


def scope_of(nodeid: str) -> str:
    """What one worker runs whole: a test's module, or its directory if listed above."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in WHOLE_DIRECTORIES:
        return "/".join(parts[:2])
    return path


# The scopes that take minutes go first (in this order), so that neither worker is left alone
# with one of them at the end while the other has nothing to do; the rest keep their order.
FIRST = (
    "tests/ansible/test_site.py",
    "tests/slurm",
    "tests/metrics/test_metrics_burst.py",
    "tests/head/test_aws_cli_every_operation.py",
    "tests/core/test_fairshare_property.py",
    "tests/cluster/test_ssh_cluster.py",
    "tests/cluster/test_mpi_cluster.py",
    "tests/console/test_console_jobs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {scope: index for index, scope in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(scope_of(item.nodeid), len(FIRST)))  # stable


@pytest.hookimpl(optionalhook=True)  # a hook of xdist, absent under -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep FIRST first (xdist would sort by test count)
    class ByScope(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ByScope(config, log)


MARKERS = (b"hpcbatch_agent", b"/hpcbatch-agent-", b"sshd")
LINGER_S = 10.0


def _leftovers(root: bytes) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if root in argv and any(m in argv for m in MARKERS):
            text = argv.replace(b"\0", b" ")[:160].decode(errors="replace")
            found.append(f"{entry}: {text}")
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    root = str(tmp_path_factory.getbasetemp()).encode()
    # An agent's keeper leaves a moment after the agent and its last job: poll, bounded.
    deadline = time.monotonic() + LINGER_S
    while (leftovers := _leftovers(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftovers, "processes left running by the tests:\n" + "\n".join(leftovers)
