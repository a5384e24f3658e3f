"""One request's caller (a ``Principal``), from its signature or from the kernel.

Order: a request with an ``Authorization`` header is a signed request, verified whatever
connection it came on (a bad signature is refused even on the Unix socket); otherwise a caller on
the Unix socket or loopback is the Unix user the kernel names (``peer``); otherwise the request is
refused with ``MissingAuthenticationTokenException``. Admins are root and the members of the
config's ``admin_group`` (``Admins``, looked up in the head's user database, cached briefly so a
change of group takes effect within a minute without costing a lookup per request).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any

from hpcbatch.core.model import Caller
from hpcbatch.core.state import State
from hpcbatch.core.users import active_key
from hpcbatch.errors import AuthError
from hpcbatch.head.auth.peer import Peer
from hpcbatch.head.auth.sigv4 import SignedRequest, parse_authorization, verify

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

    @property
    def caller(self) -> Caller:
        return Caller(self.user, self.admin)

    @property
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


def identify_signed(request: SignedRequest, state: State, region: str, admins: Admins) -> Principal:
    """The caller of a request with an ``Authorization`` header: the user of the active key
    that signed it, or AuthError."""
    auth = parse_authorization(request.headers["authorization"][0])
    found = active_key(state, auth.key_id)
    if found is None:
        raise AuthError("UnrecognizedClientException", UNRECOGNIZED)
    verify(request, auth, found[1].secret, region, time.time())
    user = found[0]

    def make(_: object) -> Principal:
        uid = _uid(user.unix_user)
        admin = admins(user.unix_user, uid)
        return Principal(user.unix_user, admin, "key", uid, auth.key_id, user.name)

    # the same for all of a key's requests, remade every CACHE_S (admin status may change)
    made: Principal = _cached(
        _key_principals, (auth.key_id, user.unix_user, user.name, admins.group), make
    )
    return made


_key_principals: dict[tuple[str, str, str, str], tuple[float, Any]] = {}


def identify_unsigned(
    peer: Peer | None, admins: Admins, anonymous: Principal | None = None
) -> Principal:
    """The caller of an unsigned request: the kernel's word on a local peer, or AuthError."""
    if peer is not None and peer.local and peer.uid is not None:
        name = _user_name(peer.uid)
        return Principal(name, admins(name, peer.uid), "peer", peer.uid)
    if anonymous is not None:
        return anonymous
    raise AuthError("MissingAuthenticationTokenException", MISSING)


def head_principal() -> Principal:
    """The head's own user: what an in-process test app acts as (never a production path)."""
    uid = os.geteuid()
    return Principal(_user_name(uid), True, "peer", uid)
