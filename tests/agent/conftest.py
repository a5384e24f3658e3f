"""Fixtures for agent tests: real agent processes on real Unix sockets.

Every agent a test starts is stopped by PID at teardown, and every job still alive
under its state dir is killed by process group, so no test leaves a process behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client, kill_leftover_jobs
from hpcbatch_agent.cgroups import CONTROLLERS, Cgroups


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """start_agent(*serve_args, state_dir=..., env_extra=...) -> AgentProcess."""
    started: list[AgentProcess] = []

    def start(
        *args: str, state_dir: Path | None = None, env_extra: dict[str, str] | None = None
    ) -> AgentProcess:
        directory = state_dir or tmp_path / "agent"
        argv = list(args)
        if "--node-name" not in argv:
            argv += ["--node-name", "n1"]
        if "--kill-grace-s" not in argv:
            argv += ["--kill-grace-s", "0.5"]
        agent = AgentProcess(directory, argv, {**os.environ, **(env_extra or {})})
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
    for agent in started:
        kill_leftover_jobs(agent.state_dir)
    for agent in started:
        agent.wait_keeper()


@pytest.fixture
def agent(start_agent: Callable[..., AgentProcess]) -> AgentProcess:
    return start_agent()


@pytest.fixture
def client(agent: AgentProcess) -> Iterator[Client]:
    connected = Client(agent.state_dir)
    connected.hello()
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> Cgroups:
    """This host's usable cgroups, or a skip (a failure under CI) when there are none."""
    probed = Cgroups.detect("probe", str(tmp_path_factory.mktemp("probe")))
    probed.remove_node_dirs()
    if probed.enforced != list(CONTROLLERS):
        reason = (
            f"cgroups not writable here (enforceable: {probed.enforced or 'nothing'}); "
            "these tests need root on a host with cgroup v1 or v2 controllers"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return probed
