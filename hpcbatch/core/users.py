"""API users and their access keys: who may sign requests to the head, and as whom they act.

Vocabulary: a **user** (``model.User``) is a name the head issued keys to and the Unix user its
requests act as; an **access key** is an id (``HPCB`` + 16 upper-case letters and digits) and a
secret; an inactive key is refused like an unknown one. ``state.users`` by name and
``state.user_keys`` (key id -> user name) are kept together here. Key ids and secrets come in the
events (the head makes them at random); the journal records who made what, never a secret.
"""

from __future__ import annotations

import re

from hpcbatch.core import events as ev
from hpcbatch.core.model import AccessKey, User
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
UNIX_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}\$?")
KEY_ID_RE = re.compile(r"HPCB[A-Z0-9]{16}")
SECRET_RE = re.compile(r"[A-Za-z0-9+/]{40}")
MAX_KEYS = 2 + 8  # AWS allows 2 per IAM user; a few more for rotations in flight


def user_subject(name: str) -> str:
    return f"user:{name}"


def _check_key(key_id: str, secret: str) -> None:
    if not KEY_ID_RE.fullmatch(key_id) or not SECRET_RE.fullmatch(secret):
        raise ValidationError("accessKeyId", "the head made a malformed key (a bug)")


def _user(state: State, name: str) -> User:
    user = state.users.get(name)
    if user is None:
        raise NotFoundError(f"user: no user {name!r}")
    return user


def add_user(state: State, e: ev.AddUser) -> None:
    if not NAME_RE.fullmatch(e.name):
        raise ValidationError(
            "name", "must be 1-64 of A-Z a-z 0-9 . _ @ - and start with a letter or digit"
        )
    if not UNIX_USER_RE.fullmatch(e.unix_user):
        raise ValidationError("unixUser", f"{e.unix_user[:40]!r} is not a valid Unix user name")
    if e.name in state.users:
        raise ConflictError(f"name: user {e.name!r} already exists")
    _check_key(e.key_id, e.secret)
    if e.key_id in state.user_keys:
        raise ConflictError("accessKeyId: already issued (a bug: ids are random)")
    user = User(e.name, e.unix_user, e.now, e.by)
    user.keys[e.key_id] = AccessKey(e.key_id, e.secret, True, e.now)
    state.users[e.name] = user
    state.user_keys[e.key_id] = e.name
    state.changes.touch("user", e.name)
    detail = f"acts as Unix user {e.unix_user}; access key {e.key_id}"
    state.journal(e.now, e.cause, user_subject(e.name), "USER_ADDED", detail)


def add_key(state: State, e: ev.AddAccessKey) -> None:
    user = _user(state, e.user)
    _check_key(e.key_id, e.secret)
    if e.key_id in state.user_keys:
        raise ConflictError("accessKeyId: already issued (a bug: ids are random)")
    if not e.disable_others and len(user.keys) >= MAX_KEYS:
        raise ConflictError(
            f"user {user.name!r} has {len(user.keys)} keys, the most a user may have; rotate "
            "with the others disabled (without --keep-old)"
        )
    disabled = []
    if e.disable_others:
        for key in list(user.keys.values()):
            if key.active:
                key.active = False
                disabled.append(key.key_id)
        # inactive keys beyond the limit go: a user rotating daily keeps a bounded list
        while len(user.keys) >= MAX_KEYS:
            oldest = next(k for k in user.keys.values() if not k.active)
            del user.keys[oldest.key_id]
            del state.user_keys[oldest.key_id]
    user.keys[e.key_id] = AccessKey(e.key_id, e.secret, True, e.now)
    state.user_keys[e.key_id] = user.name
    state.changes.touch("user", user.name)
    detail = f"access key {e.key_id}" + (f"; disabled {', '.join(disabled)}" if disabled else "")
    state.journal(e.now, e.cause, user_subject(user.name), "KEY_ADDED", detail)


def set_key_active(state: State, e: ev.SetAccessKeyActive) -> None:
    user = _user(state, e.user)
    key = user.keys.get(e.key_id)
    if key is None:
        raise NotFoundError(f"accessKeyId: user {user.name!r} has no key {e.key_id!r}")
    if key.active == e.active:
        return
    key.active = e.active
    state.changes.touch("user", user.name)
    event = "KEY_ENABLED" if e.active else "KEY_DISABLED"
    state.journal(e.now, e.cause, user_subject(user.name), event, f"access key {e.key_id}")


def remove_user(state: State, e: ev.RemoveUser) -> None:
    user = _user(state, e.name)
    for key_id in user.keys:
        del state.user_keys[key_id]
    del state.users[user.name]
    state.changes.drop("user", user.name)
    state.journal(e.now, e.cause, user_subject(user.name), "USER_REMOVED", "")


def active_key(state: State, key_id: str) -> tuple[User, AccessKey] | None:
    """The user and key a request signed with ``key_id`` acts for; None: unknown or inactive."""
    name = state.user_keys.get(key_id)
    if name is None:
        return None
    user = state.users[name]
    key = user.keys[key_id]
    return (user, key) if key.active else None
