"""Raw HTTP abuse against a real head process (uvicorn, the auth layer, the loop, a LOCAL
node): malformed JSON, a 50 MB body (with a length and chunked), bodies cut short, headers one
byte at a time, 1,000 idle connections. Meanwhile a normal client keeps being answered (within
a generous deadline: no timing asserts beyond it); the head never answers 5xx for any of it,
never exits, and afterwards still answers normally.

The head is started with a soft open-file limit of 1,024 (a common default), so the 1,000
connections would exhaust it unless the head raises its own soft limit to the hard one at
start, as it does.

A request head that never ends (a header or URL of 32 MB) must be cut off: uvicorn's
httptools protocol would keep all of it; the head answers 431 past 64 KiB and closes.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.fuzz.rawhttp import (
    Probe,
    RawResponse,
    connect,
    exchange,
    raise_own_file_limit,
    read_response,
    request_head,
)
from tests.head.headproc import HeadProcess

IDLE_CONNECTIONS = 1000
COMMON_SOFT_LIMIT = 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path_factory.mktemp("abuse") / "head", nodes=1, vcpus=2)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        # the head inherits a common default soft limit: it must raise its own
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, COMMON_SOFT_LIMIT), hard))
        try:
            process.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        yield process
        assert process.proc is not None and process.proc.poll() is None, "the head exited"
        log = process.log.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        process.cleanup()


def check_aws_error(response: RawResponse | None, what: str) -> None:
    assert response is not None, f"{what}: the head closed the connection without an answer"
    assert 400 <= response.status < 500, f"{what}: {response.status} {response.body[:300]!r}"
    error = json.loads(response.body)
    assert set(error) == {"__type", "message"}, error
    assert response.headers["x-amzn-errortype"] == error["__type"]


def still_well(head: HeadProcess) -> None:
    assert head.proc is not None and head.proc.poll() is None, "the head exited"
    assert Probe(head.endpoint).ask() == 200


MALFORMED = [
    b"{",
    b'{"jobName": "j",}',
    b"\xff\xfe\x00{",
    b'{"jobs": ["a", NaN]}',
    b'{"jobs": ["\xc3\x28"]}',
    b'{"jobs": ["\\ud800"]}',
    b"[" * 100_000,
    b'{"jobs": ' + b"9" * 5000 + b"}",
    b"\x00" * 1000,
    b"null",
]


@pytest.mark.parametrize("path", ["/v1/describejobs", "/v1/submitjob", "/v1/tags/arn%3Ax"])
def test_malformed_json_is_a_4xx_in_aws_shape(head: HeadProcess, path: str) -> None:
    for body in MALFORMED:
        raw = request_head("POST", path, len(body)) + body
        check_aws_error(exchange(head.port, raw), f"{path} {body[:40]!r}")
    still_well(head)


# Framing no client library sends: each must be a 4xx or a closed connection, never a 5xx.
BAD_FRAMING = [
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
    b"\r\n{}",
    b"POST /v1/describejobs HTTP/9.9\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/describejobs\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello to plain HTTP
    b"GET /hpcbatch/v1/health HTTP/1.1\r\nHost: h\r\n\r\n" * 50,  # pipelined
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nX: \xff\x00\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 \xff\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    b"POST /v1/describejobs HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 "
    b"Credential=\xff/\x00, SignedHeaders=host;;, Signature=zz\r\nContent-Length: 2\r\n\r\n{}",
]


@pytest.mark.parametrize("raw", BAD_FRAMING, ids=range(len(BAD_FRAMING)))
def test_bad_framing_is_a_4xx_or_a_close(head: HeadProcess, raw: bytes) -> None:
    with connect(head.port) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        while True:  # every answer on the connection (pipelined ones too) until it closes
            try:
                answer = read_response(sock)
            except OSError:
                break
            if answer is None:
                break
            assert answer.status < 500, f"{answer.status} {answer.body[:300]!r}"
    still_well(head)


def _send_all(sock: socket.socket, chunks: Iterator[bytes]) -> None:
    """Send until the head stops reading: it answers and closes once it has refused."""
    with contextlib.suppress(OSError):
        for chunk in chunks:
            sock.sendall(chunk)


def _fifty_mb(chunked: bool) -> Iterator[bytes]:
    block = b"x" * MB
    for _ in range(50):
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_refused_while_others_are_answered(
    head: HeadProcess, chunked: bool
) -> None:
    extra = "Transfer-Encoding: chunked\r\n" if chunked else ""
    with Probe(head.endpoint) as probe, connect(head.port) as sock:
        sock.sendall(request_head("POST", "/v1/submitjob", None if chunked else 50 * MB, extra))
        sender = threading.Thread(target=_send_all, args=(sock, _fifty_mb(chunked)))
        sender.start()
        try:
            check_aws_error(read_response(sock), "a 50 MB body")
        finally:
            sock.shutdown(socket.SHUT_RDWR)
            sender.join(30)
        probe.wait_answers(3)
    probe.check()
    still_well(head)


def test_truncated_bodies_then_close_leave_the_head_well(head: HeadProcess) -> None:
    with Probe(head.endpoint) as probe:
        for index in range(50):
            with connect(head.port) as sock:
                body = b'{"jobName": "j", "jobQueue": "default", "jobDef'
                sock.sendall(request_head("POST", "/v1/submitjob", 1000 + index) + body)
                if index % 2:
                    sock.shutdown(socket.SHUT_WR)  # half-closed: the rest never comes
        probe.wait_answers(3)
    probe.check()
    still_well(head)


def _slowly(port: int, raw: bytes, results: list[RawResponse | None]) -> None:
    with connect(port) as sock:
        for index in range(len(raw)):
            sock.sendall(raw[index : index + 1])
            threading.Event().wait(0.005)  # a slow client's pace, not a wait for a result
        results.append(read_response(sock))


def test_slow_clients_do_not_stall_the_others(head: HeadProcess) -> None:
    body = b'{"jobs": ["nope"]}'
    raw = request_head("POST", "/v1/describejobs", len(body)) + body
    results: list[RawResponse | None] = []
    slow = [threading.Thread(target=_slowly, args=(head.port, raw, results)) for _ in range(20)]
    with Probe(head.endpoint) as probe:
        for thread in slow:
            thread.start()
        probe.wait_answers(5)
        for thread in slow:
            thread.join(60)
    probe.check()
    assert [r.status if r else None for r in results] == [200] * 20
    still_well(head)


def test_1000_idle_connections_do_not_stall_the_others(head: HeadProcess) -> None:
    if not raise_own_file_limit(IDLE_CONNECTIONS + 200):
        pytest.skip(f"this process may not hold {IDLE_CONNECTIONS} sockets (hard limit)")
    idle: list[socket.socket] = []
    try:
        with Probe(head.endpoint) as probe:
            for index in range(IDLE_CONNECTIONS):
                sock = connect(head.port)
                if index % 10 == 0:  # some say half a request and stop
                    sock.sendall(b"POST /v1/describejobs HTTP/1.1\r\nHost: he")
                idle.append(sock)
            probe.wait_answers(5)
        probe.check()
        still_well(head)
    finally:
        for sock in idle:
            sock.close()
    still_well(head)


HEAD_LIMIT_MB = 12  # refused well before this (socket buffers take a few MB before a close shows)
ENDLESS_MB = 32


@pytest.mark.parametrize(
    ("first", "start"),
    [
        (False, b"POST /v1/describejobs HTTP/1.1\r\nX-A: "),
        (False, b"GET /?a="),
        (True, b"POST /v1/describejobs HTTP/1.1\r\nX-A: "),
    ],
    ids=["header", "url", "header-after-a-request"],
)
def test_a_request_head_that_never_ends_is_cut_off(
    head: HeadProcess, first: bool, start: bytes
) -> None:
    block = b"a" * MB
    sent = 0
    with Probe(head.endpoint) as probe, connect(head.port) as sock:
        if first:  # the connection's second request: the limit holds for every request
            sock.sendall(b"GET /hpcbatch/v1/health HTTP/1.1\r\nHost: head\r\n\r\n")
            answer = read_response(sock)
            assert answer is not None and answer.status == 200, answer
        sock.sendall(start)
        with contextlib.suppress(OSError):  # the head closed on us: what it should do
            while sent < ENDLESS_MB:
                sock.sendall(block)
                sent += 1
            sock.sendall(b"\r\n\r\n")
        with contextlib.suppress(OSError):
            answer = read_response(sock)
            assert answer is None or 400 <= answer.status < 500, answer
        probe.wait_answers(2)
    probe.check()
    still_well(head)
    assert sent <= HEAD_LIMIT_MB, f"the head took {sent} MB of one request's head"
