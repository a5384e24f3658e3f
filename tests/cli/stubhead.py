"""A stub head for CLI tests: a real HTTP server on 127.0.0.1 (or a unix socket) in a thread.

It records every request (method, path, headers, JSON body) and answers from a script the test
sets up: ``stub.on("POST", "/v1/submitjob", {...})`` queues one answer (the last one repeats),
``stub.fail(...)`` answers an AWS-shaped error. Anything unscripted gets a 404 ClientException,
so a test never passes because of a default it did not mean.

With ``stub.keys`` set ({access key id: secret}) it checks every signed request as a head would
(:mod:`tests.cli.sigcheck`, from the raw bytes received), records who signed it in
``Recorded.signer`` and refuses a bad signature with AWS's 403; ``stub.require_signature``
refuses unsigned requests too (``MissingAuthenticationTokenException``).
``tls_server`` serves https with a given certificate.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import ssl
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
    raw_body: bytes = b""
    signer: str | None = None  # the access key id of a verified signature
    header_lines: tuple[tuple[str, str], ...] = ()  # as received, repeats included

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]


class StubHead:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: dict[tuple[str, str], list[Answer | Callable[[Recorded], Answer]]] = {}
        self._lock = threading.Lock()
        self.endpoint = ""
        self.keys: dict[str, str] = {}
        self.region = "local"
        self.require_signature = False

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

    def authenticate(self, recorded: Recorded) -> Answer | None:
        """None when the request may proceed (``recorded.signer`` set if it was signed)."""
        from tests.cli.sigcheck import SignatureRefused, verify

        if "authorization" not in recorded.headers:
            if not self.require_signature:
                return None
            return 403, {
                "__type": "MissingAuthenticationTokenException",
                "message": "Missing Authentication Token",
            }
        try:
            verified = verify(
                recorded.method,
                recorded.path,
                recorded.headers,
                recorded.raw_body,
                self.keys,
                self.region,
            )
        except SignatureRefused as exc:
            return 403, {"__type": exc.aws_type, "message": str(exc)}
        recorded.signer = verified.access_key
        return None

    def answer(self, recorded: Recorded) -> Answer:
        refusal = self.authenticate(recorded) if self.keys or self.require_signature else None
        with self._lock:
            self.requests.append(recorded)
            if refusal is not None:
                return refusal
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
            lines = tuple(self.headers.items())
            recorded = Recorded(self.command, self.path, headers, body, raw, header_lines=lines)
            status, document = stub.answer(recorded)
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


def tls_server(head: StubHead, cert: Path, key: Path) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(head))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # A client that refuses the certificate fails the handshake inside accept(), which
    # socketserver swallows (OSError): the stub keeps serving.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    head.endpoint = f"https://127.0.0.1:{server.server_address[1]}"
    return server


def unix_server(head: StubHead, path: Path) -> socketserver.BaseServer:
    server = _UnixHTTPServer(str(path), make_handler(head))
    head.endpoint = f"unix://{path}"
    return server


def job(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeJobs/ListJobs job, AWS-shaped, with only what a test cares about."""
    return {"jobId": job_id, "jobName": extra.pop("jobName", "j"), "status": status, **extra}
