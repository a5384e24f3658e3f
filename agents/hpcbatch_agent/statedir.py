"""The agent's state directory: made by the agent itself, owned by it, writable by it alone.

Vocabulary:
    state dir  everything one agent owns (see main.py). A root agent opens, writes and
               removes files in it, so whoever else could write in it could plant a symlink
               and have root write through it: the dir and its subdirs must be owned by the
               agent's uid and not writable by group or others. An existing one that breaks
               this is refused, naming its path, owner and mode; one that is merely more
               readable than needed is tightened.
    modes      the state dir 0711 and work/ 0711: a job running as a user must be able to
               reach its own work dir ``work/<attempt>`` (owned by that user) by path, and
               nothing more (no listing). logs/, spool/ and reaped/ are 0700: a user reads
               a job's log through the head, never here.
Files in it are opened with O_NOFOLLOW and created 0600 (``open_private``). Standard library
only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from pathlib import Path

STATE_DIR_MODE = 0o711
SUBDIR_MODES = {"logs": 0o700, "spool": 0o700, "reaped": 0o700, "work": 0o711, "launch": 0o711}
PRIVATE_FILE_MODE = 0o600


class StateDirError(Exception):
    """The state dir (or a file in it) cannot be trusted; the message says which and why."""


def prepare_state_dir(path: Path) -> None:
    """Create the state dir and its subdirs with their modes, or check and tighten existing
    ones. Raises StateDirError for one owned by another uid, writable by group or others, or
    not a directory (a symlink included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _ensure_dir(path, STATE_DIR_MODE, "state directory")
    for name, mode in SUBDIR_MODES.items():
        _ensure_dir(path / name, mode, "state subdirectory")


def _ensure_dir(path: Path, mode: int, what: str) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        info = _lstat(path)
        kind = "a symbolic link" if info and stat.S_ISLNK(info.st_mode) else "not a directory"
        raise StateDirError(f"refusing {what} {path}: {kind} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        problem = _ownership_problem(info)
        if problem is not None:
            raise StateDirError(f"refusing {what} {path}: {_describe(info)}: {problem}")
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)  # also right after mkdir: the umask may have cleared bits
    finally:
        os.close(fd)


def _ownership_problem(info: os.stat_result) -> str | None:
    me = os.geteuid()
    if info.st_uid != me:
        return f"it must be owned by the agent's uid {me} ({_user(me)})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "it must not be writable by group or others"
    return None


def _describe(info: os.stat_result) -> str:
    mode = stat.S_IMODE(info.st_mode)
    return f"owner uid {info.st_uid} ({_user(info.st_uid)}), mode {mode:04o}"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "no such user"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def open_private(path: Path | str, flags: int) -> int:
    """An fd for a file of the state dir: never through a symlink (ELOOP is raised as a
    StateDirError naming the path), created 0600, and an existing file more open than 0600
    tightened to it."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink where the agent's own file belongs
            raise StateDirError(f"refusing {path}: it is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & ~PRIVATE_FILE_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
