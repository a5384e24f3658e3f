"""The SSH link against a real sshd on loopback: install, attach, hello, jobs, and every way
a connection can be refused — each with an error that names the host and says why."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from hpcbatch import protocol
from hpcbatch.errors import HpcbatchError, TransportError
from hpcbatch.transport.local import stop_local_agent
from hpcbatch.transport.ssh import SshHost, connect_ssh_agent
from hpcbatch.transport.zipapp import agent_file_name, build_agent_zipapp
from tests.ssh.loopback_sshd import LoopbackSshd, keygen


def host_of(sshd: LoopbackSshd, **changes: object) -> SshHost:
    host = SshHost(
        name="n1",
        address="127.0.0.1",
        port=sshd.port,
        key=sshd.client_key,
        known_hosts=sshd.known_hosts,
        state_dir=str(sshd.dir / "agent"),
        python="/usr/bin/python3",
        vcpus=3,
    )
    return replace(host, **changes)  # type: ignore[arg-type]


def test_connect_installs_once_and_runs_a_job(sshd: LoopbackSshd) -> None:
    host = host_of(sshd)

    async def scenario() -> tuple[dict, float, float]:
        link = await connect_ssh_agent(host, "head-1")
        pyz = Path(host.state_dir) / "bin" / agent_file_name(build_agent_zipapp()[0])
        first_install = pyz.stat().st_mtime
        await link.send(protocol.launch([protocol.attempt_spec("j/1", ["sh", "-c", "exit 9"])]))
        final = None
        while final is None:
            message = await link.receive()
            assert message is not None
            final = next((u for u in message.get("updates", []) if protocol.is_final(u)), None)
        await link.close()
        again = await connect_ssh_agent(host, "head-1")
        assert [u["exit_code"] for u in again.hello["attempts"]] == [9]
        await again.close()
        return link.hello, first_install, pyz.stat().st_mtime

    try:
        hello, first, second = asyncio.run(scenario())
    finally:
        stop_local_agent(Path(host.state_dir), kill_jobs=True)
    assert hello["node"]["name"] == "n1" and hello["node"]["vcpus"] == 3
    assert first == second  # the same build was not copied again


def _refused(host: SshHost) -> str:
    with pytest.raises(TransportError) as raised:
        asyncio.run(connect_ssh_agent(host, "head-1"))
    return raised.value.message


def test_a_wrong_key_is_refused_with_a_reason(sshd: LoopbackSshd, tmp_path: Path) -> None:
    keygen(tmp_path / "other")
    message = _refused(host_of(sshd, key=tmp_path / "other"))
    assert message.startswith("node n1 (root@127.0.0.1:")
    assert "authentication failed" in message


def test_an_unknown_host_key_is_refused_unless_trusted_on_first_use(
    sshd: LoopbackSshd, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    assert "unknown host key" in _refused(host_of(sshd, known_hosts=empty))
    host = host_of(sshd, known_hosts=empty, trust_on_first_use=True)

    async def trust() -> None:
        link = await connect_ssh_agent(host, "head-1")
        await link.close()

    try:
        asyncio.run(trust())
    finally:
        stop_local_agent(Path(host.state_dir), kill_jobs=True)
    assert f"[127.0.0.1]:{sshd.port}" in empty.read_text()


def test_a_changed_host_key_is_refused(sshd: LoopbackSshd, tmp_path: Path) -> None:
    keygen(tmp_path / "impostor")
    impostor = " ".join((tmp_path / "impostor.pub").read_text().split()[:2])
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {impostor}\n")
    assert "does not match" in _refused(host_of(sshd, known_hosts=wrong))


def test_an_unreachable_host_says_so(sshd: LoopbackSshd) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    assert "unreachable" in _refused(host_of(sshd, port=closed_port))


@pytest.mark.parametrize(
    ("reply", "phrase"),
    [
        ("not json at all", "node n1: malformed message"),
        ('{"v":2,"type":"hello"}', "node n1 speaks another protocol version"),
        ('{"v":1,"type":"hello","agent_version":"x"}', "node n1: malformed message: hello lacks"),
    ],
)
def test_a_bad_agent_reply_is_refused_naming_the_host(
    sshd: LoopbackSshd, tmp_path: Path, reply: str, phrase: str
) -> None:
    # The host's "python" is a script that answers the hello with ``reply``, then waits for
    # the head to hang up (end of input), as the real relay does.
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nread -r line\nprintf '%s\\n' '{reply}'\nexec cat >/dev/null\n")
    fake.chmod(0o755)
    with pytest.raises(HpcbatchError) as raised:
        asyncio.run(connect_ssh_agent(host_of(sshd, python=str(fake)), "head-1"))
    assert phrase in str(raised.value)
