"""Durable state of the head: records, an event journal and meta settings (see ``base``).

``SqliteStore`` is the real one; ``MemoryStore`` is the fake with the same semantics for tests.
"""

from hpcbatch.store.base import JournalEntry, Store, WriteBatch
from hpcbatch.store.memory import MemoryStore
from hpcbatch.store.sqlite import Durability, SqliteStore

__all__ = ["Durability", "JournalEntry", "MemoryStore", "SqliteStore", "Store", "WriteBatch"]
