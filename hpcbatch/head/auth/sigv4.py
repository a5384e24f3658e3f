"""Verify an AWS Signature Version 4 request exactly as botocore signs one.

Vocabulary: the **Authorization header** of a signed request reads
``AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
SignedHeaders=<a;b;c>, Signature=<hex>``; the **scope** is the date/region/service part;
``X-Amz-Date`` (``yyyymmddThhmmssZ``) is when the client signed.

The head recomputes the signature the way ``botocore.auth.SigV4Auth`` computes it when it signs
(canonical request, string to sign, derived key), over exactly the headers the client says it
signed, the body as received and the path and query as sent, and compares in constant time.
botocore normalizes each route's path and derives each day's key (both cached); the canonical
request and the final HMAC are written out here, because botocore's request objects cost ~70 us a
request inside the head, and tests/auth/test_sigv4_botocore.py proves them equal to botocore's on
random requests (docs/security.md, "Speed"). Refusals carry AWS's error types: ``IncompleteSignatureException`` (a malformed header),
``InvalidSignatureException`` (wrong scope, a date more than 5 minutes off, a signature that
does not match), ``UnrecognizedClientException`` (raised by the caller: an unknown or disabled
key). No message carries the secret.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import hmac
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hpcbatch.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "batch"
MAX_SKEW_S = 300
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# botocore's own rule for a region name (its endpoint resolver refuses any other)
REGION_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


@dataclass(slots=True)  # not frozen: made for every signed request, and frozen costs ~1 us more
class SignedRequest:
    """The parts of an incoming request a signature covers."""

    method: str
    raw_path: str  # as sent, percent-encoding kept
    raw_query: str  # as sent, without the "?"
    headers: Mapping[str, list[str]]  # lower-cased names, every value in arrival order
    body: bytes
    scheme: str  # "http" or "https": for the logs; both are signed alike


@dataclass(slots=True)
class Authorization:
    key_id: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


class RawHeaders(Mapping[str, list[str]]):
    """An ASGI request's headers, decoded only when asked for: a signed request's check reads
    six or seven of them. For headers without a repeated name (``from_asgi`` says)."""

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self.raw = raw

    @classmethod
    def from_asgi(cls, pairs: list[tuple[bytes, bytes]]) -> Mapping[str, list[str]]:
        raw = dict(pairs)
        if len(raw) == len(pairs):
            return cls(raw)
        every: dict[str, list[str]] = {}  # a repeated name: every value, in order
        for key, value in pairs:
            every.setdefault(key.decode("latin-1"), []).append(value.decode("latin-1"))
        return every

    def __getitem__(self, name: str) -> list[str]:
        return [self.raw[name.encode("latin-1")].decode("latin-1")]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.raw.get(name.encode("latin-1"))
        return default if value is None else [value.decode("latin-1")]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.encode("latin-1") in self.raw

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1") for key in self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def incomplete(message: str) -> AuthError:
    return AuthError("IncompleteSignatureException", message, http_status=400)


# What botocore and the aws CLI send, matched in one go; anything else takes the slow parse
# below, which says what is wrong.
_AUTHORIZATION_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/([0-9]{8})/([^/,\s]+)/([^/,\s]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;_.-]+), Signature=([0-9a-f]{64})"
)


_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")


def parse_authorization(value: str) -> Authorization:
    # Everything before the signature is the same in all of a client's requests of a day:
    # parsed once (the regex costs ~10 us inside the busy head), the signature checked alone.
    scope, _, signature = value.rpartition(", Signature=")
    # long ones are not cached: a client must not fill the cache with 64 KiB keys
    parsed = _parse_scope(scope) if len(scope) <= 512 else _parse_scope.__wrapped__(scope)
    if parsed is not None and _SIGNATURE_RE.fullmatch(signature):
        return Authorization(*parsed, signature)
    return _parse_authorization(value)


@functools.lru_cache(maxsize=1024)
def _parse_scope(scope: str) -> tuple[str, str, str, str, tuple[str, ...]] | None:
    match = _AUTHORIZATION_RE.fullmatch(f"{scope}, Signature={'0' * 64}")
    if match is None:
        return None
    signed = tuple(match[5].split(";"))
    if not all(signed) or "host" not in signed:
        return None
    return match[1], match[2], match[3], match[4], signed


def _parse_authorization(value: str) -> Authorization:
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


_DATE_RE = re.compile(r"([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z")


def _epoch(amz_date: str) -> int:
    """``YYYYMMDDTHHMMSSZ`` as epoch seconds (by hand: strptime costs ~20 µs a call)."""
    match = _DATE_RE.fullmatch(amz_date)
    if match is None:
        raise incomplete("X-Amz-Date must be YYYYMMDDTHHMMSSZ")
    hours, minutes, seconds = int(match[2]), int(match[3]), int(match[4])
    if not (hours < 24 and minutes < 60 and seconds < 61):
        raise incomplete("X-Amz-Date must be YYYYMMDDTHHMMSSZ")
    return _midnight(match[1]) + hours * 3600 + minutes * 60 + seconds


@functools.lru_cache(maxsize=8)
def _midnight(day: str) -> int:
    try:  # a real date (year 0000 or February 30th is not)
        datetime.date(int(day[0:4]), int(day[4:6]), int(day[6:8]))
    except ValueError:
        raise incomplete("X-Amz-Date must be YYYYMMDDTHHMMSSZ") from None
    return calendar.timegm((int(day[0:4]), int(day[4:6]), int(day[6:8]), 0, 0, 0, 0, 0, 0))


def check_scope(auth: Authorization, amz_date: str, region: str | None, now_s: float) -> None:
    """The scope names this head's region (any region name where ``region`` is None: the head
    has none configured) and service and the request's own date, and that date is within 5
    minutes of the head's clock."""
    if auth.service != SERVICE:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'.",
        )
    if region is None:
        if not REGION_RE.fullmatch(auth.region):
            raise AuthError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region: {auth.region[:70]!r} is not a "
                "region name.",
            )
    elif auth.region != region:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region: this head's region is '{region}'.",
        )
    signed_at = _epoch(amz_date)
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
def _botocore() -> Any:
    """botocore's SigV4 signer class (imported on first use: ~0.1 s)."""
    from botocore.auth import SigV4Auth

    return SigV4Auth


