"""The CLI starts fast because it imports nothing heavy: checked by behaviour, not timing."""

from __future__ import annotations

import subprocess
import sys

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
