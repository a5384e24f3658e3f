"""The Store seam: what the head needs from durable storage, and the batch it writes.

Vocabulary:

record
    ``(kind, key, doc)``: one object of the head's state. ``kind`` names its family ("job",
    "queue", "compute_environment", "job_definition", "node"), ``key`` is unique within the kind,
    ``doc`` is JSON text the head made. The store never parses a doc: it knows nothing of jobs.
journal
    An append-only event log. Each entry has a ``seq`` the store assigns (strictly increasing,
    never reused, even after pruning), the head's clock ``time_ms``, the ``cause`` id of the
    stimulus that produced it, a ``subject`` (usually a job id), an ``event`` name and a free
    ``detail`` text. ``history(subject)`` is how ``describe --history`` tells a job's story.
meta
    A few key -> text settings (head id, id counters). Keys starting with ``store.`` are the
    store's own (``store.schema_version``) and a batch may not set them.
batch
    A ``WriteBatch``: everything one step of the head changed. A store writes a batch all or
    nothing, so the head can answer SubmitJob only once its jobs are durable and can never leave a
    half-made queue behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from hpcbatch.errors import StoreError

RESERVED_META_PREFIX = "store."
SCHEMA_VERSION_KEY = "store.schema_version"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row. ``seq`` is 0 until stored; ``history`` returns it filled in."""

    time_ms: int
    cause: str
    subject: str
    event: str
    detail: str = ""
    seq: int = 0


@dataclass(slots=True)
class WriteBatch:
    """Changes written together in one transaction.

    The store applies ``deletes`` first, then ``upserts`` in list order (so a later put of the same
    ``(kind, key)`` wins), then ``journal`` in order, then ``meta``. ``delete()`` cancels an earlier
    ``put()`` of the same key in this batch, so the helpers give "the last call wins" for any mix
    of puts and deletes; code that fills the lists directly gets the fixed order above.
    """

    upserts: list[tuple[str, str, str]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def put(self, kind: str, key: str, doc: str) -> None:
        self.upserts.append((kind, key, doc))

    def delete(self, kind: str, key: str) -> None:
        # Deletes are rare (retention, DeleteJobQueue) and batches with many puts rarely delete,
        # so a linear scan here is cheaper than keeping an index on every put.
        if any(u[0] == kind and u[1] == key for u in self.upserts):
            self.upserts = [u for u in self.upserts if not (u[0] == kind and u[1] == key)]
        self.deletes.append((kind, key))

    def log(self, time_ms: int, cause: str, subject: str, event: str, detail: str = "") -> None:
        self.journal.append(JournalEntry(time_ms, cause, subject, event, detail))

    def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.journal or self.meta)


class Store(Protocol):
    """Durable state of the head. Synchronous; one thread writes at a time.

    Every method raises ``StoreError`` (and only that) when storage fails or the store is closed.
    """

    def write(self, batch: WriteBatch) -> None:
        """Write the whole batch in one transaction: after it returns all of it is durable; if it
        raises, none of it was stored."""
        ...

    def load(self, kind: str) -> list[tuple[str, str]]:
        """Every ``(key, doc)`` of ``kind``, ordered by key."""
        ...

    def scan(self, kind: str) -> Iterator[str]:
        """Every doc of ``kind``, ordered by key, read a chunk at a time (a million jobs'
        documents are not held at once). Nothing may write until it is exhausted."""
        ...

    def get(self, kind: str, key: str) -> str | None: ...

    def history(self, subject: str, limit: int = 1000) -> list[JournalEntry]:
        """The newest ``limit`` journal entries of ``subject``, oldest first (like ``tail``:
        the current end of a story matters most when it is too long to show whole)."""
        ...

    def prune_journal(self, before_ms: int) -> int:
        """Delete journal entries with ``time_ms < before_ms``; return how many went."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def close(self) -> None:
        """Release the store; closing twice is harmless, any other call afterwards fails."""
        ...


# The checkers below run *while* a batch is applied, row by row, so a bad row found late fails
# the batch midway: that is exactly the case all-or-nothing has to survive, in both stores.


def checked_upsert(row: tuple[str, str, str]) -> tuple[str, str, str]:
    kind, key, doc = row
    if not (isinstance(kind, str) and isinstance(key, str) and isinstance(doc, str)):
        raise StoreError(f"upsert {kind!r}/{key!r}: kind, key and doc must all be str")
    return row


def checked_delete(row: tuple[str, str]) -> tuple[str, str]:
    kind, key = row
    if not (isinstance(kind, str) and isinstance(key, str)):
        raise StoreError(f"delete {kind!r}/{key!r}: kind and key must be str")
    return row


def checked_entry(entry: JournalEntry) -> tuple[int, str, str, str, str]:
    row = (entry.time_ms, entry.cause, entry.subject, entry.event, entry.detail)
    # bool is an int subclass, but a True timestamp is surely a bug.
    ok_time = isinstance(entry.time_ms, int) and not isinstance(entry.time_ms, bool)
    if not (ok_time and all(isinstance(v, str) for v in row[1:])):
        raise StoreError(f"journal entry {entry!r}: time_ms must be int, the rest str")
    return row


def checked_meta(item: tuple[str, str]) -> tuple[str, str]:
    key, value = item
    if not (isinstance(key, str) and isinstance(value, str)):
        raise StoreError(f"meta {key!r}: key and value must be str")
    if key.startswith(RESERVED_META_PREFIX):
        raise StoreError(
            f"meta {key!r}: keys starting with {RESERVED_META_PREFIX!r} are the store's"
        )
    return item
