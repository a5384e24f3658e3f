"""Back up the head's state while it runs, and put a backup back in place after a loss.

Vocabulary: a **backup** is one tar file (gzip-compressed) holding ``state.db``, a consistent
copy of the head's SQLite store, ``launch.secret``, the head secret the launch keys of running
gangs derive from (``launch_keys.py``; a restored head without it would give a running gang's
relaunched main node a key its other nodes do not hold), and ``backup.json``, what was saved.
Nothing else in the data dir is the head's own state: ``head.lock`` is a lock, ``retiring/``
is rewritten from the store when needed, and ``agents/`` is the LOCAL nodes' agents' own
state (their spools and job logs), which belongs with their jobs, not with the head.

Consistency. ``state.db`` is copied with SQLite's online backup API in a single step: the
copy holds one read transaction, so in WAL mode (the store's) it sees one committed instant and
never blocks the head's writer, nor is it restarted by the head's commits, as a copy in
several steps would be. A busy timeout rides out the moments a reader must wait (WAL recovery,
a checkpoint resetting the WAL). The copy is checked (``PRAGMA integrity_check``, and that it
is an hpcbatch store this hpcbatch can read) before the tar is written to ``OUT.tmp`` (0600:
it holds the secrets of issued access keys) and renamed to ``OUT``. When the process is root,
SQLite itself gives any -wal/-shm file it creates the database file's owner.

Restore takes the head lock (so no head can start midway, and a running one is named by pid),
checks the backup the same way, moves the current ``state.db`` and its -wal/-shm/-journal
files aside as ``state.db.before-restore-<time>`` (with the same suffixes, so the set still
opens as the database it was; never deleted here), a differing ``launch.secret`` likewise,
and renames the backup's files into place, 0600, owned by the data dir's owner.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hpcbatch.errors import HpcbatchError
from hpcbatch.head import datalock
from hpcbatch.head.launch_keys import SECRET_FILE
from hpcbatch.store.base import SCHEMA_VERSION_KEY
from hpcbatch.store.sqlite import PRIVATE_MODE, SCHEMA_VERSION, make_private

STATE_FILE = "state.db"
MANIFEST_FILE = "backup.json"
MEMBERS = (STATE_FILE, SECRET_FILE, MANIFEST_FILE)
COMPANIONS = ("-wal", "-shm", "-journal")
BUSY_TIMEOUT_S = 30.0
RESTORE_HINT = "stop the head first: a restore replaces the state it holds"


class BackupError(HpcbatchError):
    """A backup or restore refused or failed; the message names the path and the rule."""


@dataclass(frozen=True)
class Saved:
    """What a backup holds: record counts by kind, the copy's size, whether the secret came."""

    path: Path
    counts: dict[str, int]
    db_bytes: int
    secret: bool


# -- backup ------------------------------------------------------------------------------------


def backup(data_dir: Path, out: Path, force: bool = False) -> Saved:
    """Write a backup of ``data_dir``'s state to ``out``; the head may be running or not."""
    source = Path(data_dir).absolute() / STATE_FILE
    out = Path(out).absolute()
    if not source.is_file():
        raise BackupError(f"no head state to back up: {source} does not exist")
    _check_out(out, force)
    secret = _read_secret(source.parent / SECRET_FILE)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise BackupError(f"cannot write the backup {out}: {error.strerror}") from None
    tmp = out.with_name(out.name + ".tmp")
    try:
        copy = staging / STATE_FILE
        _online_copy(source, copy)
        counts = check_state(copy)
        saved = Saved(out, counts, copy.stat().st_size, secret is not None)
        manifest = _manifest(source.parent, saved)
        _write_tar(tmp, copy, secret, manifest)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise BackupError(f"cannot write the backup {out}: {error}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return saved


def _check_out(out: Path, force: bool) -> None:
    if out.is_dir():
        raise BackupError(f"{out} is a directory; name the backup file to write")
    if out.exists() and not force:
        raise BackupError(f"{out} exists; choose another name, or --force to replace it")
    if not out.parent.is_dir():
        raise BackupError(f"cannot write the backup {out}: {out.parent} is not a directory")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write the backup {out}: {out.parent} is not writable")


def _read_secret(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None  # a head that never started leaves none; the next start makes one
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None


def _online_copy(source: Path, copy: Path) -> None:
    """One-step online backup of ``source`` into the new file ``copy`` (made 0600 first)."""
    make_private(copy)
    try:
        # mode=rw: never create a database where there is none.
        src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open {source}: {error}") from None
    try:
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)  # pages=-1: the whole file under one read transaction
        finally:
            dst.close()
    except sqlite3.Error as error:
        raise BackupError(f"cannot copy {source}: {error}") from None
    finally:
        src.close()


def _manifest(data_dir: Path, saved: Saved) -> bytes:
    doc = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data_dir": str(data_dir),
        "records": saved.counts,
        "state_bytes": saved.db_bytes,
        "launch_secret": saved.secret,
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def _write_tar(tmp: Path, copy: Path, secret: bytes | None, manifest: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)  # a stale OUT.tmp may have had another mode
    with os.fdopen(fd, "wb") as file:
        with tarfile.open(fileobj=file, mode="w:gz") as tar:
            tar.add(copy, arcname=STATE_FILE, recursive=False)
            if secret is not None:
                _add_bytes(tar, SECRET_FILE, secret)
            _add_bytes(tar, MANIFEST_FILE, manifest)
        file.flush()
        os.fsync(file.fileno())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), PRIVATE_MODE, int(time.time())
    tar.addfile(info, io.BytesIO(data))


