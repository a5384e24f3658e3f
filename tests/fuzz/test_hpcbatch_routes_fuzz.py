"""hpcbatch's own routes (``/hpcbatch/v1/...``: nodes, drain/resume, logs, history, top,
whoami, users and access keys), fuzzed through the real Head and ApiApp as the AWS operations
are in ``test_operations_fuzz.py``, with the same checks after every example (``checks``).

Paths are drawn from the routes' templates with each segment either a name the head knows
(a node, a job, a user, a key: ``botoshapes.Ref``) or random text (percent-encoded, lone
surrogates as bytes); bodies are either shaped as a route expects with random values, or any
JSON, or broken bytes; queries carry random ``attempt``, ``offset`` and ``jobs``. Budget:
``HPCBATCH_FUZZ_EXAMPLES`` as there.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.botoshapes import Ref, document
from tests.fuzz.checks import check_answer, listed
from tests.fuzz.inprocess import InProcessHead
from tests.fuzz.test_operations_fuzz import ADMIN_MOSTLY, ENDINGS, FUZZ, end_one
from tests.fuzz.wire import Request, broken_body, known_names, resolve

# (method, path template): NODE, JOB, USER and KEY take a known name or random text.
ROUTES = [
    ("GET", "health"),
    ("GET", "whoami"),
    ("GET", "nodes"),
    ("POST", "nodes/NODE/drain"),
    ("POST", "nodes/NODE/resume"),
    ("POST", "nodes/NODE/TEXT"),
    ("GET", "jobs/JOB/logs"),
    ("GET", "jobs/JOB/history"),
    ("GET", "jobs/JOB/TEXT"),
    ("GET", "top"),
    ("GET", "users"),
    ("POST", "users"),
    ("DELETE", "users/USER"),
    ("POST", "users/USER/keys"),
    ("POST", "users/USER/keys/KEY/disable"),
    ("POST", "users/USER/keys/KEY/enable"),
    ("POST", "users/USER/keys/KEY/TEXT"),
    ("TEXT", "TEXT"),
]
KINDS = {"NODE": "node", "JOB": "job", "USER": "user", "KEY": "key"}

_TEXT = st.text(max_size=12) | st.sampled_from(["", "..", "%", "\ud800", "a/b", "x" * 300])
_NUMBERS = st.sampled_from(["0", "1", "2", "-1", "", "1e3", "²", "99999999999999999999", "%FF"])
_QUERY = st.dictionaries(
    st.sampled_from(["attempt", "offset", "jobs", "other"]), _NUMBERS | _TEXT, max_size=3
)
_UNIX_USERS = st.sampled_from(["root", "nobody", "daemon", "no-such-user-x", "", "a\x00b"])
_SHAPED_BODY = st.one_of(
    st.fixed_dictionaries({}, optional={"reason": _TEXT | document()}),
    st.fixed_dictionaries(
        {"name": st.sampled_from(["fz-a", "fz-b", "fz-c"]) | _TEXT, "unixUser": _UNIX_USERS},
        optional={"other": document()},
    ),
    st.fixed_dictionaries({}, optional={"disableOthers": st.booleans() | document()}),
)


@pytest.fixture(scope="module")
def seeded(head: InProcessHead) -> InProcessHead:
    """Three jobs (one runs on, two wait or run on n2), so job routes find real ones."""
    for name in ("a", "b", "c"):
        body = {"jobName": name, "jobQueue": "default", "jobDefinition": "default"}
        response = head.send(Request("POST", "/v1/submitjob", body=json.dumps(body).encode()))
        assert response.status == 200, response.body
    head.settle()
    return head


def _segment(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def route_request(draw: st.DrawFn) -> tuple[str, str, list[Any], str, Any]:
    """(method, template, the path's parts with Refs unresolved, query, body document)."""
    method, template = draw(st.sampled_from(ROUTES))
    if method == "TEXT":
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
    parts: list[Any] = []
    for part in template.split("/"):
        if part in KINDS and draw(st.booleans()):
            parts.append(Ref(KINDS[part], draw(st.integers(0, 50))))
        elif part in KINDS or part == "TEXT":
            parts.append(_segment(draw(_TEXT)))
        else:
            parts.append(part)
    query = "&".join(f"{k}={_segment(v)}" for k, v in draw(_QUERY).items())
    body = draw(st.one_of(_SHAPED_BODY, document(), st.none()))
    return method, template, parts, query, body


@FUZZ
@given(call=route_request(), admin=ADMIN_MOSTLY, broken=st.booleans(), data=st.data())
def test_hpcbatch_routes_never_fail_the_head(
    seeded: InProcessHead, call: Any, admin: bool, broken: bool, data: st.DataObject
) -> None:
    head = seeded
    method, template, parts, query, body = call
    names = known_names(head.head.state)
    path = "/hpcbatch/v1/" + "/".join(
        _segment(resolve(p, names)) if isinstance(p, Ref) else p for p in parts
    )
    raw = b"" if body is None else json.dumps(body).encode()
    if broken:
        raw = data.draw(broken_body(raw or b"{}"))
    response = check_answer(head, Request(method, path, query, raw), listed(head), admin)
    event(f"{method} {template} -> {response.status}{'' if admin else ' (not admin)'}")
    end_one(head, data.draw(ENDINGS))
