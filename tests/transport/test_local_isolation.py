"""A local agent runs isolated in its own state dir: nothing from the head's working
directory or PYTHONPATH is imported into it (it may run as root), and the head refuses a
state dir it could not trust (issue 18, item 6)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest
from hpcbatch_agent.jobs import find_jobs

from hpcbatch import protocol
from hpcbatch.errors import TransportError
from hpcbatch.transport.local import connect_local_agent, read_pid, stop_local_agent


@pytest.fixture
def state_dir(tmp_path: Path):
    directory = tmp_path / "node-a"
    yield directory
    stop_local_agent(directory, kill_jobs=True, timeout_s=10)
    for job in find_jobs(str(directory.resolve())).values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job, signal.SIGKILL)


def _plant(directory: Path, marker: Path) -> None:
    package = directory / "hpcbatch_agent"
    package.mkdir(parents=True)
    code = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("__init__.py", "__main__.py", "main.py"):
        (package / name).write_text(code)


def test_a_package_planted_in_the_heads_cwd_is_never_imported_by_a_local_agent(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    _plant(tmp_path / "cwd", marker)
    _plant(tmp_path / "pythonpath", marker)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pythonpath"))

    async def scenario() -> dict:
        link = await connect_local_agent(state_dir, "node-a", head_id="h")
        await link.send(protocol.launch([protocol.attempt_spec("t:1", ["true"])]))
        async with asyncio.timeout(15):
            while True:
                message = await link.receive()
                assert message is not None
                for update in message.get("updates", []):
                    if protocol.is_final(update):
                        await link.close()
                        return update

    assert asyncio.run(scenario())["exit_code"] == 0
    assert not marker.exists(), marker.read_text()
    pid = read_pid(state_dir)
    assert pid is not None
    assert os.readlink(f"/proc/{pid}/cwd") == str(state_dir.resolve())
    assert b"-I" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def test_the_head_refuses_a_state_dir_others_may_write(state_dir: Path) -> None:
    state_dir.mkdir()
    state_dir.chmod(0o777)
    with pytest.raises(TransportError, match=r"mode 0777: it must not be writable by group"):
        asyncio.run(connect_local_agent(state_dir, "node-a", head_id="h"))
    assert read_pid(state_dir) is None
