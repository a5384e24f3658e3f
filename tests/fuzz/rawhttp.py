"""Plain sockets against a real head, for what no HTTP client library will send: a body that
never ends, headers one byte at a time, a thousand connections that say nothing.

``Probe`` is the well-behaved client meanwhile: a fresh connection per request (so accepting
is tested too), asked again and again until a deadline, and what it got is kept.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx

DEADLINE_S = 20.0  # "answered within a generous deadline": no timing asserts beyond it


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(port: int, timeout: float = DEADLINE_S) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, path: str, length: int | None, extra: str = "") -> bytes:
    size = "" if length is None else f"Content-Length: {length}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: head\r\n{size}{extra}\r\n".encode()


def read_response(sock: socket.socket) -> RawResponse | None:
    """One HTTP/1.1 response with a Content-Length (as the head sends), or None when the head
    closed the connection before answering."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(lines[0].split()[1]), headers, body[:length])


def exchange(port: int, raw: bytes) -> RawResponse | None:
    with connect(port) as sock:
        sock.sendall(raw)
        return read_response(sock)


def raise_own_file_limit(wanted: int) -> bool:
    """This test process's soft RLIMIT_NOFILE raised to ``wanted`` if its hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return True
    if hard != resource.RLIM_INFINITY and hard < wanted:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return True


@dataclass
class Probe:
    """A normal client asking the head again and again in a thread until stopped: each answer
    (status, seconds) is kept; an answer that never came is an ``error``."""

    endpoint: str
    answers: list[tuple[int, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def ask(self) -> int:
        started = time.monotonic()
        response = httpx.post(f"{self.endpoint}/v1/describejobqueues", json={}, timeout=DEADLINE_S)
        self.answers.append((response.status_code, time.monotonic() - started))
        return response.status_code

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ask()
            except httpx.HTTPError as error:
                self.errors.append(repr(error))
            self._stop.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(DEADLINE_S + 5)

    def wait_answers(self, count: int) -> None:
        """Until ``count`` more answers came (each within the deadline, or it fails)."""
        target = len(self.answers) + count
        deadline = time.monotonic() + DEADLINE_S * count
        while len(self.answers) < target:
            assert not self.errors, f"the normal client got no answer: {self.errors}"
            assert time.monotonic() < deadline, f"only {len(self.answers)} answers"
            time.sleep(0.02)

    def check(self) -> None:
        assert not self.errors, f"the normal client got no answer: {self.errors}"
        assert self.answers, "the normal client was never answered"
        assert all(status == 200 for status, _ in self.answers), self.answers
