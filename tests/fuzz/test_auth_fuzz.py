"""Signed requests fuzzed through the real Head and ApiApp (issue 12's SigV4 verification), with
the checks of ``checks`` after every example.

Every example is an AWS operation from botocore's model (``test_operations_fuzz.valid_call``)
sent with an ``Authorization`` header that is one of:
- a true signature, made by botocore's ``SigV4Auth`` with a key the head issued, exactly as
  boto3 signs (it must verify: whatever the operation, path, query and body, the answer is no
  auth refusal);
- that signature with one thing changed afterwards (the body, the date, the path, a signed
  header, the signature itself): it must be refused (400/403, AWS's auth error types);
- a header assembled from plausible and broken parts (key ids known and unknown, dates, regions,
  services, signed-header lists, signatures, other schemes), with or without ``X-Amz-Date``.
Budget: ``HPCBATCH_FUZZ_EXAMPLES`` as there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.checks import check_answer, listed
from tests.fuzz.inprocess import InProcessHead
from tests.fuzz.test_operations_fuzz import FUZZ, valid_call
from tests.fuzz.wire import Request, known_names, to_request

AUTH_TYPES = {
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
}
TAMPERINGS = ["body", "date", "path", "header", "signature", "region", "key"]


@pytest.fixture(scope="module")
def keys(head: InProcessHead) -> list[tuple[str, str]]:
    """Two keys the head issued (for root, an admin; for nobody), and one disabled."""
    issued = []
    for name, unix in (("fz-root", "root"), ("fz-nobody", "nobody"), ("fz-off", "nobody")):
        body = json.dumps({"name": name, "unixUser": unix}).encode()
        answer = head.send(Request("POST", "/hpcbatch/v1/users", body=body))
        assert answer.status == 200, answer.body
        issued.append((answer.json()["accessKeyId"], answer.json()["secretAccessKey"]))
    off = f"/hpcbatch/v1/users/fz-off/keys/{issued[2][0]}/disable"
    assert head.send(Request("POST", off)).status == 200
    return issued


def signed(request: Request, key: tuple[str, str], region: str = "local") -> dict[str, str]:
    """The headers boto3 would add to ``request`` signing it with ``key``."""
    url = f"http://head{request.path}" + (f"?{request.query}" if request.query else "")
    aws = AWSRequest(method=request.method, url=url, data=request.body)
    SigV4Auth(Credentials(*key), "batch", region).add_auth(aws)
    return {k.lower(): v for k, v in aws.headers.items()}


def tampered(request: Request, headers: dict[str, str], how: str) -> tuple[Request, dict[str, str]]:
    headers = dict(headers)
    if how == "body":
        request = Request(request.method, request.path, request.query, request.body + b" ")
    elif how == "date":
        headers["x-amz-date"] = "20200101T000000Z"
    elif how == "path":
        request = Request(request.method, request.path + "x", request.query, request.body)
    elif how == "header":
        signed_at = headers["x-amz-date"]  # a second later (or earlier): still in the skew
        second = "01" if signed_at[-3:-1] != "01" else "02"
        headers["x-amz-date"] = signed_at[:-3] + second + "Z"
    elif how == "signature":
        auth = headers["authorization"]
        headers["authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    elif how == "region":
        headers["authorization"] = headers["authorization"].replace("/local/", "/us-east-1/")
    else:
        headers["authorization"] = headers["authorization"].replace(
            "Credential=HPCB", "Credential=HPCX"
        )
    return request, headers


_PART = st.text(max_size=10) | st.sampled_from(["", "/", ",", "=", " ", "\x00", "é", "x" * 500])


def _part(plausible: list[str]) -> st.SearchStrategy[str]:
    """A plausible value three times in four, else anything."""
    likely = st.sampled_from(plausible)
    return st.one_of(likely, likely, likely, _PART)


@st.composite
def assembled(draw: st.DrawFn, key_ids: list[str]) -> dict[str, str]:
    """An Authorization header (and maybe X-Amz-Date) put together from parts."""
    day = draw(_part(["20260101", "00000101", "99991231", "20261399", "20260231", "19700101"]))
    key = draw(_part(key_ids + ["HPCB0000000000000000"]))
    region = draw(_part(["local", "us-east-1"]))
    service = draw(_part(["batch", "s3"]))
    signed_headers = draw(_part(["host;x-amz-date", "host", "x-amz-date", ";;", "host;nope"]))
    signature = draw(_part(["0" * 64, "zz", "f" * 6400]))
    header = (
        f"AWS4-HMAC-SHA256 Credential={key}/{day}/{region}/{service}/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    header = draw(_part([header, header, header.replace(", ", ","), "Basic YTpi", "AWS k:s"]))
    headers = {"authorization": header}
    clock = draw(_part(["000000Z", "235960Z", "250000Z", "", "000000"]))
    amz_date = draw(st.none() | st.just(day + "T" + clock) | _PART)
    if amz_date is not None:
        headers["x-amz-date"] = amz_date
    return headers


def _latin1(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """As a client's bytes reach the head: what latin-1 cannot carry goes as UTF-8 bytes."""
    return tuple(
        (k, v.encode("utf-8", "surrogatepass").decode("latin-1")) for k, v in headers.items()
    )


@FUZZ
@given(
    call=valid_call(),
    how=st.sampled_from(["true", "true", *TAMPERINGS, "assembled"]),
    data=st.data(),
)
def test_signatures_verify_or_are_refused_in_aws_shape(
    head: InProcessHead, keys: list[tuple[str, str]], call: Any, how: str, data: st.DataObject
) -> None:
    operation, params, as_root = call
    request = to_request(operation, params, known_names(head.head.state))
    key = keys[0] if as_root else keys[1]
    if how == "assembled":
        headers = data.draw(assembled([k for k, _ in keys]))
    else:
        headers = signed(request, key)
        if how != "true":
            request, headers = tampered(request, headers, how)
    sent = Request(request.method, request.path, request.query, request.body, _latin1(headers))
    response = check_answer(head, sent, listed(head))
    kind = response.json().get("__type", "") if response.status >= 400 else ""
    event(f"{how} -> {response.status} {kind}")
    if how == "true":
        assert kind not in AUTH_TYPES, f"a true signature was refused: {response.body[:300]!r}"
    else:
        assert response.status in (400, 403) and kind in AUTH_TYPES, (how, response.body[:300])


def test_a_signature_dated_in_year_0_is_refused(
    head: InProcessHead, keys: list[tuple[str, str]]
) -> None:
    """Year 0000 is no date calendar.timegm takes (ValueError): a 400, not a 500, even past
    the parse, with a key id the head knows (key ids are no secret)."""
    auth = (
        f"AWS4-HMAC-SHA256 Credential={keys[0][0]}/00000101/local/batch/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )
    headers = (("authorization", auth), ("x-amz-date", "00000101T000000Z"))
    request = Request("POST", "/v1/describejobqueues", body=b"{}", headers=headers)
    response = check_answer(head, request, listed(head))
    assert (response.status, response.json()["__type"]) == (400, "IncompleteSignatureException")
