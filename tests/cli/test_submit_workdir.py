"""``hpcbatch submit`` sends where the job runs: the current directory by default, ``--workdir
DIR`` (a relative DIR from the current directory), or none with ``--workdir attempt``; always in
the ``x-hpcbatch-workdir`` header, percent-encoded, never in the body boto3 would send."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead

SUBMITTED = {"jobArn": "arn:aws:batch:local:0:job/J1", "jobName": "prepare", "jobId": "J1"}
HEADER = "x-hpcbatch-workdir"


def _submit(stub: StubHead, *flags: str) -> dict[str, str]:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "--endpoint", stub.endpoint, *flags, "--", "./prepare.sh"]) == 0
    request = stub.calls()[-1]
    assert request.body == {
        "jobName": "prepare-sh",
        "jobQueue": "default",
        "jobDefinition": "default",
        "containerOverrides": {"command": ["./prepare.sh"]},
    }
    return request.headers


def test_the_default_workdir_is_the_current_directory(
    stub: StubHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "my project 100%"
    here.mkdir()
    monkeypatch.chdir(here)
    sent = _submit(stub)[HEADER]
    assert sent == os.getcwd().replace("%", "%25").replace(" ", "%20")
    assert sent.endswith("/my%20project%20100%25")


def test_a_workdir_is_absolute_whatever_was_typed(
    stub: StubHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _submit(stub, "--workdir", "runs/é")[HEADER] == f"{tmp_path}/runs/%C3%A9"
    assert _submit(stub, "--workdir", "/scratch/x")[HEADER] == "/scratch/x"


def test_workdir_attempt_sends_none(stub: StubHead) -> None:
    assert HEADER not in _submit(stub, "--workdir", "attempt")


def test_a_current_directory_that_is_gone_is_a_usage_error(
    stub: StubHead,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert main(["submit", "--endpoint", stub.endpoint, "--", "true"]) == 2
    assert stub.calls() == []
    assert capsys.readouterr().err == (
        "error: the current directory cannot be read (No such file or directory); "
        "give --workdir DIR or --workdir attempt\n"
    )
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "--endpoint", stub.endpoint, "--workdir", "attempt", "--", "true"]) == 0
    assert HEADER not in stub.calls()[-1].headers
