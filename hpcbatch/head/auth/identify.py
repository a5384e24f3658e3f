"""One request's caller (a ``Principal``), from its signature or from the kernel.

Order: a request with an ``Authorization`` header is a signed request, verified whatever
connection it came on (a bad signature is refused even on the Unix socket); otherwise a caller on
the Unix socket or loopback is the Unix user the kernel names (``peer``); otherwise the request is
refused with ``MissingAuthenticationTokenException``. Admins are root and the members of the
config's ``admin_group`` (``Admins``, looked up in the head's user database, cached briefly so a
change of group takes effect within a minute without costing a lookup per request).
"""

from __future__ import annotations

import functools
import grp
import logging
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any

from hpcbatch.core.model import Caller, User
from hpcbatch.core.state import State
from hpcbatch.core.users import active_key
from hpcbatch.errors import AuthError
from hpcbatch.head.auth.peer import Peer
from hpcbatch.head.auth.sigv4 import SignedRequest, check_fast, parse_authorization, plan, verify

log = logging.getLogger("hpcbatch.auth")

CACHE_S = 30.0


@dataclass(frozen=True)
class Principal:
    user: str  # the Unix user the request acts as
    admin: bool
    via: str  # "peer" (the kernel said) or "key" (a signature with an issued key)
    uid: int | None = None
    key_id: str | None = None
    api_user: str | None = None  # the name the key was issued to

    # one Principal serves all of a caller's requests for CACHE_S (``key_principal``,
    # ``identify_unsigned``): what it says is worked out once
    @functools.cached_property
    def caller(self) -> Caller:
        return Caller(self.user, self.admin)

    @functools.cached_property
    def label(self) -> str:
        """Who, for the journal's cause and the logs."""
        return self.user if self.key_id is None else f"{self.user} (key {self.key_id})"


def _cached(cache: dict[Any, tuple[float, Any]], key: Any, look: Any) -> Any:
    """``look(key)`` (None for a KeyError), asked at most every CACHE_S seconds: a user
    database lookup reads /etc/passwd or asks NSS, too dear for every request."""
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        answer = look(key)
    except KeyError:
        answer = None
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now + CACHE_S, answer)
    return answer


class Admins:
    """Is a Unix user an admin: root, or in ``group`` (as a member or by primary group)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._cache: dict[str, tuple[float, bool]] = {}

    def __call__(self, user: str, uid: int | None) -> bool:
        if uid == 0 or user == "root":
            return True
        return bool(self.group) and bool(_cached(self._cache, user, self._lookup))

    def _lookup(self, user: str) -> bool:
        try:
            group = grp.getgrnam(self.group)
        except KeyError:
            return False
        if user in group.gr_mem:
            return True
        try:
            return pwd.getpwnam(user).pw_gid == group.gr_gid
        except KeyError:
            return False


_names: dict[int, tuple[float, str | None]] = {}
_uids: dict[str, tuple[float, int | None]] = {}


def _user_name(uid: int) -> str:
    name: str | None = _cached(_names, uid, lambda u: pwd.getpwuid(u).pw_name)
    if name is None:
        raise AuthError("AccessDeniedException", f"uid {uid} has no user name on the head's host")
    return name


def _uid(user: str) -> int:
    uid: int | None = _cached(_uids, user, lambda u: pwd.getpwnam(u).pw_uid)
    if uid is None:
        raise AuthError(
            "UnrecognizedClientException",
            f"the access key acts as Unix user {user!r}, who does not exist on the head's host",
        )
    return uid


MISSING = (
    "Missing Authentication Token: sign the request with an access key an admin issued "
    "(hpcbatch users add), or call the head on its Unix socket or from this host"
)
UNRECOGNIZED = "The security token included in the request is invalid."


def identify_signed(
    request: SignedRequest, state: State, region: str | None, admins: Admins
) -> Principal:
    """The caller of a request with an ``Authorization`` header: the user of the active key
    that signed it, or AuthError."""
    auth = parse_authorization(request.headers["authorization"][0])
    found = active_key(state, auth.key_id)
    if found is None:
        raise AuthError("UnrecognizedClientException", UNRECOGNIZED)
    verify(request, auth, found[1].secret, region, time.time())
    return key_principal(found[0], auth.key_id, admins)


def identify_fast(
    raw: dict[bytes, bytes],
    method: str,
    raw_path: str,
    body: bytes,
    state: State,
    region: str | None,
    admins: Admins,
) -> Principal | None:
    """``identify_signed``'s answer for a request in the common form (``sigv4.check_fast``:
    no query string, no repeated header), from its raw headers; None: ask
    ``identify_signed``, which also says why a request is refused."""
    prefix, _, signature = raw[b"authorization"].rpartition(b", Signature=")
    found_plan = plan(prefix, region) if len(prefix) <= 512 else None
    if found_plan is None:
        return None
    found = active_key(state, found_plan.key_id)
    if found is None or not check_fast(
        raw, method, raw_path, body, time.time(), found_plan, signature, found[1].secret
    ):
        return None
    return key_principal(found[0], found_plan.key_id, admins)


def key_principal(user: User, key_id: str, admins: Admins) -> Principal:
    """The Principal of a key's requests: made once per CACHE_S (admin status may change),
    and anew at once when the key's user changes."""
    made: Principal = _cached(
        _key_principals, (key_id, user.unix_user, user.name, admins), _new_key_principal
    )
    return made


def _new_key_principal(key: tuple[str, str, str, Admins]) -> Principal:
    key_id, unix_user, name, admins = key
    uid = _uid(unix_user)
    return Principal(unix_user, admins(unix_user, uid), "key", uid, key_id, name)


def _new_peer_principal(key: tuple[int, Admins]) -> Principal:
    uid, admins = key
    name = _user_name(uid)
    return Principal(name, admins(name, uid), "peer", uid)


_key_principals: dict[tuple[str, str, str, Admins], tuple[float, Any]] = {}
_peer_principals: dict[tuple[int, Admins], tuple[float, Any]] = {}


def identify_unsigned(
    peer: Peer | None, admins: Admins, anonymous: Principal | None = None
) -> Principal:
    """The caller of an unsigned request: the kernel's word on a local peer, or AuthError."""
    if peer is not None and peer.local and peer.uid is not None:
        # one Principal per uid for CACHE_S (name and admin status are looked up to make it)
        made: Principal = _cached(_peer_principals, (peer.uid, admins), _new_peer_principal)
        return made
    if anonymous is not None:
        return anonymous
    raise AuthError("MissingAuthenticationTokenException", MISSING)


def head_principal() -> Principal:
    """The head's own user: what an in-process test app acts as (never a production path)."""
    uid = os.geteuid()
    return Principal(_user_name(uid), True, "peer", uid)
