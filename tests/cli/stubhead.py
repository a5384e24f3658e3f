"""A stub head for CLI tests: a real HTTP server on 127.0.0.1 (or a unix socket) in a thread.

It records every request (method, path, headers, JSON body) and answers from a script the test
sets up: ``stub.on("POST", "/v1/submitjob", {...})`` queues one answer (the last one repeats),
``stub.fail(...)`` answers an AWS-shaped error. Anything unscripted gets a 404 ClientException,
so a test never passes because of a default it did not mean.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Answer = tuple[int, dict[str, Any]]


@dataclass
class Recorded:
    method: str
    path: str  # the raw path, query string included
    headers: dict[str, str]
    body: Any

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]


class StubHead:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: dict[tuple[str, str], list[Answer | Callable[[Recorded], Answer]]] = {}
        self._lock = threading.Lock()
        self.endpoint = ""

    def on(
        self, method: str, route: str, *answers: dict[str, Any] | Callable[[Recorded], Answer]
    ) -> None:
        """Answer ``route`` with 200 and each body in turn; the last one repeats."""
        queued = [a if callable(a) else (200, a) for a in answers]
        self._script.setdefault((method, route), []).extend(queued)

    def fail(self, method: str, route: str, status: int, error_type: str, message: str) -> None:
        self._script.setdefault((method, route), []).append(
            (status, {"__type": error_type, "message": message})
        )

    def calls(self, route: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if route is None or r.route == route]

    def answer(self, recorded: Recorded) -> Answer:
        with self._lock:
            self.requests.append(recorded)
            queue = self._script.get((recorded.method, recorded.route))
            if not queue:
                return 404, {
                    "__type": "ClientException",
                    "message": f"stub: no route {recorded.route}",
                }
            entry = queue.pop(0) if len(queue) > 1 else queue[0]
        return entry(recorded) if callable(entry) else entry


def make_handler(stub: StubHead) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn does

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, document = stub.answer(Recorded(self.command, self.path, headers, body))
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status != 200:
                self.send_header("x-amzn-ErrorType", document.get("__type", ""))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass  # keep test output clean; a unix peer has no address to print anyway

    return Handler


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def tcp_server(head: StubHead) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(head))
    server.daemon_threads = True
    head.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    return server


def unix_server(head: StubHead, path: Path) -> socketserver.BaseServer:
    server = _UnixHTTPServer(str(path), make_handler(head))
    head.endpoint = f"unix://{path}"
    return server


def job(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeJobs/ListJobs job, AWS-shaped, with only what a test cares about."""
    return {"jobId": job_id, "jobName": extra.pop("jobName", "j"), "status": status, **extra}
