"""A minimal HTTP/1.1 client connection over TCP, TLS or a unix socket.

Why not ``http.client``: importing it pulls in ``email`` and ``ssl``, about 25 ms on every
``hpcbatch`` call, a third of a whole submission. The CLI needs far less: one request at a
time on a keep-alive connection, JSON bodies, and responses framed by Content-Length, chunked
encoding or connection close. That is all this module does.

Vocabulary: a **connection** is one socket to the head, reused across requests until either
side closes it; a **response** is status, headers (names lower-cased) and the whole body.
Failures: ``OSError`` (socket level; ``ConnectionResetError`` when the head closed the
connection before answering; ``ssl.SSLCertVerificationError`` when an https head's certificate
fails verification; :class:`CABundleError` when the CA bundle cannot be loaded) or
``WireProtocolError`` (the bytes are not HTTP).

TLS (https): the certificate is always verified, against the CA bundle given (that file alone,
as the aws CLI does with ``AWS_CA_BUNDLE``), else the system's CAs; ``ssl`` is imported only
then (~9 ms).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536
MAX_HEADERS = 200


class WireProtocolError(Exception):
    """The peer answered something that is not a well-formed HTTP/1.x response."""


class CABundleError(OSError):
    """The CA bundle named for an https endpoint cannot be loaded."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    will_close: bool


class Connection:
    """``scheme`` is http, https or unix; ``address`` is HOST:PORT or the socket path."""

    def __init__(
        self, scheme: str, address: str, timeout: float, ca_bundle: str | None = None
    ) -> None:
        self.scheme = scheme
        self.address = address
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.host_header = "localhost" if scheme == "unix" else address
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        if self._sock is None:
            self._connect()
        assert self._sock is not None and self._file is not None
        lines = [f"{method} {target} HTTP/1.1"]
        if not any(name.lower() == "host" for name in headers):  # a signed request brings its own
            lines.append(f"Host: {self.host_header}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._sock.sendall(head + (body or b""))  # one write: no Nagle / delayed-ACK stall
        return read_response(self._file, method)

    def _connect(self) -> None:
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
        else:
            host, port = split_host_port(self.address, 443 if self.scheme == "https" else 80)
            context = self._tls_context() if self.scheme == "https" else None
            sock = socket.create_connection((host, port), timeout=self.timeout)
            if context is not None:
                try:
                    sock = context.wrap_socket(sock, server_hostname=host)
                except OSError:
                    sock.close()
                    raise
        self._sock = sock
        self._file = sock.makefile("rb")

    def _tls_context(self) -> ssl.SSLContext:
        import ssl  # only https pays for it

        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except OSError as exc:  # ssl.SSLError is one too: a file that holds no certificate
            reason = exc.strerror or str(exc)
            raise CABundleError(f"cannot load the CA bundle {self.ca_bundle}: {reason}") from exc


def split_host_port(netloc: str, default_port: int) -> tuple[str, int]:
    """``host:7650`` / ``[::1]:7650`` / ``host`` -> (host, port)."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise WireProtocolError(f"bad port in {netloc!r}") from None


def read_response(stream: BinaryIO, method: str) -> Response:
    while True:
        status, version = read_status_line(stream)
        headers = read_headers(stream)
        if not 100 <= status < 200:  # skip interim answers such as 100 Continue
            break
    close = headers.get("connection", "").lower() == "close" or (
        version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive"
    )
    if method == "HEAD" or status in (204, 304):
        return Response(status, headers, b"", close)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, headers, read_chunked(stream), close)
    if "content-length" in headers:
        length = parse_int(headers["content-length"], 10)
        return Response(status, headers, read_exactly(stream, length), close)
    return Response(status, headers, stream.read(), True)  # framed by the close itself


def read_status_line(stream: BinaryIO) -> tuple[int, str]:
    line = stream.readline(MAX_LINE + 1)
    if not line:
        # Closed before a byte of answer: typically an idle keep-alive connection the head
        # dropped. The caller may retry that case, so it must look like a reset.
        raise ConnectionResetError("the head closed the connection without answering")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise WireProtocolError(f"not an HTTP status line: {line[:80]!r}")
    return parse_int(parts[1], 10), parts[0]


def read_headers(stream: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = stream.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise WireProtocolError("connection closed inside the response headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise WireProtocolError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise WireProtocolError("too many response headers")


def read_chunked(stream: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = stream.readline(MAX_LINE + 1)
        if not size_line:
            raise WireProtocolError("connection closed inside a chunked body")
        size = parse_int(size_line.split(b";", 1)[0].strip().decode("latin-1"), 16)
        if size == 0:
            read_headers(stream)  # trailers, then the blank line that ends the message
            return b"".join(parts)
        parts.append(read_exactly(stream, size))
        read_exactly(stream, 2)  # the CRLF after each chunk


def read_exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise WireProtocolError(f"body cut short: {len(data)} of {length} bytes")
    return data


def parse_int(text: str, base: int) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise WireProtocolError(f"bad number in HTTP framing: {text!r}") from None
    if value < 0:
        raise WireProtocolError(f"negative number in HTTP framing: {text!r}")
    return value
