"""``hpcbatch console`` on the head's Unix socket: the address comes from the head."""

from __future__ import annotations

import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead


def test_on_the_socket_it_prints_the_address_the_head_gives(
    unix_stub: StubHead, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    url = "http://127.0.0.1:7650/console/"
    unix_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "console": url})
    assert main(["console", "-e", unix_stub.endpoint]) == 0
    assert capsys.readouterr().out == url + "\n"
    assert main(["console", "-e", unix_stub.endpoint, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"console": url}


def test_a_head_with_no_tcp_address_has_no_console_to_open(
    unix_stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    unix_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "console": None})
    assert main(["console", "-e", unix_stub.endpoint]) == 3
    assert "listens on no TCP address" in capsys.readouterr().err
