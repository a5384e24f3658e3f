"""Real Unix users for the tests of issue 12, and running a client as one of them.

``unix_users`` (a fixture of tests/auth/conftest.py) makes ``hpcbalice``, ``hpcbbob`` and
``hpcbadm`` (in group ``hpcbadmins``), and removes them afterwards. ``as_user`` runs a function
in a forked child that has become that user (its uid, gid and groups): the child uses only what
this process has already imported, so it needs no access to the virtual environment's files,
and hands back the function's JSON answer, or the error the head gave (its AWS type and message).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hpcbatch.cli.client import Client
from hpcbatch.errors import HpcbatchError

ALICE, BOB, ADMIN = "hpcbalice", "hpcbbob", "hpcbadm"
ADMIN_GROUP = "hpcbadmins"


@contextmanager
def unix_users() -> Iterator[None]:
    made_group = subprocess.run(["getent", "group", ADMIN_GROUP], capture_output=True).returncode
    if made_group:
        subprocess.run(["groupadd", ADMIN_GROUP], check=True)
    made = []
    for name in (ALICE, BOB, ADMIN):
        try:
            pwd.getpwnam(name)
            continue  # left by an interrupted run: used as it is
        except KeyError:
            pass
        extra = ["-G", ADMIN_GROUP] if name == ADMIN else []
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/bin/sh", *extra, name], check=True
        )
        made.append(name)
    try:
        yield
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        if made_group:
            subprocess.run(["groupdel", ADMIN_GROUP], check=False)


def as_user(user: str, work: Callable[[], Any]) -> Any:
    """``work()`` run as ``user``; its answer, or ``{"error": AWS type, "message": ...}``."""
    entry = pwd.getpwnam(user)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.initgroups(user, entry.pw_gid)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            try:
                answer: Any = work()
            except HpcbatchError as error:
                answer = {"error": error.aws_type, "message": error.message}
            os.write(write, json.dumps(answer).encode())
        except BaseException:
            os.write(write, json.dumps({"crash": traceback.format_exc()}).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    answer = json.loads(b"".join(chunks))
    if isinstance(answer, dict) and "crash" in answer:
        raise AssertionError(f"the client running as {user} crashed:\n{answer['crash']}")
    return answer


def call(endpoint: str, operation: str, body: dict[str, Any]) -> Callable[[], Any]:
    """An AWS operation on ``endpoint``, to run through ``as_user``."""

    def work() -> Any:
        client = Client(endpoint)
        try:
            return client.call(operation, body)
        finally:
            client.close()

    return work


def route(
    endpoint: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Callable[[], Any]:
    """One of hpcbatch's own routes on ``endpoint``, to run through ``as_user``."""

    def work() -> Any:
        client = Client(endpoint)
        try:
            return client.request(method, path, body)
        finally:
            client.close()

    return work