def warm_up() -> None:
    """Import botocore now, at the head's start, not in the first signed request."""
    _botocore()


def canonical_path(raw_path: str) -> str:
    """botocore's canonical URI of a path as sent (dot segments and repeated slashes removed,
    then percent-encoded again, as every service but S3 wants): a route's is the same every
    time, so it is computed once (a long one, such as a job's tags path, every time)."""
    if len(raw_path) <= 256:
        return _canonical_path(raw_path)
    return _canonical_path.__wrapped__(raw_path)


@functools.lru_cache(maxsize=256)
def _canonical_path(raw_path: str) -> str:
    return str(_botocore()._normalize_url_path(None, raw_path))


# hashlib's and hmac's SHA-256 go through OpenSSL 3, which looks the digest up by name for every
# new hash object and copies contexts through its provider layer: ~0.5 us in a loop, but 10-30 us
# inside the busy head (py-spy: the two SHA-256s and the HMAC were a third of a signed call's
# check). CPython's own SHA-256 (the module hashlib falls back to) has neither cost.
try:
    from _sha2 import sha256 as _sha256_type  # type: ignore[import-not-found]  # 3.12+
except ImportError:  # 3.11
    from _sha256 import sha256 as _sha256_type  # type: ignore[import-not-found,no-redef]
_SHA256 = _sha256_type()


def sha256_hex(data: bytes) -> str:
    digest = _SHA256.copy()
    digest.update(data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1024)
def _day_key(secret: str, day: str, region: str) -> tuple[Any, Any]:
    """The signing key derived from ``secret`` for one day, region and service, with
    botocore's own HMAC step, computed once a day per key, not per request; returned as the
    HMAC's inner and outer SHA-256 states (RFC 2104: key XOR ipad, key XOR opad), to copy."""
    sign = _botocore()._sign
    key: bytes = sign(None, f"AWS4{secret}".encode(), day)
    for part in (region, SERVICE, "aws4_request"):
        key = sign(None, key, part)
    block = key.ljust(64, b"\0")  # 32 bytes: shorter than SHA-256's 64-byte block
    inner, outer = _SHA256.copy(), _SHA256.copy()
    inner.update(bytes(b ^ 0x36 for b in block))
    outer.update(bytes(b ^ 0x5C for b in block))
    return inner, outer


def _hmac_hex(states: tuple[Any, Any], message: bytes) -> str:
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return str(outer.hexdigest())


def canonical_request(request: SignedRequest, signed: tuple[str, ...]) -> str:
    """The canonical request exactly as ``botocore.auth.SigV4Auth.canonical_request`` builds it
    for these signed headers (tests/auth/test_sigv4_botocore.py compares the two on random
    requests). Written out here because botocore's costs ~70 us a request inside the head
    (17 % of the SubmitJob rate), this ~15 (docs/security.md, "Speed")."""
    query = ""
    if request.raw_query:
        pairs = sorted(p.partition("=")[::2] for p in request.raw_query.split("&"))
        query = "&".join(f"{key}={value}" for key, value in pairs)
    names, listed = _signed_names(signed)
    values = request.headers
    lines = []
    for name in names:
        found = values.get(name)
        if found is None:
            lines.append(name + ":")
        elif len(found) == 1:
            lines.append(f"{name}:{' '.join(found[0].split())}")
        else:
            lines.append(f"{name}:{','.join(' '.join(v.split()) for v in found)}")
    content = values.get("x-amz-content-sha256")
    payload = content[0] if content else sha256_hex(request.body)
    path = canonical_path(request.raw_path)
    return (
        f"{request.method.upper()}\n{path}\n{query}\n"
        + "\n".join(lines)
        + (f"\n\n{listed}\n{payload}")
    )


