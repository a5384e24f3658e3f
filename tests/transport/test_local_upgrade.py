"""A LOCAL agent of another build is replaced once, with real agents: when the new one still
is not the head's build, the connect fails with why, and later connects refuse it at once
instead of replacing it again (transport/upgrade.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpcbatch_agent.build import build_id
from hpcbatch_agent.jobs import find_jobs

from hpcbatch.errors import TransportError
from hpcbatch.transport import local
from hpcbatch.transport.local import connect_local_agent, read_pid, stop_local_agent

HEAD_BUILD = "0.1.0-ffffffffffff"  # a head whose build no agent on this machine has


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "node-a"
    yield directory
    stop_local_agent(directory, kill_jobs=True, timeout_s=10)
    for job in find_jobs(str(directory.resolve())).values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job, signal.SIGKILL)


def connect(state_dir: Path) -> None:
    async def once() -> None:
        link = await connect_local_agent(state_dir, "node-a", head_id="h")
        await link.close()

    asyncio.run(once())


def test_an_agent_that_stays_stale_is_replaced_once_then_refused(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(state_dir)  # an agent of this machine's build, serving
    first = read_pid(state_dir)
    monkeypatch.setattr(local, "build_id", lambda: HEAD_BUILD)
    with pytest.raises(TransportError) as failed:
        connect(state_dir)
    stale = f"its agent is build {build_id()}, this head's is {HEAD_BUILD}"
    assert failed.value.message == (
        f"node node-a: replaced a stale agent ({stale}) once, but the new one is stale too "
        f"({stale}); not replacing it again: stop the agent on its host to let the head start "
        "its own"
    )
    second = read_pid(state_dir)
    assert second not in (None, first)  # it was replaced: stopped and started again
    for _ in range(2):  # the supervisor reconnects: refused at once, never replaced again
        with pytest.raises(TransportError) as again:
            connect(state_dir)
        assert again.value.message == failed.value.message
        assert read_pid(state_dir) == second


def test_a_job_runs_on_through_a_replacement(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpcbatch import protocol

    gate = tmp_path / "gate"

    async def launch() -> None:
        link = await connect_local_agent(state_dir, "node-a", head_id="h")
        script = f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 7"
        await link.send(protocol.launch([protocol.attempt_spec("t:1", ["sh", "-c", script])]))
        async with asyncio.timeout(15):
            while not any(
                u["state"] == protocol.RUNNING
                for u in (await link.receive() or {}).get("updates", [])
            ):
                pass
        await link.close()

    asyncio.run(launch())
    first = read_pid(state_dir)
    monkeypatch.setattr(local, "build_id", lambda: HEAD_BUILD)
    with pytest.raises(TransportError, match="stale too"):
        connect(state_dir)
    assert read_pid(state_dir) not in (None, first)
    monkeypatch.undo()  # the head's build is this machine's again: one more try, which serves
    gate.touch()

    async def result() -> dict:
        link = await connect_local_agent(state_dir, "node-a", head_id="h")
        try:
            async with asyncio.timeout(15):
                while True:
                    for update in link.hello["attempts"]:
                        if protocol.is_final(update):
                            return dict(update)
                    message = await link.receive()
                    assert message is not None
                    for update in message.get("updates", []):
                        if protocol.is_final(update):
                            return dict(update)
        finally:
            await link.close()

    assert asyncio.run(result())["exit_code"] == 7
