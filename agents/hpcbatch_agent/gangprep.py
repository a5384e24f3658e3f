"""A gang node's job as the launch server sees it: prepared before its spawn, journaled with
its start, and taken back by a restarted agent that adopts the job.

Vocabulary:
    gang attempt  a running gang node's job (its launch spec carries a ``launch_key``): the
                  key a launch client must prove, and the job's own spawn request (user,
                  slot, environment, cwd), which every launched command reuses
                  (launchserver.py).
    preparation   before the spawn: the attempt's launch dir (launchdir.py) and the gang
                  variables (mpienv.py) added to the job's environment.
    journal       the start record of a gang node's job keeps ``gang``: its environment,
                  cwd and the uid it switched to (never the key, which stays in its file).
    readoption    after an agent restart, an adopted gang node's job is a gang attempt again:
                  its request rebuilt from the journal, its user looked up again (still the
                  same uid), its key read back from ``launch.key`` (read_launch_key checks
                  the file). Any doubt refuses it, logged: its job runs on, unreachable by
                  launches, rather than launches running as anyone else.
Standard library only.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import Any

from .agentlog import log
from .launchdir import launch_dir, make_launch_dir, read_launch_key, remove_launch_dir
from .mpienv import gang_environment
from .slots import Slot
from .spawn import SpawnRequest
from .users import RunAs, run_as

GANG = "gang"  # the start record's key


@dataclass
class GangAttempt:
    """A running gang node's job, as its launch server starts commands for it: the key a
    client must prove, and the job's own spawn request (user, slot, environment, cwd)."""

    key: bytes
    request: SpawnRequest


def prepare_gang(
    state_dir: str,
    attempt_id: str,
    key: str,
    env: dict[str, str],
    who: RunAs | None,
    launcher: list[str],
) -> str | None:
    """A gang node's launch dir, and its variables added to ``env``; or why not."""
    directory = launch_dir(state_dir, attempt_id)
    root = who.uid == 0 if who is not None else os.geteuid() == 0
    owner = (who.uid, who.gid) if who is not None else None
    try:
        added = gang_environment(env, directory, run_as_root=root)
        make_launch_dir(directory, key, env, launcher, owner)
    except (ValueError, OSError) as exc:
        remove_launch_dir(directory)
        return f"CannotStartContainerError: cannot prepare the MPI launch files: {exc}"
    env.update(added)
    return None


def journal_entry(request: SpawnRequest) -> dict[str, Any]:
    """What a restarted agent needs to serve launches into this job again."""
    uid = request.user.uid if request.user is not None else None
    return {"env": request.env, "cwd": request.cwd, "cwd_made": request.cwd_made, "uid": uid}


def readopt(
    state_dir: str, attempt_id: str, record: dict[str, Any], slot: Slot | None
) -> GangAttempt | None:
    """The adopted job of ``record`` as a gang attempt again, or None (logged why)."""
    entry = record.get(GANG)
    if not isinstance(entry, dict):
        return None
    try:
        user = _user(entry.get("uid"))
        owner = user.uid if user is not None else os.geteuid()
        key = read_launch_key(launch_dir(state_dir, attempt_id), owner)
        env = {str(name): str(value) for name, value in dict(entry["env"]).items()}
        cwd = str(entry["cwd"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"launches into adopted gang attempt {attempt_id!r} are refused: {exc}")
        return None
    request = SpawnRequest("", [], env, cwd, "", slot, user, bool(entry.get("cwd_made")))
    return GangAttempt(key, request)


def _user(uid: object) -> RunAs | None:
    """The user a job switched to (None: it runs as the agent), looked up again."""
    if uid is None:
        return None
    if not isinstance(uid, int):
        raise ValueError(f"the journaled uid {uid!r} is not a number")
    found = run_as(pwd.getpwuid(uid).pw_name)
    if isinstance(found, str):
        raise ValueError(found)
    if found.uid != uid or not found.switch:
        raise ValueError(f"user {found.name!r} is uid {found.uid} now, not {uid}")
    return found
