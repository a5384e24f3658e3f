"""Fixtures for CLI tests: a stub head over TCP or a unix socket, UTC times, a clean env."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.stubhead import StubHead, serving, tcp_server, unix_server


@pytest.fixture
def stub() -> Iterator[StubHead]:
    head = StubHead()
    with serving(tcp_server(head)):
        yield head


@pytest.fixture
def unix_stub(tmp_path: Path) -> Iterator[StubHead]:
    head = StubHead()
    with serving(unix_server(head, tmp_path / "head.sock")):
        yield head


@pytest.fixture(autouse=True)
def _utc_and_clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times render in UTC; no endpoint leaks in from the developer's shell."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("HPCBATCH_ENDPOINT", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