# -- checking ----------------------------------------------------------------------------------


def check_state(path: Path) -> dict[str, int]:
    """Record counts by kind of the hpcbatch store at ``path``, after checking it whole;
    ``BackupError`` naming ``path`` when it is corrupt, not a store, or too new to read."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open {path}: {error}") from None
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{path} fails its integrity check: {'; '.join(problems[:5])}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "record", "journal"} <= tables:
            raise BackupError(f"{path} is not an hpcbatch state file (tables {sorted(tables)})")
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (SCHEMA_VERSION_KEY,)).fetchone()
        version = str(row[0]) if row else ""
        if not version.isdigit() or int(version) > SCHEMA_VERSION:
            raise BackupError(
                f"{path} has schema version {version or 'none'}; this hpcbatch reads up to"
                f" {SCHEMA_VERSION}"
            )
        counts = conn.execute("SELECT kind, count(*) FROM record GROUP BY kind").fetchall()
        return {str(kind): int(count) for kind, count in counts}
    except sqlite3.Error as error:
        raise BackupError(f"{path} cannot be read as SQLite: {error}") from None
    finally:
        conn.close()


# -- restore -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    counts: dict[str, int]
    aside: list[Path]  # what was moved aside, never deleted
    secret: bool


def restore(data_dir: Path, backup_path: Path) -> Restored:
    """Put the backup at ``backup_path`` in place as ``data_dir``'s state; no head may run."""
    data_dir, backup_path = Path(data_dir).absolute(), Path(backup_path).absolute()
    members = read_backup(backup_path)
    try:
        lock = datalock.acquire(data_dir, RESTORE_HINT)
    except datalock.DataDirInUseError as error:
        raise BackupError(f"restore refused: {error.message}") from None
    staged = [data_dir / f"{name}.restoring" for name in (STATE_FILE, SECRET_FILE)]
    try:
        owner = _owner(data_dir)
        _give(lock.path, owner)
        _write_private(staged[0], members[STATE_FILE], owner)
        counts = check_state(staged[0])
        secret = members.get(SECRET_FILE)
        if secret is not None:
            _write_private(staged[1], secret, owner)
        aside = _move_aside(data_dir, secret, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        os.replace(staged[0], data_dir / STATE_FILE)
        if secret is not None and not (data_dir / SECRET_FILE).exists():
            os.replace(staged[1], data_dir / SECRET_FILE)
        _fsync_dir(data_dir)
        return Restored(counts, aside, secret is not None)
    except OSError as error:
        raise BackupError(f"restore into {data_dir} failed: {error}") from None
    finally:
        for path in staged:
            for suffix in ("",) + COMPANIONS:
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
        lock.release()


def read_backup(path: Path) -> dict[str, bytes]:
    """The files of the backup at ``path`` by name; only the names a backup holds, as regular
    files, ``state.db`` among them."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members: dict[str, bytes] = {}
            for info in tar.getmembers():
                if info.name not in MEMBERS or not info.isreg() or info.name in members:
                    raise BackupError(f"{path} is not an hpcbatch backup (member {info.name!r})")
                data = tar.extractfile(info)
                assert data is not None  # a regular file always has data
                members[info.name] = data.read()
    except FileNotFoundError:
        raise BackupError(f"no backup at {path}") from None
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BackupError(f"{path} is not a readable hpcbatch backup: {error}") from None
    if STATE_FILE not in members:
        raise BackupError(f"{path} is not an hpcbatch backup (it holds no {STATE_FILE})")
    return members


def _move_aside(data_dir: Path, secret: bytes | None, stamp: str) -> list[Path]:
    moved = []
    state = data_dir / STATE_FILE
    for suffix in ("",) + COMPANIONS:  # stale -wal/-shm must not be replayed into the backup
        current = Path(f"{state}{suffix}")
        if current.exists():
            target = data_dir / f"{STATE_FILE}.before-restore-{stamp}{suffix}"
            os.replace(current, target)
            moved.append(target)
    current_secret = data_dir / SECRET_FILE
    if secret is not None and current_secret.exists():
        if current_secret.read_bytes() == secret:
            return moved  # the same secret: nothing to move, nothing to place
        target = data_dir / f"{SECRET_FILE}.before-restore-{stamp}"
        os.replace(current_secret, target)
        moved.append(target)
    return moved


def _owner(data_dir: Path) -> tuple[int, int]:
    info = data_dir.stat()
    return info.st_uid, info.st_gid


def _give(path: Path, owner: tuple[int, int]) -> None:
    """Root restoring a data dir another user's head runs from hands that user the files."""
    if os.geteuid() == 0 and path.stat().st_uid != owner[0]:
        os.chown(path, *owner)


def _write_private(path: Path, data: bytes, owner: tuple[int, int]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(path, flags, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    _give(path, owner)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
