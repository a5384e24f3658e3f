"""``/hpcbatch/v1/users``: the API users an admin issues access keys to (admins only).

- ``GET    users`` — every user and its keys (never a secret)
- ``POST   users`` ``{"name", "unixUser"}`` — a new user and its first key; the answer is the
  only place the secret ever appears
- ``POST   users/<name>/keys`` ``{"disableOthers": bool}`` — a new key (rotation)
- ``POST   users/<name>/keys/<keyId>/disable`` and ``.../enable``
- ``DELETE users/<name>``

The head makes key ids and secrets (``secrets``: 16 characters of A-Z0-9 after ``HPCB``, and 40 of
base64's alphabet, as AWS's look); the core records them. The Unix user a key acts as must exist
on the head's host when it is issued.
"""

from __future__ import annotations

import pwd
import secrets
import string
from typing import Any

from hpcbatch.core import events as ev
from hpcbatch.core.model import User
from hpcbatch.errors import NotFoundError, ValidationError
from hpcbatch.head.api.bodies import json_object
from hpcbatch.head.api.operations import Call
from hpcbatch.head.auth.policy import require_admin
from hpcbatch.head.loop import now_ms

KEY_ALPHABET = string.ascii_uppercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_key() -> tuple[str, str]:
    key_id = "HPCB" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


def user_doc(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "unixUser": user.unix_user,
        "createdAt": user.created_at,
        "createdBy": user.created_by,
        "keys": [
            {
                "accessKeyId": key.key_id,
                "status": "Active" if key.active else "Inactive",
                "createdAt": key.created_at,
            }
            for key in user.keys.values()
        ],
    }


def _string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "is required: a non-empty string")
    return value


async def route(call: Call, method: str, parts: list[str], body: bytes) -> Any:
    require_admin(call.principal, f"{method} users", "manage users and their access keys")
    state = call.head.state
    if not parts and method == "GET":
        return {"users": [user_doc(u) for u in sorted(state.users.values(), key=lambda u: u.name)]}
    if not parts and method == "POST":
        return await _add(call, json_object(body))
    if len(parts) == 1 and method == "DELETE":
        await call.head.loop.call(ev.RemoveUser(cause=call.cause, now=now_ms(), name=parts[0]))
        return {}
    if len(parts) == 2 and parts[1] == "keys" and method == "POST":
        disable = json_object(body).get("disableOthers", False)
        if not isinstance(disable, bool):
            raise ValidationError("disableOthers", "must be true or false")
        key_id, secret = new_key()
        event = ev.AddAccessKey(
            cause=call.cause,
            now=now_ms(),
            user=parts[0],
            key_id=key_id,
            secret=secret,
            disable_others=disable,
        )
        await call.head.loop.call(event)
        return {"accessKeyId": key_id, "secretAccessKey": secret}
    if (
        len(parts) == 4
        and parts[1] == "keys"
        and parts[3] in ("disable", "enable")
        and method == "POST"
    ):
        await call.head.loop.call(
            ev.SetAccessKeyActive(
                cause=call.cause,
                now=now_ms(),
                user=parts[0],
                key_id=parts[2],
                active=parts[3] == "enable",
            )
        )
        return {}
    raise NotFoundError(f"no route for {method} /hpcbatch/v1/users/{'/'.join(parts)}")


async def _add(call: Call, document: dict[str, Any]) -> dict[str, Any]:
    name = _string(document, "name")
    unix_user = _string(document, "unixUser")
    try:
        pwd.getpwnam(unix_user)
    except (KeyError, ValueError):
        raise ValidationError(
            "unixUser", f"no Unix user {unix_user[:64]!r} on the head's host"
        ) from None
    key_id, secret = new_key()
    event = ev.AddUser(
        cause=call.cause,
        now=now_ms(),
        name=name,
        unix_user=unix_user,
        key_id=key_id,
        secret=secret,
        by=call.principal.label,
    )
    await call.head.loop.call(event)
    user = call.head.state.users[name]
    return {"user": user_doc(user), "accessKeyId": key_id, "secretAccessKey": secret}
