"""The head's SigV4 check against requests botocore itself signed: the exact ones verify, and
each way a request can be wrong is refused with AWS's error type."""

from __future__ import annotations

import calendar
import time
from dataclasses import replace
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hpcbatch.errors import AuthError
from hpcbatch.head.auth.sigv4 import (
    SignedRequest,
    parse_authorization,
    plan,
    scope_region,
    verify,
)

KEY, SECRET = "HPCBAAAAAAAAAAAAAAAA", "s" * 40
BODY = b'{"jobName":"x","jobQueue":"default","jobDefinition":"default"}'


def signed(
    body: bytes = BODY,
    path: str = "/v1/submitjob",
    query: str = "",
    region: str = "local",
    secret: str = SECRET,
    extra: dict[str, str] | None = None,
) -> SignedRequest:
    url = f"http://127.0.0.1:7650{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method="POST", url=url, data=body, headers=extra or {})
    request.headers["Content-Type"] = "application/json"
    SigV4Auth(Credentials(KEY, secret), "batch", region).add_auth(request)
    headers: dict[str, list[str]] = {"host": ["127.0.0.1:7650"]}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return SignedRequest("POST", path, query, headers, body, "http")


def check(request: SignedRequest, now: float | None = None, region: str | None = "local") -> None:
    auth = parse_authorization(request.headers["authorization"][0])
    verify(request, auth, SECRET, region, time.time() if now is None else now)


def refused(request: SignedRequest, **options: Any) -> AuthError:
    with pytest.raises(AuthError) as caught:
        check(request, **options)
    return caught.value


def test_a_request_botocore_signed_verifies() -> None:
    check(signed())


def test_an_encoded_path_and_a_repeated_query_verify() -> None:
    arn = "arn%3Aaws%3Abatch%3Alocal%3A000000000000%3Ajob%2Fabc"
    check(signed(b"", f"/v1/tags/{arn}", "tagKeys=b&tagKeys=a"))


def test_a_body_changed_after_signing_is_refused() -> None:
    request = signed()
    tampered = replace(request, body=BODY.replace(b"x", b"y"))
    error = refused(tampered)
    assert (error.aws_type, error.http_status) == ("InvalidSignatureException", 403)
    assert "does not match" in error.message


def test_a_wrong_secret_is_refused() -> None:
    assert refused(signed(secret="t" * 40)).aws_type == "InvalidSignatureException"


def test_a_wrong_region_is_refused_naming_the_heads() -> None:
    error = refused(signed(region="us-east-1"))
    assert error.aws_type == "InvalidSignatureException"
    assert "this head's region is 'local'" in error.message


def test_with_no_region_configured_any_region_name_verifies_and_its_key_is_that_regions() -> None:
    for region in ("us-east-1", "eu-west-1", "local", "x"):
        check(signed(region=region), region=None)
    request = signed(region="us-east-1")
    auth = parse_authorization(request.headers["authorization"][0])
    with pytest.raises(AuthError):  # the key derived for another region signs nothing here
        verify(request, replace(auth, region="us-east-2"), SECRET, None, time.time())
    assert scope_region(request.headers["authorization"][0].encode()) == "us-east-1"
    assert plan(request.headers["authorization"][0].encode().split(b", Signature=")[0], None)


def test_with_no_region_configured_a_scope_naming_no_region_is_refused() -> None:
    request = signed()
    header = request.headers["authorization"][0].replace("/local/", "/no_such region!/")
    tampered = replace(request, headers={**request.headers, "authorization": [header]})
    error = refused(tampered, region=None)
    assert error.aws_type == "InvalidSignatureException"
    assert "is not a region name" in error.message


@pytest.mark.parametrize("minutes", [6, -6])
def test_a_date_six_minutes_off_is_refused(minutes: int) -> None:
    request = signed()
    amz = request.headers["x-amz-date"][0]
    then = calendar.timegm(time.strptime(amz, "%Y%m%dT%H%M%SZ"))
    error = refused(request, now=then + minutes * 60)
    assert error.aws_type == "InvalidSignatureException"
    assert "Signature expired" in error.message
    check(request, now=then + 4 * 60)  # within five minutes: fine


def test_a_header_another_client_signed_counts() -> None:
    """botocore leaves User-Agent out when it signs; a client that signs it is still right."""
    request = signed(extra={"X-Custom": "1"})
    changed = dict(request.headers)
    changed["x-custom"] = ["2"]
    assert refused(replace(request, headers=changed)).aws_type == ("InvalidSignatureException")


@pytest.mark.parametrize(
    "header",
    [
        "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=0",
        "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=0",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=0",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=x-amz-date, Signature=0",
        "AWS4-HMAC-SHA256 garbage",
    ],
)
def test_a_malformed_authorization_header_is_incomplete(header: str) -> None:
    with pytest.raises(AuthError) as caught:
        parse_authorization(header)
    assert (caught.value.aws_type, caught.value.http_status) == (
        "IncompleteSignatureException",
        400,
    )


def test_a_content_hash_that_does_not_match_the_body_is_refused() -> None:
    request = signed(extra={"X-Amz-Content-SHA256": "0" * 64})
    assert "X-Amz-Content-SHA256" in refused(request).message