@functools.lru_cache(maxsize=64)
def _signed_names(signed: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The signed header names sorted, and as the canonical request lists them: a client
    signs the same ones every time."""
    names = tuple(sorted(set(signed)))
    return names, ";".join(names)


def expected_signature(
    request: SignedRequest, auth: Authorization, amz_date: str, secret: str
) -> str:
    """The signature of ``request`` made with ``secret``, as botocore computes it."""
    canonical = canonical_request(request, auth.signed_headers)
    scope = f"{amz_date[:8]}/{auth.region}/{auth.service}/aws4_request"
    digest = sha256_hex(canonical.encode())
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    return _hmac_hex(_day_key(secret, amz_date[:8], auth.region), string_to_sign.encode())


@dataclass(frozen=True, slots=True)
class Plan:
    """What all of a client's requests of a day share: the Authorization header up to its
    signature, parsed and checked once (``plan``), for ``check_fast``."""

    key_id: str
    day: bytes  # yyyymmdd, as X-Amz-Date starts
    region: str
    names: tuple[tuple[str, bytes], ...]  # the signed header names, sorted: as text and as sent
    tail: str  # what follows the canonical request's header lines, up to the payload hash
    scope_line: str  # the string to sign's scope line, with its newlines


@functools.lru_cache(maxsize=1024)
def plan(prefix: bytes, region: str | None) -> Plan | None:
    """The plan of an Authorization header's ``prefix`` (up to ", Signature="). None where the
    general path must decide: an unusual form, or a scope it refuses (it says why).
    ``region`` None: the head has none configured, and any region name will do."""
    try:
        parsed = _parse_scope(prefix.decode("ascii"))
    except UnicodeDecodeError:
        return None
    if parsed is None:
        return None
    key_id, day, scope_region, service, signed = parsed
    if region is None:
        if not REGION_RE.fullmatch(scope_region):
            return None
        region = scope_region
    if scope_region != region or service != SERVICE or "x-amz-date" not in signed:
        return None
    names, listed = _signed_names(signed)
    return Plan(
        key_id,
        day.encode(),
        region,
        tuple((name, name.encode()) for name in names),
        f"\n\n{listed}\n",
        f"\n{day}/{region}/{SERVICE}/aws4_request\n",
    )


def scope_region(authorization: bytes) -> str | None:
    """The region an Authorization header's scope names (``Credential=<key>/<day>/<region>/``),
    or None where it names none; for a request already verified, so it trusts the form."""
    _, found, rest = authorization.partition(b"Credential=")
    parts = rest.split(b"/", 3)
    if not found or len(parts) < 4:
        return None
    return parts[2].decode("latin-1")


@functools.lru_cache(maxsize=64)
def _signed_at(amz_date: bytes) -> int | None:
    try:
        return _epoch(amz_date.decode("ascii"))
    except (AuthError, UnicodeDecodeError):
        return None


def check_fast(
    raw: Mapping[bytes, bytes],
    method: str,
    raw_path: str,
    body: bytes,
    now_s: float,
    found: Plan,
    signature: bytes,
    secret: str,
) -> bool:
    """True where ``verify`` would accept this request: the common case (botocore's form, no
    query string, no repeated header, no X-Amz-Content-SHA256), checked in a few steps on the
    request's raw headers with its client's ``Plan``. False: not shown here; the general path
    decides, and names what is wrong. Through the general path's objects a signed call's check
    cost ~50 us inside the busy head, this way ~22 (docs/benchmarks.md, issue 12)."""
    amz_date = raw.get(b"x-amz-date")
    if amz_date is None or amz_date[:8] != found.day or b"x-amz-content-sha256" in raw:
        return False
    signed_at = _signed_at(amz_date)
    if signed_at is None or abs(now_s - signed_at) > MAX_SKEW_S:
        return False
    try:
        lines = [
            f"{name}:{' '.join(raw[key].decode('latin-1').split())}" for name, key in found.names
        ]
    except KeyError:
        return False
    canonical = (
        f"{method.upper()}\n{canonical_path(raw_path)}\n\n"
        + "\n".join(lines)
        + found.tail
        + sha256_hex(body)
    )
    text = f"{ALGORITHM}\n{amz_date.decode('latin-1')}{found.scope_line}"
    text += sha256_hex(canonical.encode())
    states = _day_key(secret, amz_date[:8].decode("latin-1"), found.region)
    return hmac.compare_digest(_hmac_hex(states, text.encode()).encode(), signature)


def verify(
    request: SignedRequest, auth: Authorization, secret: str, region: str | None, now_s: float
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
        if not hmac.compare_digest(content_hash[0], sha256_hex(request.body)):
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
