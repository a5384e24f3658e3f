"""Who a console request acts as, and the tokens that prove it (docs/console.md, "Who sees what").

- A browser on the head's machine (loopback TCP or the Unix socket) is the Unix user the kernel
  names, as for the API: no login. Its pages must be asked for by a loopback name
  (``localhost``, ``127.0.0.1``, ``[::1]``): a page of another site that rebinds its own name to
  127.0.0.1 would otherwise read the console as that user.
- Anyone else logs in with an access key the head issued (``hpcbatch users add``), the same
  identity the API's signatures carry. The session is a cookie holding the key's id and an
  expiry, signed with the head's console secret (``<data_dir>/console.key``, made at the first
  start, 0600): it survives a head restart and ends at once when the key is deactivated or
  deleted. The cookie is HttpOnly, SameSite=Strict, and Secure when served over TLS.
- Every change (a POST) carries a CSRF token bound to the caller, signed with the same
  secret, and a cross-site Origin is refused outright.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from hpcbatch.core.state import State
from hpcbatch.core.users import active_key
from hpcbatch.head.auth.identify import Admins, Principal, key_principal

COOKIE = "hpcbatch_console"
SECRET_BYTES = 32
SESSION_S = 12 * 3600
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def load_secret(data_dir: Path) -> bytes:
    """The console's signing secret: read, or made once (0600) in the data directory. It is
    written whole (a temporary file renamed into place), so a crash never leaves a short one."""
    path = data_dir / "console.key"
    try:
        kept = path.read_bytes()
        if len(kept) >= SECRET_BYTES:
            return kept
    except FileNotFoundError:
        pass
    made = secrets.token_bytes(SECRET_BYTES)
    temporary = data_dir / f".console.key.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(made)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return made


def _sign(secret: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload, hashlib.sha256).digest()).decode()


def session_cookie(secret: bytes, key_id: str, secure: bool, now: float | None = None) -> bytes:
    expires = int((now or time.time()) + SESSION_S)
    payload = base64.urlsafe_b64encode(json.dumps({"k": key_id, "e": expires}).encode())
    value = payload.decode() + "." + _sign(secret, payload)
    flags = f"; Path=/console/; Max-Age={SESSION_S}; HttpOnly; SameSite=Strict"
    return (f"{COOKIE}={value}" + flags + ("; Secure" if secure else "")).encode()


def cleared_cookie(secure: bool) -> bytes:
    flags = "; Path=/console/; Max-Age=0; HttpOnly; SameSite=Strict"
    return (f"{COOKIE}=" + flags + ("; Secure" if secure else "")).encode()


def cookie_value(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def session_principal(
    secret: bytes, value: str, state: State, admins: Admins, now: float | None = None
) -> Principal | None:
    """The principal of a session cookie: None when its signature, its age or its key fails."""
    payload, _, signature = value.partition(".")
    expected = _sign(secret, payload.encode("utf-8", "replace")).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(payload.encode()))
        key_id, expires = str(doc["k"]), int(doc["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now or time.time()):
        return None
    found = active_key(state, key_id)
    return None if found is None else key_principal(found[0], key_id, admins)


def check_login(state: State, key_id: str, secret_key: str) -> str | None:
    """The key id when it is active and ``secret_key`` is its secret, else None (compared as
    bytes in constant time: a form may send any characters)."""
    found = active_key(state, key_id.strip())
    given = secret_key.strip().encode("utf-8", "replace")
    if found is None:
        hmac.compare_digest(given, given)  # the same work as a wrong secret
        return None
    return key_id.strip() if hmac.compare_digest(found[1].secret.encode(), given) else None


def csrf_token(secret: bytes, principal: Principal) -> str:
    who = f"{principal.via}|{principal.user}|{principal.uid}|{principal.key_id}"
    return _sign(secret, b"csrf|" + who.encode())[:32]


def csrf_ok(secret: bytes, principal: Principal, token: str | None) -> bool:
    if token is None:
        return False
    expected = csrf_token(secret, principal).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine by a loopback name (any port)."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("[") and "]:" in host:
        name = host.split("]:", 1)[0] + "]"
    return name in LOOPBACK_HOSTS or name.startswith("127.")


def same_origin(origin: str | None, host: str | None) -> bool:
    """A POST's Origin (where the browser sent one) names the console's own host."""
    if origin is None:
        return True  # not a browser's cross-site form; the CSRF token still has to match
    return host is not None and origin.split("://", 1)[-1] == host
