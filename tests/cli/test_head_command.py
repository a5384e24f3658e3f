"""``hpcbatch head``: hands its options to hpcbatch.head.app.serve, or says why it cannot."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from hpcbatch.cli.commands.head import default_data_dir
from hpcbatch.cli.main import main


def test_passes_options_to_serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[object, ...]] = []
    fake = types.ModuleType("hpcbatch.head.app")
    fake.serve = lambda *args, **kw: calls.append((*args, kw)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hpcbatch.head.app", fake)
    argv = [
        "head",
        "--data-dir",
        str(tmp_path),
        "--listen",
        "unix:/run/h.sock",
        "--config",
        "h.toml",
        "--log-level",
        "debug",
        "--socket",
        "/run/x/h.sock",
        "--insecure",
    ]
    assert main(argv) == 0
    options = {"socket_path": "/run/x/h.sock", "insecure": True}
    assert calls == [(tmp_path, "unix:/run/h.sock", Path("h.toml"), "debug", None, options)]


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[object, ...]] = []
    fake = types.ModuleType("hpcbatch.head.app")
    fake.serve = lambda *args, **kw: calls.append((*args, kw)) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hpcbatch.head.app", fake)
    monkeypatch.setenv("HPCBATCH_DATA_DIR", str(tmp_path))
    assert main(["head"]) == 3  # serve's own exit code is the command's
    # None: the config file (or the environment) decides
    options = {"socket_path": None, "insecure": False}
    assert calls == [(tmp_path, None, None, "info", None, options)]


def test_missing_head_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "hpcbatch.head.app", None)  # import raises ImportError
    assert main(["head"]) == 5
    assert "cannot start the head" in capsys.readouterr().err


def test_default_data_dir_rules() -> None:
    assert default_data_dir({"HPCBATCH_DATA_DIR": "/srv/hb"}, euid=0) == Path("/srv/hb")
    assert default_data_dir({}, euid=0) == Path("/var/lib/hpcbatch")
    assert default_data_dir({}, euid=1000) == Path.home() / ".local/share/hpcbatch"
