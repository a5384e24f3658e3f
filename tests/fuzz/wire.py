"""Fuzzed parameters -> the HTTP request boto3 would send (REST-JSON), and bodies broken on
the wire.

``to_request(operation, params, refs)`` follows the operation's botocore model as boto3's
serializer does: ``POST /v1/<operation lower-cased>`` with a JSON body, members located in the
URI (``resourceArn`` of the tag operations, percent-encoded with ``/`` too) or the query string
(``tagKeys``, repeated) moved there, and the HTTP method the model names (GET/DELETE for
ListTagsForResource/UntagResource). ``Ref`` placeholders become names the head knows.

``broken_body`` turns a good body into what no serializer sends: bytes that are not UTF-8,
truncated JSON, a non-object, NaN, a duplicate key, a 5,000-digit number, deep nesting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.model import OperationModel
from hypothesis import strategies as st

from hpcbatch.core.state import State
from tests.fuzz.botoshapes import Ref


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as on the wire: ASCII, percent-encoded (h11 takes nothing else)
    query: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())


def known_names(state: State) -> dict[str, list[str]]:
    """What a Ref may name, per kind, in a stable order: names first, then ARNs."""
    definitions = [d for revs in state.definitions.values() for d in revs.values()]
    queues = sorted(state.queues.values(), key=lambda q: q.seq)
    ces = sorted(state.ces.values(), key=lambda c: c.seq)
    jobs = sorted(state.jobs)
    return {
        "job": jobs,
        "queue": [q.name for q in queues] + [q.arn for q in queues],
        "definition": [f"{d.name}:{d.revision}" for d in definitions]
        + [d.name for d in definitions]
        + [d.arn for d in definitions],
        "ce": [c.name for c in ces] + [c.arn for c in ces],
        "node": sorted(state.nodes),
        "user": sorted(state.users),
        "key": sorted(state.user_keys),
        "arn": [q.arn for q in queues]
        + [c.arn for c in ces]
        + [d.arn for d in definitions]
        + [state.arn("job", j) for j in jobs],
    }


def resolve(value: Any, names: dict[str, list[str]]) -> Any:
    if isinstance(value, Ref):
        pool = names.get(value.kind) or ["nothing-of-that-kind"]
        return pool[value.index % len(pool)]
    if isinstance(value, dict):
        return {k: resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    return value


def _as_url(value: Any) -> str:
    """A member the model puts in the URL, percent-encoded with ``/`` too (a lone surrogate
    as the bytes Python's surrogatepass gives it: what a careless client would send)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def to_request(operation: OperationModel, params: Any, names: dict[str, list[str]]) -> Request:
    """The request boto3 would send for ``params`` (wrong types and all: a member the model
    puts in the URL is sent there as text, since that is all a URL can carry)."""
    params = resolve(params, names)
    uri = operation.http["requestUri"]
    query: list[str] = []
    body = dict(params) if isinstance(params, dict) else params
    shape = operation.input_shape
    if shape is not None and isinstance(body, dict):
        for member, member_shape in shape.members.items():
            where = member_shape.serialization.get("location")
            if where is None or member not in body:
                continue
            value = body.pop(member)
            if where == "uri":
                uri = uri.replace("{" + member + "}", _as_url(value))
            elif where == "querystring":
                values = value if isinstance(value, list) else [value]
                key = member_shape.serialization.get("name", member)
                query += [f"{key}={_as_url(v)}" for v in values]
    uri = uri.split("{", 1)[0]  # a required URI member the invalid flavour dropped
    path, _, fixed = uri.partition("?")
    query = ([fixed] if fixed else []) + query
    data = b"" if operation.http["method"] in ("GET", "DELETE") and body == {} else None
    encoded = json.dumps(body).encode() if data is None else data
    return Request(operation.http["method"], path, "&".join(query), encoded)


def _non_utf8(body: bytes, at: int) -> bytes:
    return body[:at] + b"\xff\xc3\x28" + body[at:]


BREAKERS: dict[str, Callable[[bytes, int], bytes]] = {
    "non-utf8": _non_utf8,
    "latin-1 string": lambda body, at: b'{"jobName": "caf\xe9"}',
    "truncated": lambda body, at: body[:at],
    "array": lambda body, at: b"[" + body + b"]",
    "bom": lambda body, at: b"\xef\xbb\xbf" + body,
    "nan": lambda body, at: b'{"maxResults": NaN}',
    "duplicate key": lambda body, at: b'{"jobName": "a", "jobName": "b"}',
    "long number": lambda body, at: b'{"maxResults": ' + b"9" * 5000 + b"}",
    "deep": lambda body, at: b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "scalar": lambda body, at: b"null",
    "nul": lambda body, at: body[:at] + b"\x00" + body[at:],
    "utf-16": lambda body, at: body.decode("utf-8", "replace").encode("utf-16"),
    "whitespace": lambda body, at: b" \t\r\n" * 10,
}


@st.composite
def broken_body(draw: st.DrawFn, body: bytes) -> bytes:
    name = draw(st.sampled_from(sorted(BREAKERS)))
    at = draw(st.integers(0, max(0, len(body) - 1)))
    return BREAKERS[name](body, at)


# Paths and queries no boto3 sends: unknown or oddly cased operations, wrong methods, bad
# percent-encodings; the head must say 4xx to each, in AWS's shape.
ODD_REQUESTS = [
    Request("POST", "/v1/SubmitJob"),
    Request("POST", "/v1/submitjob/"),
    Request("GET", "/v1/submitjob"),
    Request("PUT", "/v1/describejobs", body=b"{}"),
    Request("POST", "/v1/nosuchoperation", body=b"{}"),
    Request("POST", "/v1/"),
    Request("POST", "/v1"),
    Request("POST", "/"),
    Request("PATCH", "/v1/tags/x"),
    Request("GET", "/v1/tags/"),
    Request("GET", "/v1/tags/%FF%FE"),
    Request("DELETE", "/v1/tags/arn%3Ax", query="tagKeys=%FF&tagKeys="),
    Request("DELETE", "/v1/tags/arn%3Ax", query="tagKeys"),
    Request("POST", "/v1/tags/%00", body=b'{"tags": {"a": "b"}}'),
    Request("POST", "/v1/tags/%2F..%2F..", body=b'{"tags": {}}'),
    Request("GET", "/hpcbatch/v1/jobs/%FF/logs"),
    Request("GET", "/hpcbatch/v1/jobs/x/logs", query="offset=%FF"),
    Request("GET", "/hpcbatch/v1/top", query="jobs=%F0%9F%98%80"),
    Request("GET", "/hpcbatch/v1/top", query="jobs=99999999999999999999999"),
    Request("POST", "/hpcbatch/v1/nodes/%FF/drain", body=b"{}"),
    Request("POST", "/hpcbatch/v1/nodes/n1/reboot", body=b"{}"),
    Request("GET", "/hpcbatch/v1/"),
    Request("GET", "/hpcbatch/v1/jobs//history"),
    Request("POST", "/v1/describejobs", body=b"{}", headers=(("x-hpcbatch-strict", "\xff"),)),
    Request("POST", "/v1/submitjob", body=b"{}", headers=(("x-hpcbatch-workdir", "%FF\xff"),)),
]
