"""Exit codes scripts can trust, and the endpoint rules (flag, env, default, unix socket)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead


def test_client_exception_exits_3_with_the_message(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.fail("POST", "/v1/submitjob", 400, "ClientException", "jobQueue: no such queue 'nope'")
    assert main(["submit", "-e", stub.endpoint, "-q", "nope"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: jobQueue: no such queue 'nope'\n"


def test_server_exception_exits_5(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.fail("POST", "/v1/listjobs", 500, "ServerException", "store is read-only")
    assert main(["jobs", "-e", stub.endpoint]) == 5
    assert "store is read-only" in capsys.readouterr().err


def test_auth_error_is_a_client_error(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.fail("POST", "/v1/listjobs", 403, "UnrecognizedClientException", "bad signature")
    assert main(["jobs", "-e", stub.endpoint]) == 3
    assert "bad signature" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_exits_4_naming_the_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    assert main(["jobs", "--endpoint", endpoint]) == 4
    err = capsys.readouterr().err
    assert endpoint in err and "Connection refused" in err


def test_missing_unix_socket_exits_4(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["nodes", "-e", f"unix://{tmp_path}/none.sock"]) == 4
    assert "none.sock" in capsys.readouterr().err


def test_unix_socket_endpoint_speaks_http(
    unix_stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    unix_stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "0.1.0"})
    assert main(["health", "-e", unix_stub.endpoint]) == 0
    assert capsys.readouterr().out.startswith("ok (hpcbatch 0.1.0")


def test_endpoint_comes_from_the_environment(
    stub: StubHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    monkeypatch.setenv("HPCBATCH_ENDPOINT", stub.endpoint)
    assert main(["health"]) == 0
    assert len(stub.calls()) == 1


def test_flag_before_the_command_counts_too(stub: StubHead) -> None:
    stub.on("GET", "/hpcbatch/v1/health", {"status": "ok", "version": "x"})
    assert main(["--endpoint", stub.endpoint, "-o", "json", "health"]) == 0
    assert len(stub.calls()) == 1


def test_default_endpoint_is_the_local_head(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import hpcbatch.cli.client as client

    seen: list[str] = []
    monkeypatch.setattr(
        client.Client, "get", lambda self, path, query=None: seen.append(self.endpoint) or {}
    )
    socket = tmp_path / "head.sock"
    monkeypatch.setattr(client, "DEFAULT_SOCKET", str(socket))
    monkeypatch.setattr(client, "DEFAULT_ENDPOINT", f"unix://{socket}")
    socket.touch()  # a head's socket is there: the CLI calls it
    assert main(["health"]) == 0
    socket.unlink()  # none (a head run by a plain user serves none): its loopback port
    assert main(["health"]) == 0
    assert seen == [f"unix://{socket}", "http://127.0.0.1:7650"]


def test_no_head_at_the_default_socket_says_how_to_name_another(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import hpcbatch.cli.client as client

    monkeypatch.setattr(client, "DEFAULT_SOCKET", f"{tmp_path}/head.sock")
    monkeypatch.setattr(client, "FALLBACK_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert main(["health"]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: cannot reach the head at {client.FALLBACK_ENDPOINT}: " + (
        "Connection refused"
    )
    assert err[1].startswith("hint: by default the CLI calls the head's socket")
    assert main(["health", "-e", f"unix://{tmp_path}/other.sock"]) == 4
    assert len(capsys.readouterr().err.splitlines()) == 1  # an endpoint given: no hint


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["jobs", "--state", "DONE"],
        ["jobs", "--", "extra"],
        ["health", "--endpoint", "ftp://host"],
        ["health", "--endpoint", "unix:relative.sock"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_help_exits_0_and_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "ClientException" in out


def test_a_dropped_keepalive_connection_is_reopened(stub: StubHead) -> None:
    """The head may close an idle keep-alive connection between two polls."""
    from hpcbatch.cli.client import Client

    stub.on("GET", "/hpcbatch/v1/health", {"status": "ok"})
    client = Client(stub.endpoint)
    assert client.get("/hpcbatch/v1/health") == {"status": "ok"}
    assert client._conn is not None and client._conn._sock is not None
    client._conn._sock.shutdown(socket.SHUT_RDWR)  # as if the server had hung up
    assert client.get("/hpcbatch/v1/health") == {"status": "ok"}
    client.close()


def test_every_command_module_is_reachable_by_name() -> None:
    """The one-parser fast path and the full parser must agree on every command and alias."""
    from hpcbatch.cli.commands import COMMAND_MODULES, MODULE_OF
    from hpcbatch.cli.main import build_parser, command_name

    full = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(full) == set(MODULE_OF)
    assert set(MODULE_OF.values()) == set(COMMAND_MODULES)
    assert command_name(["-e", "http://h:1", "-o", "json", "jobs", "-a"]) == "jobs"
    assert command_name(["--help"]) is None
