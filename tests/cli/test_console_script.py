"""The installed ``hpcbatch`` console script, run as a user would, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.stubhead import StubHead

SCRIPT = shutil.which("hpcbatch", path=str(Path(sys.executable).parent)) or "hpcbatch"


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_submit_through_the_console_script(stub: StubHead) -> None:
    stub.on("POST", "/v1/submitjob", {"jobArn": "arn:j", "jobName": "sleep", "jobId": "J9"})
    result = run("submit", "--", "sleep", "1", env={"HPCBATCH_ENDPOINT": stub.endpoint})
    assert (result.returncode, result.stdout) == (0, "J9\n")
    assert stub.calls()[0].body["containerOverrides"] == {"command": ["sleep", "1"]}


def test_refusal_through_the_console_script(stub: StubHead) -> None:
    stub.fail("POST", "/v1/describejobs", 400, "ClientException", "jobs: at most 100 ids")
    result = run("describe", "x", "--endpoint", stub.endpoint)
    assert result.returncode == 3
    assert result.stderr == "error: jobs: at most 100 ids\n"


@pytest.mark.parametrize(("argv", "code"), [(("--help",), 0), (("jobs", "--bogus"), 2)])
def test_help_and_usage_codes(argv: tuple[str, ...], code: int) -> None:
    assert run(*argv).returncode == code
