"""End to end: a real head issues a key (``hpcbatch users add`` as root over loopback, where
the kernel names the caller) and then verifies the CLI's SigV4 signature with it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.cli.main import main
from tests.head.headproc import HeadProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="issuing keys takes an admin (root)")


@pytest.fixture
def real_head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=2, memory=2048)
    try:
        yield process.start()
    finally:
        process.cleanup()


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def test_a_key_issued_by_the_head_signs_the_clis_requests(
    real_head: HeadProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = ["-e", real_head.endpoint, "--json"]
    issued = run_json(capsys, "users", "add", "cli-e2e", "--unix-user", "root", *endpoint)
    key_id, secret = str(issued["accessKeyId"]), str(issued["secretAccessKey"])
    assert run_json(capsys, "whoami", *endpoint)["via"] == "peer"  # unsigned: the kernel says

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    me = run_json(capsys, "whoami", *endpoint)
    assert (me["user"], me["via"], me["accessKeyId"], me["admin"]) == ("root", "key", key_id, True)
    queues = run_json(capsys, "queues", *endpoint)
    assert [q["jobQueueName"] for q in queues["jobQueues"]] == ["default"]
    submitted = run_json(capsys, "submit", "--wait", *endpoint, "--", "true")  # polls signed too
    job_id = str(submitted["jobId"])
    assert main(["logs", job_id, "-e", real_head.endpoint]) == 0  # GET with a query, signed
    assert main(["describe", job_id, "--history", "-e", real_head.endpoint]) == 0
    capsys.readouterr()

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert main(["jobs", "-e", real_head.endpoint]) == 3
    err = capsys.readouterr().err.splitlines()
    assert "signature" in err[0] and err[1].startswith(f"hint: signed with access key {key_id}")
    assert main(["jobs", "-e", real_head.endpoint, "--region", "elsewhere"]) == 3
    assert "for region 'elsewhere'" in capsys.readouterr().err

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert main(["users", "disable-key", "cli-e2e", key_id, "-e", real_head.endpoint]) == 0
    assert main(["jobs", "-e", real_head.endpoint]) == 3  # signed with a disabled key
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"hint: the head has no active access key {key_id} (from environment); " + (
        "'hpcbatch users list' shows the keys"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")  # unsigned again: root by the kernel's word
    assert main(["users", "list", "-e", real_head.endpoint]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["NAME", "UNIX-USER", "KEY", "STATUS", "CREATED"]
    assert rows[1][:4] == ["cli-e2e", "root", key_id, "Inactive"] and len(rows[1]) == 6
