"""The console's few ASGI responses: a page, a redirect, plain text, and the start of a stream.

Every response says ``no-store`` (pages show live state and carry a CSRF token) and carries a
Content-Security-Policy that allows only the head's own scripts and styles: nothing on a page
may load from anywhere else, and an injected inline script would not run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]

CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
COMMON = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


async def respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = b"text/html; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *COMMON,
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(
    send: Any, location: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """303 See Other: after a POST the browser GETs ``location`` (no form resubmitted)."""
    await respond(
        send, 303, b"", b"text/plain", [(b"location", location.encode()), *(headers or [])]
    )


async def start_stream(
    send: Any, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), *COMMON, *(headers or [])],
        }
    )


async def read_form(receive: Any, limit: int) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as one value per name (the last), at
    most ``limit`` bytes; a larger body is refused by the caller's ValueError."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValueError("the browser went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError(f"the form is larger than {limit:,} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    text = b"".join(chunks).decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def query_of(scope: Scope) -> dict[str, str]:
    text = scope.get("query_string", b"").decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
