"""SqliteStore: the head's durable state in one SQLite file, in WAL mode.

Durability. Every ``write`` is one transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), so a batch is
stored whole or not at all. With ``durability="process"`` (the default, ``synchronous=NORMAL``) a
committed batch survives the head being killed (``kill -9``, OOM, a crash): WAL commits reach the
operating system before ``write`` returns. They may not yet be on the disk, so a power loss or a
kernel panic can lose the last moments of commits (never corrupting the file). To survive power
loss, choose ``durability="power"`` (``synchronous=FULL``: an fsync of the WAL on every commit,
which costs a few milliseconds a batch on ordinary disks).

Threads. The connection is opened with ``check_same_thread=False`` so the head may call the store
from its loop task or from one worker thread. One thread writes at a time: a lock makes
concurrent calls wait for each other instead of interleaving their transactions, but the store is
not built for parallel writers. Keep the file on a local disk: WAL needs shared memory, which
network file systems do not give reliably (opening fails if WAL mode cannot be had).

Schema. ``meta["store.schema_version"]`` holds the version this file was made with. A file made by
a newer hpcbatch is refused with a ``StoreError`` rather than misread. A file that is not SQLite,
is corrupt, or is some other application's database is refused with a ``StoreError`` naming it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from hpcbatch.errors import StoreError
from hpcbatch.store.base import (
    SCHEMA_VERSION_KEY,
    JournalEntry,
    WriteBatch,
    checked_delete,
    checked_entry,
    checked_meta,
    checked_upsert,
)

Durability = Literal["process", "power"]
SCHEMA_VERSION = 1
# Pruning deletes in chunks, each its own short transaction, so a prune of millions of rows
# never holds the write lock long enough to stall the head's own writes.
PRUNE_CHUNK = 10_000
SCAN_CHUNK = 4096  # rows a ``scan`` holds at a time

_SYNCHRONOUS: dict[str, str] = {"process": "NORMAL", "power": "FULL"}

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # A rowid table, not WITHOUT ROWID: docs are ~1 KiB, too big to sit well inside index pages.
    "CREATE TABLE record (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
    " PRIMARY KEY (kind, key))",
    # AUTOINCREMENT so a seq is never reused after the newest rows are pruned.
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    " cause TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL)",
    # An index on subject also holds the rowid (seq), so one job's history is an index range.
    "CREATE INDEX journal_by_subject ON journal (subject)",
    "CREATE INDEX journal_by_time ON journal (time_ms)",
)

_DELETE = "DELETE FROM record WHERE kind = ? AND key = ?"
_UPSERT = (
    "INSERT INTO record (kind, key, doc) VALUES (?, ?, ?)"
    " ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc"
)
_APPEND = "INSERT INTO journal (time_ms, cause, subject, event, detail) VALUES (?, ?, ?, ?, ?)"
_SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_HISTORY = (
    "SELECT seq, time_ms, cause, subject, event, detail FROM journal"
    " WHERE subject = ? ORDER BY seq DESC LIMIT ?"
)
_PRUNE = "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal WHERE time_ms < ? LIMIT ?)"


class SqliteStore:
    """A ``Store`` in the SQLite file at ``path`` (its directory is created if missing)."""

    def __init__(
        self, path: Path, *, durability: Durability = "process", busy_timeout_s: float = 5.0
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        self.path = Path(path).absolute()  # error messages name the file unambiguously
        self.durability = durability
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open(busy_timeout_s)

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            self._connection("write")
            return
        with self._transaction("write") as conn:
            # The checkers run row by row inside executemany, so a bad row rolls back every row
            # before it: the batch is stored whole or not at all.
            conn.executemany(_DELETE, map(checked_delete, batch.deletes))
            conn.executemany(_UPSERT, map(checked_upsert, batch.upserts))
            conn.executemany(_APPEND, map(checked_entry, batch.journal))
            conn.executemany(_SET_META, map(checked_meta, batch.meta.items()))

    def load(self, kind: str) -> list[tuple[str, str]]:
        rows = self._query(
            "load", "SELECT key, doc FROM record WHERE kind = ? ORDER BY key", (kind,)
        )
        return [(key, doc) for key, doc in rows]

    def scan(self, kind: str) -> Iterator[str]:
        with self._lock, self._errors("scan"):
            cursor = self._connection("scan").execute(
                "SELECT doc FROM record WHERE kind = ? ORDER BY key", (kind,)
            )
            while rows := cursor.fetchmany(SCAN_CHUNK):
                for (doc,) in rows:
                    yield doc

    def get(self, kind: str, key: str) -> str | None:
        rows = self._query("get", "SELECT doc FROM record WHERE kind = ? AND key = ?", (kind, key))
        return str(rows[0][0]) if rows else None

    def history(self, subject: str, limit: int = 1000) -> list[JournalEntry]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            self._connection("history")
            return []
        rows = self._query("history", _HISTORY, (subject, limit))
        return [JournalEntry(t, c, s, e, d, seq) for seq, t, c, s, e, d in reversed(rows)]

    def prune_journal(self, before_ms: int) -> int:
        pruned = 0
        while True:
            with self._transaction("prune_journal") as conn:
                count = conn.execute(_PRUNE, (before_ms, PRUNE_CHUNK)).rowcount
            pruned += count
            if count < PRUNE_CHUNK:
                return pruned

    def get_meta(self, key: str) -> str | None:
        rows = self._query("get_meta", "SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            with suppress(sqlite3.Error):  # only a planner hint; never worth failing close for
                conn.execute("PRAGMA optimize")
            with self._errors("close"):
                conn.close()

    # -- opening ---------------------------------------------------------------------------

    def _open(self, busy_timeout_s: float) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"open {self.path}: cannot create its directory: {err}") from err
        try:
            make_private(self.path)
        except OSError as err:
            raise StoreError(f"open {self.path}: cannot create it 0600: {err}") from err
        with self._errors("open"):
            conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        try:
            with self._errors("open"):
                self._configure(conn)
                self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        # SQLite gives the -wal and -shm files the database file's own mode (0600).
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"open {self.path}: WAL mode unavailable (got {mode!r}); use a local disk"
            )
        conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self.durability]}")

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # two processes opening a new file must not both create it
        try:
            self._check_or_create_schema(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _check_or_create_schema(self, conn: sqlite3.Connection) -> None:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "meta" not in tables:
            if tables:
                raise StoreError(
                    f"open {self.path}: an SQLite database but not an hpcbatch store"
                    f" (it has tables {sorted(tables)})"
                )
            for statement in _SCHEMA_V1:
                conn.execute(statement)
            conn.execute(_SET_META, (SCHEMA_VERSION_KEY, str(SCHEMA_VERSION)))
            return
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (SCHEMA_VERSION_KEY,)).fetchone()
        version = str(row[0]) if row else ""
        if not version.isdigit():
            raise StoreError(
                f"open {self.path}: no readable {SCHEMA_VERSION_KEY} in meta ({row!r})"
            )
        if int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"open {self.path}: schema version {version} is newer than this hpcbatch"
                f" understands ({SCHEMA_VERSION}); run the hpcbatch that wrote it, or a newer one"
            )
        # int(version) < SCHEMA_VERSION: migrations go here once there is a schema 2.

    # -- plumbing --------------------------------------------------------------------------

    def _connection(self, operation: str) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{operation} {self.path}: the store is closed")
        return self._conn

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise StoreError(self._describe(operation, err)) from err
        except UnicodeEncodeError as err:  # a lone surrogate cannot be stored as UTF-8 text
            raise StoreError(f"{operation} {self.path}: text is not valid Unicode: {err}") from err

    def _describe(self, operation: str, err: sqlite3.Error) -> str:
        name = getattr(err, "sqlite_errorname", "")
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return f"{operation} {self.path}: not an SQLite database, or corrupt ({name}: {err})"
        return f"{operation} {self.path}: {name or type(err).__name__}: {err}"

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(operation):
            conn = self._connection(operation)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # COMMIT itself can fail (disk full) and leave the transaction open.
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _query(self, operation: str, sql: str, params: Sequence[object]) -> list[Any]:
        with self._lock, self._errors(operation):
            return self._connection(operation).execute(sql, params).fetchall()


PRIVATE_MODE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def make_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite would create it with the
    umask's mode, often world-readable: jobs' environments and commands are in it), and
    tighten an existing one and its -wal/-shm files to 0600. Only files this process owns
    are changed."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE))
    for suffix in _COMPANIONS:
        companion = Path(f"{path}{suffix}")
        try:
            info = companion.stat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            companion.chmod(stat.S_IMODE(info.st_mode) & PRIVATE_MODE)
