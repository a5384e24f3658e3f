"""MemoryStore: the in-package fake of ``Store`` for unit tests of the head.

It keeps the semantics that matter to the head, tested by the same suite as ``SqliteStore``:
all-or-nothing batches (a batch is checked and staged in full before anything is applied),
key-ordered ``load``, ``seq`` numbers never reused after pruning, and ``StoreError`` after close.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

SCHEMA_VERSION = 1


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, dict[str, str]] = {}
        self._journal: list[JournalEntry] = []
        self._meta: dict[str, str] = {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION)}
        self._last_seq = 0
        self._closed = False

    def write(self, batch: WriteBatch) -> None:
        self._check_open("write")
        # Stage every row through the same checks SQLite's path runs; only when all passed does
        # anything change, which is what makes a failing batch leave no trace.
        deletes = [checked_delete(row) for row in batch.deletes]
        upserts = [checked_upsert(row) for row in batch.upserts]
        entries = [checked_entry(entry) for entry in batch.journal]
        meta = [checked_meta(item) for item in batch.meta.items()]
        _check_encodable(upserts, entries, meta)
        for kind, key in deletes:
            self._records.get(kind, {}).pop(key, None)
        for kind, key, doc in upserts:
            self._records.setdefault(kind, {})[key] = doc
        for time_ms, cause, subject, event, detail in entries:
            self._last_seq += 1
            self._journal.append(
                JournalEntry(time_ms, cause, subject, event, detail, self._last_seq)
            )
        self._meta.update(meta)

    def load(self, kind: str) -> list[tuple[str, str]]:
        self._check_open("load")
        return sorted(self._records.get(kind, {}).items())

    def scan(self, kind: str) -> Iterator[str]:
        self._check_open("scan")
        for _, doc in sorted(self._records.get(kind, {}).items()):
            yield doc

    def get(self, kind: str, key: str) -> str | None:
        self._check_open("get")
        return self._records.get(kind, {}).get(key)

    def history(self, subject: str, limit: int = 1000) -> list[JournalEntry]:
        self._check_open("history")
        if limit <= 0:
            return []
        return [e for e in self._journal if e.subject == subject][-limit:]

    def prune_journal(self, before_ms: int) -> int:
        self._check_open("prune_journal")
        kept = [e for e in self._journal if e.time_ms >= before_ms]
        pruned = len(self._journal) - len(kept)
        self._journal = kept
        return pruned

    def get_meta(self, key: str) -> str | None:
        self._check_open("get_meta")
        return self._meta.get(key)

    def close(self) -> None:
        self._closed = True

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreError(f"{operation} on memory store: the store is closed")


def _check_encodable(*tables: list[Any]) -> None:
    """Refuse what SQLite refuses: text with lone surrogates has no UTF-8 form."""
    for rows in tables:
        for row in rows:
            for value in row:
                if isinstance(value, str):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as err:
                        message = f"write to memory store: text is not valid Unicode: {err}"
                        raise StoreError(message) from err
