"""``hpcbatch users`` (admins: access keys for remote callers) and ``hpcbatch whoami``.

A **user** here is a name the head maps to a Unix user (``unixUser``): requests signed with one
of its **access keys** act as that Unix user. A key is ``Active`` or ``Inactive``; its secret is
shown once, by ``add`` and ``rotate``, and never again. Local callers need no key: the head reads
their uid from the unix socket (or, on loopback TCP, from the kernel's socket table).

Routes (hpcbatch's own, admin only except whoami): ``GET/POST /hpcbatch/v1/users``,
``POST .../users/NAME/keys``, ``POST .../keys/KEYID/disable|enable``, ``DELETE .../users/NAME``,
``GET /hpcbatch/v1/whoami``.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context

USERS = "/hpcbatch/v1/users"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "users", parents=[common], help="access keys for remote callers (admins)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", parents=[common], help="users and their keys (default)")
    add = actions.add_parser("add", parents=[common], help="a new user and its first key")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--unix-user", required=True, metavar="U", help="the Unix user its requests act as"
    )
    rotate = actions.add_parser("rotate", parents=[common], help="a new key for a user")
    rotate.add_argument("name", metavar="NAME")
    rotate.add_argument(
        "--keep-old", action="store_true", help="leave the user's other keys active"
    )
    for action, verb in (("disable-key", "disable"), ("enable-key", "enable")):
        key = actions.add_parser(action, parents=[common], help=f"{verb} one access key")
        key.add_argument("name", metavar="NAME")
        key.add_argument("key_id", metavar="KEYID")
        key.set_defaults(verb=verb)
    remove = actions.add_parser("remove", parents=[common], help="remove a user and its keys")
    remove.add_argument("name", metavar="NAME")
    parser.set_defaults(func=run, action=None)

    whoami = sub.add_parser(
        "whoami", parents=[common], help="who the head takes you for, and whether admin"
    )
    whoami.set_defaults(func=run_whoami)


def user_path(name: str, *rest: str) -> str:
    return "/".join([USERS, *(urllib.parse.quote(part, safe="") for part in (name, *rest))])


def run(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
    if args.action == "add":
        reply = client.post(USERS, {"name": args.name, "unixUser": args.unix_user})
        return show_new_key(ctx, reply, f"user {args.name} (Unix user {args.unix_user})")
    if args.action == "rotate":
        reply = client.post(user_path(args.name, "keys"), {"disableOthers": not args.keep_old})
        others = "left active" if args.keep_old else "disabled"
        return show_new_key(ctx, reply, f"a new key for {args.name}; its other keys {others}")
    if args.action in ("disable-key", "enable-key"):
        reply = client.post(user_path(args.name, "keys", args.key_id, args.verb), {})
        return done(ctx, reply, f"{args.verb}d key {args.key_id} of {args.name}")
    if args.action == "remove":
        reply = client.request("DELETE", user_path(args.name), None)
        return done(ctx, reply, f"removed user {args.name} and its keys")
    return list_users(ctx)


def done(ctx: Context, reply: dict[str, Any], what: str) -> int:
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(what + "\n")
    return EXIT_OK


def show_new_key(ctx: Context, reply: dict[str, Any], what: str) -> int:
    if ctx.json_output:
        ctx.emit_json(reply)
        return EXIT_OK
    key_id = str(reply.get("accessKeyId", ""))
    secret = str(reply.get("secretAccessKey", ""))
    name = str((reply.get("user") or {}).get("name") or "NAME")
    sys.stdout.write(new_key_text(what, key_id, secret, name, example_endpoint(ctx.endpoint)))
    return EXIT_OK


def new_key_text(what: str, key_id: str, secret: str, profile: str, endpoint: str) -> str:
    """What ``add`` and ``rotate`` print: the key, shown this once, and two ways to use it."""
    return (
        f"Created {what}.\n"
        f"Access key id:     {key_id}\n"
        f"Secret access key: {secret}\n"
        "The secret is shown only now: store it.\n"
        "\n"
        "Use it from a shell:\n"
        f"  export AWS_ACCESS_KEY_ID={key_id}\n"
        f"  export AWS_SECRET_ACCESS_KEY={secret}\n"
        "or as a profile in ~/.aws/credentials:\n"
        f"  [{profile}]\n"
        f"  aws_access_key_id = {key_id}\n"
        f"  aws_secret_access_key = {secret}\n"
        f"then: hpcbatch --profile {profile} --endpoint {endpoint} jobs\n"
    )


def example_endpoint(endpoint: str) -> str:
    """Keys are for remote callers: a unix socket is no example of where to use one."""
    return endpoint if endpoint.startswith(("http://", "https://")) else "https://HEAD:7650"


def list_users(ctx: Context) -> int:
    reply = ctx.client.get(USERS)
    if ctx.json_output:
        ctx.emit_json(reply)
        return EXIT_OK
    from hpcbatch.cli.render import table

    rows = [row for user in reply.get("users") or [] for row in user_rows(user)]
    sys.stdout.write(table(["NAME", "UNIX-USER", "KEY", "STATUS", "CREATED"], rows) + "\n")
    return EXIT_OK


def user_rows(user: dict[str, Any]) -> list[list[str]]:
    """One row per key (CREATED is the key's); a user without keys still gets a row."""
    name, unix_user = str(user.get("name", "")), str(user.get("unixUser", ""))
    keys = user.get("keys") or []
    if not keys:
        return [[name, unix_user, "", "", when(user.get("createdAt"))]]
    return [
        [
            name,
            unix_user,
            str(key.get("accessKeyId", "")),
            str(key.get("status", "")),
            when(key.get("createdAt")),
        ]
        for key in keys
    ]


def when(value: Any) -> str:
    """The API's epoch milliseconds as local time; text (an ISO date) as given."""
    from hpcbatch.cli.render import fmt_time

    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_time(int(value))
    return str(value) if value else ""


def run_whoami(args: argparse.Namespace, ctx: Context) -> int:
    reply = ctx.client.get("/hpcbatch/v1/whoami")
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(whoami_text(reply) + "\n")
    return EXIT_OK


def whoami_text(reply: dict[str, Any]) -> str:
    """``alice (uid 1000) via the socket's peer`` / ``root (uid 0, admin) via key AKIA…``."""
    uid = reply.get("uid")
    facts = [f"uid {uid}"] if uid is not None else []
    if reply.get("admin"):
        facts.append("admin")
    via = reply.get("via")
    if via == "key":
        how = f"via access key {reply.get('accessKeyId') or '?'}"
    elif via == "peer":
        how = "via the connection's peer credentials"
    else:
        how = f"via {via}" if via else ""
    text = str(reply.get("user", "?")) + (f" ({', '.join(facts)})" if facts else "")
    return f"{text} {how}".rstrip()
