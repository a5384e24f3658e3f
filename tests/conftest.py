"""Suite-wide guard: no test may leave an agent (or its keeper) or an sshd of its own running."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every head a test starts serves /metrics on a port of its own (0: the kernel's choice), not
# on the default 9650 that concurrent test heads would fight over; tests/metrics/
# give theirs explicitly.
os.environ.setdefault("HPCBATCH_METRICS_LISTEN", "127.0.0.1:0")
# Nor on the default Unix socket /run/hpcbatch/head.sock: tests that call a head on a Unix socket
# give it one of their own (--socket); the others call it on loopback TCP.
os.environ.setdefault("HPCBATCH_SOCKET", "")

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
