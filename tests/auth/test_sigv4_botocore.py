"""The head's canonical request is botocore's, byte for byte, on random requests: botocore
signs each (as boto3 and the aws CLI do) and the head must accept exactly that signature, and
refuse it once anything it covers changes."""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbatch.errors import AuthError
from hpcbatch.head.auth.sigv4 import (
    SignedRequest,
    canonical_request,
    check_fast,
    parse_authorization,
    plan,
    verify,
)

SECRET = "k" * 40
segment = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12)
paths = st.lists(st.one_of(segment, st.sampled_from([".", "..", ""])), min_size=1, max_size=5)
query_item = st.tuples(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8), st.text(max_size=8)
)
header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
).filter(lambda v: v.strip())


@st.composite
def requests(draw: st.DrawFn, query: bool = True) -> tuple[AWSRequest, str, str]:
    path = "/" + "/".join(quote(p, safe="") for p in draw(paths))
    items = draw(st.lists(query_item, max_size=4 if query else 0))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items)
    url = f"http://head.example:7650{path}" + (f"?{query}" if query else "")
    body = draw(st.binary(max_size=200))
    request = AWSRequest(
        method=draw(st.sampled_from(["GET", "POST", "DELETE"])), url=url, data=body
    )
    names = st.sampled_from(["x-one", "x-two", "content-type"])
    for name in draw(st.lists(names, max_size=3, unique=not query)):
        request.headers[name] = draw(header_value)
    SigV4Auth(Credentials("HPCB" + "A" * 16, SECRET), "batch", "local").add_auth(request)
    return request, path, query


def incoming(request: AWSRequest, path: str, query: str) -> SignedRequest:
    headers: dict[str, list[str]] = {"host": ["head.example:7650"]}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return SignedRequest(request.method, path, query, headers, request.body or b"", "http")


@settings(max_examples=300, deadline=None)
@given(requests())
def test_the_canonical_request_is_botocores(drawn: tuple[AWSRequest, str, str]) -> None:
    request, path, query = drawn
    ours = incoming(request, path, query)
    auth = parse_authorization(request.headers["Authorization"])
    signer = SigV4Auth(Credentials("HPCB" + "A" * 16, SECRET), "batch", "local")
    del request.headers["Authorization"]  # what botocore signed: the request before it
    theirs = signer.canonical_request(request)
    assert canonical_request(ours, auth.signed_headers) == theirs
    verify(ours, auth, SECRET, "local", time.time())


@settings(max_examples=100, deadline=None)
@given(requests(), st.binary(min_size=1, max_size=5))
def test_anything_changed_after_signing_is_refused(
    drawn: tuple[AWSRequest, str, str], extra: bytes
) -> None:
    request, path, query = drawn
    ours = incoming(request, path, query)
    auth = parse_authorization(request.headers["Authorization"])
    changed = [
        SignedRequest(
            ours.method, ours.raw_path, ours.raw_query, ours.headers, ours.body + extra, "http"
        ),
        SignedRequest(
            ours.method, ours.raw_path + "x", ours.raw_query, ours.headers, ours.body, "http"
        ),
        SignedRequest("PUT", ours.raw_path, ours.raw_query, ours.headers, ours.body, "http"),
    ]
    for request_changed in changed:
        try:
            verify(request_changed, auth, SECRET, "local", time.time())
        except AuthError as error:
            assert error.aws_type == "InvalidSignatureException"
        else:
            raise AssertionError(f"a changed request verified: {request_changed}")


def fast(request: SignedRequest, secret: str = SECRET, now: float | None = None) -> bool:
    """The head's fast path (``check_fast``) on ``request``, as the API app calls it."""
    raw = {name.encode(): values[0].encode("latin-1") for name, values in request.headers.items()}
    prefix, _, signature = raw[b"authorization"].rpartition(b", Signature=")
    found = plan(prefix, "local")
    if found is None:
        return False
    now = time.time() if now is None else now
    return check_fast(
        raw, request.method, request.raw_path, request.body, now, found, signature, secret
    )


def general(request: SignedRequest, secret: str = SECRET, now: float | None = None) -> bool:
    auth = parse_authorization(request.headers["authorization"][0])
    try:
        verify(request, auth, secret, "local", time.time() if now is None else now)
    except AuthError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(requests(query=False), st.binary(min_size=1, max_size=5), st.sampled_from(range(7)))
def test_the_fast_path_accepts_what_botocore_signed_and_nothing_verify_refuses(
    drawn: tuple[AWSRequest, str, str], extra: bytes, change: int
) -> None:
    ours = incoming(*drawn)  # what the fast path serves: no query string, no repeated header
    assert fast(ours) and general(ours)
    headers = dict(ours.headers)
    if change == 0:
        ours = replace(ours, body=ours.body + extra)
    elif change == 1:
        ours = replace(ours, raw_path=ours.raw_path + "x")
    elif change == 2:
        ours = replace(ours, method="PUT" if ours.method != "PUT" else "GET")
    elif change == 3:
        headers["x-amz-date"] = ["20260101T000000Z"]
        ours = replace(ours, headers=headers)
    elif change == 4:
        headers["host"] = [headers["host"][0] + extra.hex()]
        ours = replace(ours, headers=headers)
    elif change == 5:
        assert not fast(ours, secret="x" + SECRET[1:])
        assert not fast(ours, now=time.time() + 301)
        return
    else:
        signed = [h for h in auth_names(ours) if h not in ("host", "x-amz-date")]
        if not signed:
            return
        headers.pop(signed[0])
        ours = replace(ours, headers=headers)
        assert not fast(ours)
        return
    assert not fast(ours) and not general(ours)


def auth_names(request: SignedRequest) -> list[str]:
    return list(parse_authorization(request.headers["authorization"][0]).signed_headers)
