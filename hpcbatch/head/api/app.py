"""The head's HTTP face: a small ASGI app served by uvicorn.

Routes (see docs/api.md):
- ``POST /v1/<operation lower-cased>``: AWS Batch REST-JSON, exactly as boto3 and the aws CLI
  send it; an operation of botocore's model the head does not serve is a ClientException that
  says why (``catalog.py``), any other name an unknown operation;
- ``/v1/tags/<percent-encoded ARN>``: TagResource (POST), ListTagsForResource (GET),
  UntagResource (DELETE ``?tagKeys=``), routed on the raw path so an encoded ``/`` survives;
- ``/hpcbatch/v1/...``: what boto3 cannot express (nodes, logs, history, health).

Every request but ``GET /hpcbatch/v1/health`` has a caller (``head/auth``): a valid SigV4
signature, else the kernel's word on a Unix-socket or loopback peer; a request with neither is
refused (403, AWS's error types) and logged without any secret. What the caller may do is
``head/auth/policy.py``; the journal records who made every change (the cause ``api:<id> by
<user>``).

Errors take AWS's shape: HTTP 400 + ``x-amzn-ErrorType: ClientException`` and
``{"__type": ..., "message": ...}``; 500 for ServerException. Every response carries
``x-amzn-RequestId``. A deterministic failure is always a 4xx, never a 500.

Each request is counted and timed in the head's metrics by operation (``operation_of``: the
AWS operation's name, ``hpcbatch/<route>``, or ``unknown``: a bounded set) and outcome.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

from hpcbatch.console.app import ConsoleApp
from hpcbatch.errors import AuthError, ClientError, HpcbatchError, NotFoundError, ServerError
from hpcbatch.head.api import catalog, hpcbatch_routes
from hpcbatch.head.api.operations import HANDLERS, Call
from hpcbatch.head.api.parse import DEFAULT_BODY_LIMIT, OPERATIONS, parse_request
from hpcbatch.head.auth import policy, sigv4
from hpcbatch.head.auth.connection import PEER_KEY
from hpcbatch.head.auth.identify import (
    Admins,
    Principal,
    identify_fast,
    identify_signed,
    identify_unsigned,
)
from hpcbatch.head.auth.sigv4 import RawHeaders, SignedRequest, scope_region
from hpcbatch.head.service import Head

log = logging.getLogger("hpcbatch.api")

MAX_BODY = (
    DEFAULT_BODY_LIMIT  # AWS caps SubmitJob at 30 KiB; 1,000 slow clients hold 256 MB at most
)
Scope = dict[str, Any]


HEALTH_PATH = "/hpcbatch/v1/health"
CONSOLE = "/console"  # the web console (hpcbatch/console): its own routes, pages not JSON
NOBODY = Principal("", False, "none")  # the health route's caller: it needs none


class ApiApp:
    """``anonymous``: who a request with no signature and no kernel-known peer acts as. None
    (the daemon) refuses such requests; an in-process test app passes a Principal."""

    def __init__(self, head: Head, anonymous: Principal | None = None) -> None:
        self.head = head
        self.anonymous = anonymous
        self.admins = Admins(head.config.admin_group)
        self._stored_scope = f"/{head.state.region}/batch/".encode()  # see _arn_rename
        self.console = ConsoleApp(head, self.admins, anonymous)
        sigv4.warm_up()

    def closing(self) -> None:
        """The server is stopping: end the console's streams now (``console/live.py``)."""
        self.head.console_feed.close()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith(CONSOLE) and (len(path) == len(CONSOLE) or path[len(CONSOLE)] == "/"):
            await self.console(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        rename: tuple[bytes, bytes] | None = None
        try:
            body = await _read_body(receive)
            principal, rename = self._identify(scope, body)
            status, payload = await self._route(scope, body, request_id, principal)
        except AuthError as error:
            status, payload = (
                error.http_status,
                {"__type": error.aws_type, "message": error.message},
            )
            _log_refusal(scope, error)
        except HpcbatchError as error:
            status, payload = (
                error.http_status,
                {"__type": error.aws_type, "message": error.message},
            )
        except Exception:
            log.exception("request %s failed", request_id)
            error = ServerError(f"internal error (request {request_id}); see the head's log")
            status, payload = 500, {"__type": error.aws_type, "message": error.message}
        await _respond(send, status, payload, request_id, rename)
        self.head.metrics.request_done(operation_of(scope), status, time.perf_counter() - started)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.head.start()
                except Exception as error:
                    log.exception("head failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.head.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _arn_rename(self, authorization: bytes) -> tuple[bytes, bytes] | None:
        """With no region configured, a signed caller sees every ARN in the region its
        signature names (AWS's ARNs carry the region a client talks to): ``(stored prefix, the
        caller's)`` for ``_respond``, or None where they are the same (one ``in`` here, as
        this runs for every signed request). ARNs sent back in either form resolve alike
        (core/resolve.py reads only the resource's name)."""
        if self.head.config.region is not None or self._stored_scope in authorization:
            return None
        region = scope_region(authorization)
        if region is None:
            return None
        return (
            f"arn:aws:batch:{self.head.state.region}:".encode(),
            f"arn:aws:batch:{region}:".encode(),
        )

    def _identify(self, scope: Scope, body: bytes) -> tuple[Principal, tuple[bytes, bytes] | None]:
        """The caller, and for a signed one the ARN rename its answer needs (``_arn_rename``)."""
        authorization = None
        for key, value in scope["headers"]:  # lower-case names (a loop: any() is dearer)
            if key == b"authorization":
                authorization = value
                break
        if authorization is None:
            if scope["path"] == HEALTH_PATH:
                return NOBODY, None
            peer = (scope.get("extensions") or {}).get(PEER_KEY)
            return identify_unsigned(peer, self.admins, self.anonymous), None
        rename = self._arn_rename(authorization)
        pairs = scope["headers"]
        raw_headers = dict(pairs)
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        query = scope.get("query_string", b"")
        if not query and len(raw_headers) == len(pairs):
            region = self.head.config.region
            fast = identify_fast(
                raw_headers, scope["method"], path, body, self.head.state, region, self.admins
            )
            if fast is not None:
                return fast, rename
        request = SignedRequest(
            method=scope["method"],
            raw_path=path,
            raw_query=query.decode("latin-1"),
            headers=RawHeaders.from_asgi(pairs),
            body=body,
            scheme=scope.get("scheme", "http"),
        )
        principal = identify_signed(request, self.head.state, self.head.config.region, self.admins)
        return principal, rename

    async def _route(
        self, scope: Scope, body: bytes, request_id: str, principal: Principal
    ) -> tuple[int, Any]:
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        strict = workdir = None
        for key, value in scope["headers"]:  # ASGI's names are lower-case
            if key.startswith(b"x-hpcbatch-"):
                if key == b"x-hpcbatch-strict":
                    strict = value
                elif key == b"x-hpcbatch-workdir":
                    workdir = value.decode("latin-1")
        # blank values kept: "?attempt=" is a malformed attempt (400), not an absent one
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        call = Call(
            self.head,
            request_id,
            principal,
            strict=strict == b"1",
            workdir=workdir,
        )
        if path.startswith("/v1/tags/"):
            return 200, await self._tags(
                call, method, unquote(path[len("/v1/tags/") :]), body, query
            )
        if path.startswith("/v1/") and method == "POST":
            operation = path[len("/v1/") :].strip("/").lower()
            if operation not in OPERATIONS:
                unserved = catalog.unserved(operation)
                if unserved is not None:
                    raise ClientError(unserved[1])
                raise NotFoundError(f"unknown operation {operation!r}")
            name, _ = OPERATIONS[operation]
            model = parse_request(
                operation, body, min_timeout_seconds=self.head.config.min_timeout_seconds
            )
            policy.authorize(principal, name, model, self.head.state)
            return 200, await HANDLERS[name](call, model)
        if path.startswith("/hpcbatch/v1/"):
            return await hpcbatch_routes.route(call, method, path, body, query)
        raise NotFoundError(f"no route for {method} {path}")

    async def _tags(
        self, call: Call, method: str, arn: str, body: bytes, query: dict[str, list[str]]
    ) -> Any:
        if method == "POST":
            model = parse_request("tagresource", body, path_params={"resourceArn": arn})
            policy.authorize(call.principal, "TagResource", model, self.head.state)
            return await HANDLERS["TagResource"](call, model)
        if method == "DELETE":
            params = {"resourceArn": arn, "tagKeys": query.get("tagKeys", [])}
            model = parse_request("untagresource", b"", path_params=params)
            policy.authorize(call.principal, "UntagResource", model, self.head.state)
            return await HANDLERS["UntagResource"](call, model)
        if method == "GET":
            model = parse_request("listtagsforresource", b"", path_params={"resourceArn": arn})
            return await HANDLERS["ListTagsForResource"](call, model)
        raise ClientError(f"method {method} is not allowed on /v1/tags/")


def _log_refusal(scope: Scope, error: AuthError) -> None:
    """One warning per refused request: where from, what, why, and the key id if one was
    named (an id is no secret; the signature and the secret never reach a log)."""
    peer = (scope.get("extensions") or {}).get(PEER_KEY)
    key_id = ""
    for name, value in scope["headers"]:
        if name.lower() == b"authorization" and b"Credential=" in value:
            key_id = value.split(b"Credential=", 1)[1].split(b"/", 1)[0][:32].decode("latin-1")
    log.warning(
        "refused %s %s from %s%s: %s: %s",
        scope.get("method"),
        scope.get("path", "")[:200],
        peer.address if peer is not None else "?",
        f" (access key {key_id!r})" if key_id else "",
        error.aws_type,
        error.message,
    )


_HPCBATCH_ROUTES = {"health", "nodes", "jobs", "top", "whoami", "users"}
_HPCBATCH_ACTIONS = {"logs", "history", "drain", "resume"}
_TAG_OPERATIONS = {"POST": "TagResource", "GET": "ListTagsForResource", "DELETE": "UntagResource"}


def operation_of(scope: Scope) -> str:
    """The metrics label of a request: never a job id or anything else a caller may vary."""
    path = scope.get("path", "")
    if path.startswith("/v1/tags/"):
        return _TAG_OPERATIONS.get(scope.get("method", ""), "unknown")
    if path.startswith("/v1/"):
        operation = path[len("/v1/") :].strip("/").lower()
        known = OPERATIONS.get(operation)
        if known:
            return known[0]
        unserved = catalog.unserved(operation)
        return unserved[0] if unserved else "unknown"
    if path.startswith("/hpcbatch/v1/"):
        parts = path[len("/hpcbatch/v1/") :].strip("/").split("/")
        if parts[0] not in _HPCBATCH_ROUTES:
            return "unknown"
        action = parts[2] if len(parts) == 3 and parts[2] in _HPCBATCH_ACTIONS else None
        return f"hpcbatch/{parts[0]}" + (f"/{action}" if action else "")
    return "unknown"


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ClientError(f"request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Any, status: int, payload: Any, request_id: str, rename: tuple[bytes, bytes] | None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    if rename is not None:
        body = body.replace(*rename)
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-requestid", request_id.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if status >= 400 and isinstance(payload, dict) and "__type" in payload:
        headers.append((b"x-amzn-errortype", payload["__type"].encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
