"""Verify an AWS Signature Version 4 request with botocore's own signing code.

Vocabulary: the **Authorization header** of a signed request reads
``AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
SignedHeaders=<a;b;c>, Signature=<hex>``; the **scope** is the date/region/service part;
``X-Amz-Date`` (``yyyymmddThhmmssZ``) is when the client signed.

The head recomputes the signature the way botocore computes it when it signs (canonical request,
string to sign, derived key: ``botocore.auth.SigV4Auth``), over exactly the headers the client
says it signed, the body as received and the path and query as sent, and compares in constant
time. Refusals carry AWS's error types: ``IncompleteSignatureException`` (a malformed header),
``InvalidSignatureException`` (wrong scope, a date more than 5 minutes off, a signature that
does not match), ``UnrecognizedClientException`` (raised by the caller: an unknown or disabled
key). No message carries the secret.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from hpcbatch.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "batch"
MAX_SKEW_S = 300
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an incoming request a signature covers."""

    method: str
    raw_path: str  # as sent, percent-encoding kept
    raw_query: str  # as sent, without the "?"
    headers: dict[str, list[str]]  # lower-cased names, every value in arrival order
    body: bytes
    scheme: str  # "http" or "https"


@dataclass(frozen=True)
class Authorization:
    key_id: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def incomplete(message: str) -> AuthError:
    return AuthError("IncompleteSignatureException", message, http_status=400)


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(
            f"Authorization header: only {ALGORITHM} is supported (got {algorithm[:40]!r})"
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, text = item.strip().partition("=")
        if not eq:
            raise incomplete(f"Authorization header: {item.strip()[:40]!r} is not NAME=VALUE")
        parts[name] = text
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in parts]
    if missing:
        raise incomplete(f"Authorization header: {', '.join(missing)} missing")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise incomplete(
            "Authorization header: Credential must be KEYID/YYYYMMDD/REGION/SERVICE/aws4_request"
        )
    signed = tuple(parts["SignedHeaders"].split(";"))
    if not all(signed) or "host" not in signed:
        raise incomplete("Authorization header: SignedHeaders must name host")
    return Authorization(scope[0], scope[1], scope[2], scope[3], signed, parts["Signature"])


def check_scope(auth: Authorization, amz_date: str, region: str, now_s: float) -> None:
    """The scope names this head's region and service and the request's own date, and that
    date is within 5 minutes of the head's clock."""
    if auth.service != SERVICE:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'.",
        )
    if auth.region != region:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region: this head's region is '{region}'.",
        )
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise incomplete("X-Amz-Date must be YYYYMMDDTHHMMSSZ") from None
    if auth.date != amz_date[:8]:
        raise AuthError(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date ({auth.date}).",
        )
    if abs(now_s - signed_at) > MAX_SKEW_S:
        now_text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_s))
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is not within 5 minutes of the head's time "
            f"{now_text}; check the clocks of the client and the head",
        )


@functools.cache
def _verifier_class() -> Any:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import HTTPHeaders

    class Verifier(SigV4Auth):  # type: ignore[misc]
        """botocore's SigV4 over exactly the headers the client signed (botocore's signer
        leaves out a few, such as User-Agent, that another client may have signed)."""

        signed: tuple[str, ...] = ()

        def headers_to_sign(self, request: Any) -> Any:
            chosen = HTTPHeaders()
            for name in self.signed:
                for value in request.headers.get_all(name) or []:
                    chosen[name] = value
            return chosen

    return Verifier


def _signer(secret: str, region: str, signed: tuple[str, ...]) -> Any:
    from botocore.credentials import Credentials

    signer = _verifier_class()(Credentials("", secret), SERVICE, region)
    signer.signed = signed
    return signer


def expected_signature(
    request: SignedRequest, auth: Authorization, amz_date: str, secret: str
) -> str:
    from botocore.awsrequest import AWSRequest

    host = (request.headers.get("host") or [""])[0]
    url = f"{request.scheme}://{host}{request.raw_path}"
    if request.raw_query:
        url += "?" + request.raw_query
    aws = AWSRequest(method=request.method, url=url, data=request.body)
    for name in auth.signed_headers:
        for value in request.headers.get(name, []):
            aws.headers.add_header(name, value)
    aws.context["timestamp"] = amz_date
    signer = _signer(secret, auth.region, auth.signed_headers)
    canonical = signer.canonical_request(aws)
    return str(signer.signature(signer.string_to_sign(aws, canonical), aws))


def verify(
    request: SignedRequest, auth: Authorization, secret: str, region: str, now_s: float
) -> None:
    """Raise AuthError unless ``request`` carries a valid signature made with ``secret``."""
    dates = request.headers.get("x-amz-date")
    if not dates:
        raise incomplete("a signed request needs an X-Amz-Date header")
    amz_date = dates[0]
    if "x-amz-date" not in auth.signed_headers:
        raise incomplete("SignedHeaders must include x-amz-date")
    check_scope(auth, amz_date, region, now_s)
    content_hash = request.headers.get("x-amz-content-sha256")
    if content_hash is not None:
        if content_hash[0] == UNSIGNED_PAYLOAD:
            raise AuthError(
                "InvalidSignatureException", "the body must be signed (UNSIGNED-PAYLOAD)"
            )
        if not hmac.compare_digest(content_hash[0], hashlib.sha256(request.body).hexdigest()):
            raise AuthError(
                "InvalidSignatureException", "X-Amz-Content-SHA256 does not match the body"
            )
    expected = expected_signature(request, auth, amz_date, secret)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("latin-1")):
        raise AuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
