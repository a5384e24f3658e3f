"""The CLI's HTTP client for the head: AWS Batch REST-JSON plus hpcbatch's own routes.

Vocabulary:
- **endpoint**: where the head listens, ``http://HOST:PORT[/prefix]`` or
  ``unix:///path/to/socket`` (``unix:/path`` too, the form ``hpcbatch head --listen`` takes).
- **operation**: an AWS Batch action (``SubmitJob``), always ``POST /v1/<name lower-cased>``.
- **route**: one of hpcbatch's own paths under ``/hpcbatch/v1`` (nodes, logs, history, health).
- **settings**: credentials, region and CA bundle (:mod:`hpcbatch.cli.credentials`). A request
  to an http(s) endpoint is signed with SigV4 (:mod:`hpcbatch.cli.signing`) when there are
  credentials, and sent unsigned otherwise (a loopback head knows the caller from the kernel);
  a unix-socket endpoint never signs: the head reads the caller's uid from the socket.

Failures map onto the one error hierarchy of :mod:`hpcbatch.errors`, which main() turns into
exit codes: ``ClientError`` (HTTP 4xx, AWS ``ClientException``), ``ServerError`` (HTTP 5xx or an
answer that breaks the contract) and ``HeadUnreachableError`` (no connection at all).

Stdlib only, and nothing imported that a command does not need: every CLI call pays for it
(hence :mod:`hpcbatch.cli.wire` rather than ``http.client``).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpcbatch.cli.wire import Connection, Response, WireProtocolError
from hpcbatch.errors import ClientError, HpcbatchError, ServerError, TransportError

if TYPE_CHECKING:
    from hpcbatch.cli.credentials import Settings

Json = dict[str, Any]
Query = Mapping[str, str | int | Sequence[str]]

DEFAULT_SOCKET = "/run/hpcbatch/head.sock"  # a root head's (hpcbatch.head.config.ROOT_SOCKET)
DEFAULT_ENDPOINT = f"unix://{DEFAULT_SOCKET}"
# Where no head socket exists (a head run by a plain user serves none): its loopback TCP
# address, where the head learns the caller from the kernel's socket table instead.
FALLBACK_ENDPOINT = "http://127.0.0.1:7650"


def default_endpoint() -> str:
    return DEFAULT_ENDPOINT if os.path.exists(DEFAULT_SOCKET) else FALLBACK_ENDPOINT


ENDPOINT_ENV = "HPCBATCH_ENDPOINT"
STRICT_HEADER = "x-hpcbatch-strict"
DEFAULT_TIMEOUT_S = 60.0
USER_AGENT = "hpcbatch-cli/0.1"
MISSING_AUTH_HINT = (
    "hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (--profile, "
    "AWS_PROFILE, ~/.aws/credentials); an admin issues keys with "
    "'hpcbatch users add NAME --unix-user USER'"
)


class HeadUnreachableError(TransportError):
    """No answer from the head: refused, no such socket, unknown host, timed out."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"cannot reach the head at {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class EndpointError(ValueError):
    """The endpoint string itself is malformed (a usage error, exit 2)."""


def parse_endpoint(endpoint: str) -> tuple[str, str, str]:
    """Split an endpoint into (scheme, address, path prefix); scheme is http, https or unix."""
    if endpoint.startswith("unix:"):
        path = endpoint[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise EndpointError(f"unix endpoint needs an absolute socket path: {endpoint!r}")
        return "unix", path, ""
    if "://" not in endpoint:
        endpoint = "http://" + endpoint  # people type host:port
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(f"endpoint must be http://HOST:PORT or unix:///PATH, not {endpoint!r}")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


class Client:
    """One keep-alive connection to the head, reopened when the head drops it."""

    def __init__(
        self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, settings: Settings | None = None
    ) -> None:
        self.endpoint = endpoint
        self.scheme, self.address, self.prefix = parse_endpoint(endpoint)
        self.timeout = timeout
        self.settings = None if self.scheme == "unix" else settings
        self._conn: Connection | None = None
        self._used = False  # a reused connection may have been closed by the head meanwhile

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(
        self, operation: str, body: Json | None = None, headers: Mapping[str, str] | None = None
    ) -> Json:
        """Run one AWS Batch operation, e.g. ``call("SubmitJob", {...})``."""
        return self.request("POST", "/v1/" + operation.lower(), body or {}, headers=headers)

    def paginate(self, operation: str, body: Json, list_key: str) -> Iterator[Json]:
        """Yield every item of ``list_key`` across pages, following ``nextToken``."""
        request = dict(body)
        while True:
            page = self.call(operation, request)
            yield from page.get(list_key) or []
            token = page.get("nextToken")
            if not token:
                return
            request["nextToken"] = token

    def get(self, path: str, query: Query | None = None) -> Json:
        return self.request("GET", path, None, query=query)

    def post(self, path: str, body: Json) -> Json:
        return self.request("POST", path, body)

    def request(
        self,
        method: str,
        path: str,
        body: Json | None,
        headers: Mapping[str, str] | None = None,
        query: Query | None = None,
    ) -> Json:
        target = self.prefix + path
        if query:
            # %20, not '+': SigV4's canonical query string is exactly this encoding.
            target += "?" + urllib.parse.urlencode(query, doseq=True, quote_via=urllib.parse.quote)
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        all_headers = self._signed(method, target, data, all_headers)
        response = self._exchange(method, target, data, all_headers)
        try:
            return decode_reply(response.status, response.headers, response.body)
        except ClientError as exc:
            hint = auth_hint(exc.aws_type, self.settings)
            if hint:
                exc.message += "\n" + hint
            raise

    def _signed(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        credentials = self.settings.credentials if self.settings else None
        if self.settings is None or credentials is None:
            return headers
        from hpcbatch.cli.signing import sign

        host = self._connection().host_header  # the Host the wire sends is the one signed
        url = f"{self.scheme}://{host}{target}"
        return sign(credentials, self.settings.region, method, url, {"Host": host, **headers}, data)

    def _exchange(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> Response:
        # One retry, and only on a reused keep-alive connection: the head closing an idle
        # connection is normal and the request never reached it. A fresh connection that
        # fails is reported, so a SubmitJob is never sent twice after it may have landed.
        for attempt in (1, 2):
            reused = self._conn is not None and self._conn.is_open and self._used
            conn = self._connection()
            try:
                response = conn.request(method, target, data, headers)
            except (ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise HeadUnreachableError(self.endpoint, describe_os_error(exc)) from exc
            except OSError as exc:
                self.close()
                raise HeadUnreachableError(self.endpoint, describe_os_error(exc)) from exc
            except WireProtocolError as exc:
                self.close()
                raise ServerError(f"malformed HTTP answer from {self.endpoint}: {exc}") from exc
            self._used = True
            if response.will_close:
                self.close()
            return response
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        if self._conn is None:
            self._used = False
            ca_bundle = self.settings.ca_bundle if self.settings else None
            self._conn = Connection(self.scheme, self.address, self.timeout, ca_bundle)
        return self._conn


def auth_hint(error_type: str, settings: Settings | None) -> str:
    """One line on what to check when the head refuses who we said we are ('' otherwise)."""
    if error_type == "MissingAuthenticationTokenException":
        return MISSING_AUTH_HINT
    credentials = settings.credentials if settings else None
    if settings is None or credentials is None:
        return ""
    key = f"access key {credentials.access_key} (from {credentials.source or 'the options'})"
    if error_type == "UnrecognizedClientException":
        return f"hint: the head has no active {key}; 'hpcbatch users list' shows the keys"
    if error_type == "InvalidSignatureException":
        return (
            f"hint: signed with {key} for region {settings.region!r}: check the secret, "
            "the region (--region) and this machine's clock"
        )
    return ""


def describe_os_error(exc: BaseException) -> str:
    """A short, human reason: 'Connection refused' rather than a repr with errno noise."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    verify_message = getattr(exc, "verify_message", None)  # ssl.SSLCertVerificationError
    if verify_message:
        return f"certificate verify failed: {verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def decode_reply(status: int, headers: Mapping[str, str], payload: bytes) -> Json:
    """Turn an HTTP answer into a JSON object, or raise the error it stands for."""
    try:
        document = json.loads(payload) if payload.strip() else {}
    except ValueError:
        document = None
    if status == 200:
        if not isinstance(document, dict):
            raise ServerError(
                f"the head answered 200 with a body that is not a JSON object: {payload[:200]!r}"
            )
        return document
    error_type = headers.get("x-amzn-errortype", "")  # wire lower-cases header names
    message = ""
    if isinstance(document, dict):
        error_type = str(document.get("__type") or error_type)
        message = str(document.get("message") or document.get("Message") or "")
    error_type = error_type.split(":", 1)[0]  # AWS may append ':http://...' to the type
    if not message:
        message = f"HTTP {status} {error_type}".strip() + (
            f": {payload[:200]!r}" if payload else ""
        )
    if 400 <= status < 500:
        return _raise(ClientError(message), error_type)
    return _raise(ServerError(message), error_type)


def _raise(error: HpcbatchError, error_type: str) -> Json:
    error.aws_type = error_type or error.aws_type  # keep what the head said, e.g. an auth error
    raise error
