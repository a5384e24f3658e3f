"""What a host cannot do to the head's SSH link, against a real sshd on loopback: an installed
agent build is trusted for its content (SHA-256), not its name; the agent's Python runs
isolated from the remote environment; and an endless line is cut off with a logged reason."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.errors import TransportError
from hpcbatch.transport.local import stop_local_agent
from hpcbatch.transport.ssh import SshAgentLink, SshHost, connect_ssh_agent
from hpcbatch.transport.zipapp import agent_file_name, build_agent_zipapp
from tests.ssh.loopback_sshd import SSHD, LoopbackSshd, start_sshd
from tests.ssh.test_ssh_transport import host_of


def _connect_and_close(host: SshHost) -> dict:
    async def scenario() -> dict:
        link = await connect_ssh_agent(host, "head-1")
        await link.close()
        return link.hello

    return asyncio.run(scenario())


def test_an_installed_build_with_the_right_name_but_other_bytes_is_replaced(
    sshd: LoopbackSshd,
) -> None:
    host = host_of(sshd)
    version, data = build_agent_zipapp()
    pyz = Path(host.state_dir) / "bin" / agent_file_name(version)
    pyz.parent.mkdir(parents=True)
    # A build with the expected name that does something else (here: it only prints).
    pyz.write_bytes(b"#!/usr/bin/env python3\nprint('not the agent')\n")
    try:
        hello = _connect_and_close(host)
    finally:
        stop_local_agent(Path(host.state_dir), kill_jobs=True)
    assert hello["type"] == "hello"
    assert pyz.read_bytes() == data
    assert sorted(p.name for p in pyz.parent.iterdir()) == [pyz.name]  # no temporary left


@pytest.fixture
def sshd_with_pythonpath(tmp_path: Path) -> Iterator[tuple[LoopbackSshd, Path]]:
    """An sshd whose sessions get PYTHONPATH pointing at a planted sitecustomize.py, which
    a non-isolated Python imports at start-up (and so runs as the SSH user)."""
    if not Path(SSHD).exists():
        pytest.skip("openssh-server is not installed")
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "marker"
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    server = start_sshd(tmp_path / "sshd", extra_config=f"SetEnv PYTHONPATH={planted}\n")
    try:
        yield server, marker
    finally:
        server.stop()


def test_the_remote_agent_runs_in_isolated_mode(
    sshd_with_pythonpath: tuple[LoopbackSshd, Path],
) -> None:
    sshd, marker = sshd_with_pythonpath
    host = host_of(sshd)
    try:
        hello = _connect_and_close(host)
    finally:
        stop_local_agent(Path(host.state_dir), kill_jobs=True)
    assert hello["type"] == "hello"
    assert not marker.exists(), "the planted sitecustomize ran in the agent's Python"


def test_a_host_sending_an_endless_line_is_disconnected(
    sshd: LoopbackSshd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The host's "python" answers the hello with bytes and never a newline.
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\nread -r line\nexec yes x | tr -d '\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(SshAgentLink, "max_line", 1 << 20, raising=False)  # the real bound: 64 MiB
    caplog.set_level(logging.WARNING, logger="hpcbatch.transport.ssh")
    with pytest.raises(TransportError) as raised:
        asyncio.run(connect_ssh_agent(host_of(sshd, python=str(fake)), "head-1"))
    assert "node n1: the agent did not say hello" in raised.value.message
    assert f"more than {1 << 20} bytes without a newline" in raised.value.message
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("node n1: sent more than") and "disconnecting" in m for m in logged)
