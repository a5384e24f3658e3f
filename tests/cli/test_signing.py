"""SigV4 on the wire: what the CLI sends is what it signed, checked by the stub as a head would
(the signature recomputed with botocore from the raw request it received)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpcbatch.cli import wire
from hpcbatch.cli.client import Client
from hpcbatch.cli.credentials import Credentials, Settings
from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead, job

KEY, SECRET = "AKIDALICE", "alice/secret+key"


@pytest.fixture
def signed_stub(stub: StubHead, monkeypatch: pytest.MonkeyPatch) -> StubHead:
    stub.keys = {KEY: SECRET}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return stub


def test_a_post_with_a_body_is_signed_and_verifies(signed_stub: StubHead) -> None:
    signed_stub.on("POST", "/v1/submitjob", {"jobId": "j1", "jobName": "x"})
    assert main(["submit", "-e", signed_stub.endpoint, "--name", "x", "--", "echo", "hé"]) == 0
    (call,) = signed_stub.calls()
    assert call.signer == KEY
    port = signed_stub.endpoint.rsplit(":", 1)[1]
    assert call.headers["host"] == f"127.0.0.1:{port}"  # a non-default port, signed as sent
    authorization = call.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    assert "/local/batch/aws4_request" in authorization
    assert "host" in authorization and "x-amz-date" in authorization
    assert call.body["containerOverrides"]["command"] == ["echo", "hé"]
    assert [name for name, _ in call.header_lines if name.lower() == "host"] == ["Host"]


def test_a_body_changed_after_signing_is_refused(
    signed_stub: StubHead, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stub's check is no rubber stamp: one byte changed on the wire and it refuses."""
    send = wire.Connection.request

    def tampered(
        self: wire.Connection, method: str, target: str, body: bytes | None, headers: Any
    ) -> wire.Response:
        return send(self, method, target, (body or b"").replace(b"echo", b"ECHO"), headers)

    monkeypatch.setattr(wire.Connection, "request", tampered)
    signed_stub.on("POST", "/v1/submitjob", {"jobId": "j1", "jobName": "x"})
    assert main(["submit", "-e", signed_stub.endpoint, "--", "echo", "hi"]) == 3
    assert "InvalidSignatureException" in capsys.readouterr().err


def test_a_get_with_a_query_that_needs_escaping_verifies(stub: StubHead) -> None:
    stub.keys = {KEY: SECRET}
    stub.on("GET", "/hpcbatch/v1/jobs/a:1/logs", {"data": ""})
    settings = Settings(Credentials(KEY, SECRET), "local", None)
    client = Client(stub.endpoint, settings=settings)
    try:
        client.get("/hpcbatch/v1/jobs/a:1/logs", {"q": "a b+c/é~*", "n": ["2", "1"], "a": 0})
    finally:
        client.close()
    (call,) = stub.calls()
    assert call.signer == KEY
    assert call.path.endswith("?q=a%20b%2Bc%2F%C3%A9~%2A&n=2&n=1&a=0")


def test_every_request_of_a_keep_alive_connection_is_signed(signed_stub: StubHead) -> None:
    signed_stub.on(
        "POST",
        "/v1/listjobs",
        {"jobSummaryList": [job("a", "RUNNING")], "nextToken": "t w+o"},
        {"jobSummaryList": [job("b", "RUNNING")]},
    )
    assert main(["jobs", "-e", signed_stub.endpoint]) == 0
    calls = signed_stub.calls()
    assert len(calls) == 2 and {call.signer for call in calls} == {KEY}
    assert calls[1].body["nextToken"] == "t w+o"


def test_the_region_is_the_signing_scope(
    signed_stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_stub.region = "lab-1"
    signed_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["health", "-e", signed_stub.endpoint, "--region", "lab-1"]) == 0
    assert signed_stub.calls()[0].signer == KEY
    assert main(["health", "-e", signed_stub.endpoint]) == 3  # signed for "local"
    assert "InvalidSignatureException" in capsys.readouterr().err


def test_a_wrong_secret_is_refused_by_the_head_with_exit_3(
    signed_stub: StubHead, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    signed_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["health", "-e", signed_stub.endpoint]) == 3
    err = capsys.readouterr().err.splitlines()
    assert "signature does not match" in err[0]
    assert err[1] == (
        f"hint: signed with access key {KEY} (from environment) for region 'local': "
        "check the secret, the region (--region) and this machine's clock"
    )


def test_an_unknown_key_is_named_in_the_hint(
    signed_stub: StubHead, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDGONE")
    assert main(["health", "-e", signed_stub.endpoint]) == 3
    assert capsys.readouterr().err.splitlines()[1] == (
        "hint: the head has no active access key AKIDGONE (from environment); "
        "'hpcbatch users list' shows the keys"
    )


def test_session_credentials_send_their_token(
    signed_stub: StubHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    signed_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["health", "-e", signed_stub.endpoint]) == 0
    call = signed_stub.calls()[0]
    assert call.signer == KEY and call.headers["x-amz-security-token"] == "tok"


def test_a_profile_signs_with_its_own_keys(
    signed_stub: StubHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_stub.keys["AKIDBOB"] = "bobsecret"
    credentials = tmp_path / "creds"
    credentials.write_text(
        "[bob]\naws_access_key_id = AKIDBOB\naws_secret_access_key = bobsecret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    signed_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["--profile", "bob", "health", "-e", signed_stub.endpoint]) == 0
    assert main(["health", "-e", signed_stub.endpoint]) == 0  # the environment's keys
    assert [call.signer for call in signed_stub.calls()] == ["AKIDBOB", KEY]


def test_a_missing_profile_is_a_usage_error_and_nothing_is_sent(
    signed_stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--profile", "nobody", "-e", signed_stub.endpoint]) == 2
    assert "'nobody'" in capsys.readouterr().err
    assert signed_stub.calls() == []


def test_without_credentials_the_request_goes_unsigned(stub: StubHead) -> None:
    stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["health", "-e", stub.endpoint]) == 0
    assert "authorization" not in stub.calls()[0].headers


def test_missing_authentication_adds_a_hint(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.require_signature = True
    assert main(["jobs", "-e", stub.endpoint]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: Missing Authentication Token"
    assert err[1].startswith("hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    assert "hpcbatch users add" in err[1] and len(err) == 2


def test_a_unix_socket_never_signs(unix_stub: StubHead, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_PROFILE", "nobody")  # not even looked up
    unix_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["health", "-e", unix_stub.endpoint]) == 0
    headers = unix_stub.calls()[0].headers
    assert "authorization" not in headers and "x-amz-date" not in headers
