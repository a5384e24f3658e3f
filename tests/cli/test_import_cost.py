"""The CLI starts fast because it imports nothing heavy: checked by behaviour, not timing."""

from __future__ import annotations

import subprocess
import sys

import pytest

# dataclasses is here on purpose: it drags in inspect (~10 ms), a tenth of the start-up budget.
HEAVY = (
    "pydantic",
    "starlette",
    "uvicorn",
    "boto3",
    "botocore",
    "hpcbatch.head",
    "hpcbatch.core",
    "hpcbatch.store",
    "sqlite3",
    "asyncio",
    "dataclasses",
)


def imported_modules(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def heavy_in(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_pulls_in_nothing_heavy() -> None:
    names = imported_modules("import hpcbatch.cli.main")
    assert "hpcbatch.cli.main" in names
    assert heavy_in(names) == []


def test_building_the_parser_and_submit_path_stay_light() -> None:
    code = (
        "from hpcbatch.cli.main import build_parser; build_parser();"
        "import hpcbatch.cli.client, hpcbatch.cli.render, hpcbatch.cli.commands._wait"
    )
    names = imported_modules(code)
    assert heavy_in(names) == []
    assert "hpcbatch.cli.wire" in names  # sanity: the scan sees real imports
    assert "http.client" not in names  # its email + ssl imports cost ~25 ms a call


def run_main(argv: list[str]) -> str:
    return f"from hpcbatch.cli.main import main; main({argv!r})"


def test_help_imports_no_signing_code() -> None:
    names = imported_modules(run_main(["--help"]))
    assert heavy_in(names) == []
    assert not {"hpcbatch.cli.credentials", "configparser", "ssl"} & names


def test_a_unix_endpoint_never_loads_credentials_or_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    names = imported_modules(run_main(["-e", "unix:///nonexistent/head.sock", "health"]))
    assert "hpcbatch.cli.wire" in names
    assert heavy_in(names) == []
    assert not {"configparser", "ssl", "hpcbatch.cli.signing"} & names


def test_botocore_is_imported_only_to_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    unsigned = imported_modules(run_main(["-e", "http://127.0.0.1:1", "health"]))
    assert heavy_in(unsigned) == []
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    signed = imported_modules(run_main(["-e", "http://127.0.0.1:1", "health"]))
    assert "botocore.auth" in signed  # sanity: the same scan does see it when it signs
    assert "botocore.session" not in signed  # a Session would cost ~40 ms more
