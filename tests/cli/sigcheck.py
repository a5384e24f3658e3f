"""A server-side SigV4 check for the CLI tests: recompute the signature from the raw request.

Independent of the CLI's signing path: it starts from what arrived on the wire (method, raw
path and query, the headers that ``SignedHeaders`` names, the body bytes) and recomputes the
canonical request, string to sign and signature with botocore's signer, as a head would.
"""

from __future__ import annotations

import calendar
import hmac
import time
from collections.abc import Mapping
from typing import NamedTuple

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

MAX_SKEW_S = 300


class SignatureRefused(Exception):
    def __init__(self, aws_type: str, message: str) -> None:
        super().__init__(f"{aws_type}: {message}")
        self.aws_type = aws_type


class Verified(NamedTuple):
    access_key: str
    region: str
    signed_headers: tuple[str, ...]


def parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise SignatureRefused("IncompleteSignatureException", f"algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field = part.strip().partition("=")
        if not sep:
            raise SignatureRefused("IncompleteSignatureException", f"bad field {part!r}")
        fields[name] = field
    if {"Credential", "SignedHeaders", "Signature"} - fields.keys():
        raise SignatureRefused("IncompleteSignatureException", f"fields {sorted(fields)}")
    return fields


def verify(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    region: str,
    now: float | None = None,
) -> Verified:
    """``headers`` with lower-cased names. Raises SignatureRefused with AWS's error type."""
    fields = parse_authorization(headers["authorization"])
    key_id, date, scope_region, service, terminator = fields["Credential"].split("/")
    if key_id not in secrets:
        raise SignatureRefused("UnrecognizedClientException", f"unknown key {key_id}")
    if (scope_region, service, terminator) != (region, "batch", "aws4_request"):
        raise SignatureRefused("InvalidSignatureException", f"scope {fields['Credential']}")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if "host" not in signed or "x-amz-date" not in signed:
        raise SignatureRefused("InvalidSignatureException", f"signed headers {signed}")
    amz_date = headers["x-amz-date"]
    if amz_date[:8] != date:
        raise SignatureRefused("InvalidSignatureException", "date differs from the scope's")
    stamp = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    if abs((time.time() if now is None else now) - stamp) > MAX_SKEW_S:
        raise SignatureRefused("InvalidSignatureException", f"date {amz_date} out of skew")
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}",
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secrets[key_id]), "batch", region)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureRefused("InvalidSignatureException", "signature does not match")
    return Verified(key_id, region, signed)
