from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.loopback_sshd import SSHD, LoopbackSshd, start_sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LoopbackSshd]:
    if not Path(SSHD).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("openssh-server is missing: scripts/test.sh installs it")
        pytest.skip("openssh-server is not installed")
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()
