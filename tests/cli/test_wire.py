"""The minimal HTTP client: every framing a head (uvicorn or a proxy) may answer with."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from hpcbatch.cli.main import main
from hpcbatch.cli.wire import WireProtocolError, read_response, split_host_port


def parse(raw: bytes, method: str = "POST") -> tuple[int, bytes, bool]:
    response = read_response(io.BytesIO(raw), method)
    return response.status, response.body, response.will_close


def test_content_length_and_keep_alive() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}EXTRA"
    assert parse(raw) == (200, b"{}", False)


def test_chunked_with_extensions_and_trailers() -> None:
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{"a\r\n4\r\n":1}\r\n0\r\nT: v\r\n\r\n'
    assert parse(raw) == (200, b'{"a":1}', False)


def test_close_framed_body_and_http_1_0() -> None:
    assert parse(b"HTTP/1.0 200 OK\r\n\r\n{}") == (200, b"{}", True)
    raw = b"HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    assert parse(raw) == (400, b"{}", True)


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    assert parse(raw) == (204, b"", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    ],
)
def test_malformed_answers_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(WireProtocolError):
        parse(raw)


def test_host_port_forms() -> None:
    assert split_host_port("head:7650", 80) == ("head", 7650)
    assert split_host_port("[::1]:7650", 80) == ("::1", 7650)
    assert split_host_port("head", 80) == ("head", 80)


RawServer = Callable[..., str]


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    """``raw_server(b"...", ...)``: a TCP endpoint answering each connection with the next
    canned bytes (whatever was asked), then hanging up."""
    listener = socket.create_server(("127.0.0.1", 0))
    threads: list[threading.Thread] = []

    def answer_all(answers: tuple[bytes, ...]) -> None:
        for answer in answers:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the test is over and closed the listener
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    def start(*answers: bytes) -> str:
        thread = threading.Thread(target=answer_all, args=(answers,), daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    listener.close()
    for thread in threads:
        thread.join(timeout=5)


def test_a_non_http_peer_is_a_server_error(
    raw_server: RawServer, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = raw_server(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert main(["health", "-e", endpoint]) == 5
    assert "malformed HTTP answer" in capsys.readouterr().err


def test_a_peer_that_hangs_up_is_unreachable(
    raw_server: RawServer, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = raw_server(b"")
    assert main(["health", "-e", endpoint]) == 4
    assert "closed the connection" in capsys.readouterr().err


def test_a_chunked_error_answer_is_decoded(
    raw_server: RawServer, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"__type":"ClientException","message":"no such node: n9"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    endpoint = raw_server(
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    )
    assert main(["nodes", "drain", "n9", "-e", endpoint]) == 3
    assert capsys.readouterr().err == "error: no such node: n9\n"
