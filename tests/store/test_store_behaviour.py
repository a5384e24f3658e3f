"""The behaviour every Store must have, run against SqliteStore and MemoryStore alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpcbatch.errors import StoreError
from hpcbatch.store import JournalEntry, MemoryStore, SqliteStore, Store, WriteBatch


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = SqliteStore(tmp_path / "state.db") if request.param == "sqlite" else MemoryStore()
    try:
        yield made
    finally:
        made.close()


def batch_of(*puts: tuple[str, str, str]) -> WriteBatch:
    batch = WriteBatch()
    for kind, key, doc in puts:
        batch.put(kind, key, doc)
    return batch


def snapshot(store: Store) -> tuple[object, ...]:
    kinds = ("job", "queue")
    return (
        [store.load(kind) for kind in kinds],
        store.history("job-1"),
        store.get_meta("head_id"),
    )


# -- records ---------------------------------------------------------------------------------


def test_put_get_overwrite_delete(store: Store) -> None:
    store.write(batch_of(("job", "j1", '{"v":1}'), ("queue", "q1", '{"q":1}')))
    assert store.get("job", "j1") == '{"v":1}'
    store.write(batch_of(("job", "j1", '{"v":2}')))
    assert store.get("job", "j1") == '{"v":2}'
    batch = WriteBatch()
    batch.delete("job", "j1")
    store.write(batch)
    assert store.get("job", "j1") is None
    assert store.get("queue", "q1") == '{"q":1}'


def test_load_is_per_kind_and_ordered_by_key(store: Store) -> None:
    store.write(
        batch_of(("job", "b", "2"), ("job", "a", "1"), ("queue", "a", "q"), ("job", "c", "3"))
    )
    assert store.load("job") == [("a", "1"), ("b", "2"), ("c", "3")]
    assert store.load("queue") == [("a", "q")]
    assert store.load("node") == []


def test_scan_reads_a_kinds_docs_in_key_order_a_chunk_at_a_time(store: Store) -> None:
    keys = [f"j{i:05d}" for i in range(10_000)]  # more than a chunk (SCAN_CHUNK)
    store.write(batch_of(*(("job", k, f"doc {k}") for k in reversed(keys)), ("queue", "a", "q")))
    assert list(store.scan("job")) == [f"doc {k}" for k in keys]
    assert list(store.scan("node")) == []


def test_later_put_in_one_batch_wins(store: Store) -> None:
    store.write(batch_of(("job", "j", "first"), ("job", "j", "second")))
    assert store.load("job") == [("j", "second")]


def test_delete_after_put_in_one_batch_wins(store: Store) -> None:
    store.write(batch_of(("job", "old", "x")))
    batch = batch_of(("job", "j", "doc"), ("job", "k", "keep"))
    batch.delete("job", "j")
    batch.delete("job", "old")
    store.write(batch)
    assert store.load("job") == [("k", "keep")]


def test_put_after_delete_in_one_batch_wins(store: Store) -> None:
    store.write(batch_of(("job", "j", "before")))
    batch = WriteBatch()
    batch.delete("job", "j")
    batch.put("job", "j", "after")
    store.write(batch)
    assert store.get("job", "j") == "after"


def test_delete_of_a_missing_key_is_harmless(store: Store) -> None:
    batch = WriteBatch()
    batch.delete("job", "never-was")
    store.write(batch)
    assert store.load("job") == []


def test_text_round_trips_exactly(store: Store) -> None:
    big = '{"x":"' + "é€😀" * 100_000 + '"}'
    store.write(batch_of(("job", "ключ-😀", big), ("job", "", "")))
    assert store.get("job", "ключ-😀") == big
    assert store.get("job", "") == ""


# -- journal ---------------------------------------------------------------------------------


def test_history_is_per_subject_oldest_first(store: Store) -> None:
    batch = WriteBatch()
    batch.log(10, "c1", "job-1", "SUBMITTED", '{"queue":"q"}')
    batch.log(11, "c1", "job-2", "SUBMITTED")
    batch.log(12, "c2", "job-1", "RUNNABLE")
    store.write(batch)
    later = WriteBatch()
    later.log(9, "c3", "job-1", "RUNNING")  # the clock may step back; seq keeps the order
    store.write(later)
    history = store.history("job-1")
    assert [(e.time_ms, e.cause, e.event, e.detail) for e in history] == [
        (10, "c1", "SUBMITTED", '{"queue":"q"}'),
        (12, "c2", "RUNNABLE", ""),
        (9, "c3", "RUNNING", ""),
    ]
    seqs = [e.seq for e in history]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] > 0
    assert [e.event for e in store.history("job-2")] == ["SUBMITTED"]
    assert store.history("job-3") == []


def test_history_limit_keeps_the_newest(store: Store) -> None:
    batch = WriteBatch()
    for i in range(10):
        batch.log(i, "c", "job-1", f"E{i}")
    store.write(batch)
    assert [e.event for e in store.history("job-1", limit=3)] == ["E7", "E8", "E9"]
    assert len(store.history("job-1", limit=100)) == 10
    assert store.history("job-1", limit=0) == []


def test_prune_removes_only_older_entries(store: Store) -> None:
    batch = WriteBatch()
    for t in (100, 200, 300, 400):
        batch.log(t, "c", "job-1", f"T{t}")
    store.write(batch)
    assert store.prune_journal(300) == 2
    assert [e.time_ms for e in store.history("job-1")] == [300, 400]
    assert store.prune_journal(300) == 0


def test_seq_is_never_reused_after_prune(store: Store) -> None:
    batch = WriteBatch()
    batch.log(1, "c", "job-1", "A")
    store.write(batch)
    (first,) = store.history("job-1")
    assert store.prune_journal(10) == 1
    again = WriteBatch()
    again.log(20, "c", "job-1", "B")
    store.write(again)
    (second,) = store.history("job-1")
    assert second.seq > first.seq
    assert second == JournalEntry(20, "c", "job-1", "B", "", second.seq)


# -- meta ------------------------------------------------------------------------------------


def test_meta_set_overwrite_get(store: Store) -> None:
    assert store.get_meta("head_id") is None
    batch = WriteBatch()
    batch.set_meta("head_id", "h1")
    batch.set_meta("job_counter", "7")
    store.write(batch)
    again = WriteBatch()
    again.set_meta("job_counter", "8")
    store.write(again)
    assert (store.get_meta("head_id"), store.get_meta("job_counter")) == ("h1", "8")
    assert store.get_meta("store.schema_version") == "1"


# -- all or nothing --------------------------------------------------------------------------


def spoil_doc(batch: WriteBatch) -> None:
    batch.upserts.append(("job", "bad", 42))  # type: ignore[arg-type]


def spoil_journal(batch: WriteBatch) -> None:
    batch.journal.append(JournalEntry("soon", "c", "job-1", "X"))  # type: ignore[arg-type]


def spoil_meta(batch: WriteBatch) -> None:
    batch.set_meta("store.schema_version", "999")


def spoil_delete(batch: WriteBatch) -> None:
    batch.deletes.append(("job", None))  # type: ignore[arg-type]


def spoil_unicode(batch: WriteBatch) -> None:
    batch.put("job", "lone-surrogate", '{"x":"\ud800"}')


@pytest.mark.parametrize(
    "spoil", [spoil_doc, spoil_journal, spoil_meta, spoil_delete, spoil_unicode]
)
def test_a_batch_failing_midway_leaves_nothing(
    store: Store, spoil: Callable[[WriteBatch], None]
) -> None:
    store.write(batch_of(("job", "keep", "v1"), ("job", "gone?", "v1")))
    before = snapshot(store)
    batch = WriteBatch()
    batch.delete("job", "gone?")
    for i in range(100):
        batch.put("job", f"new-{i:03d}", "doc")
    batch.put("job", "keep", "v2")
    batch.log(5, "c", "job-1", "SUBMITTED")
    batch.set_meta("head_id", "h2")
    spoil(batch)
    with pytest.raises(StoreError):
        store.write(batch)
    assert snapshot(store) == before
    assert store.get_meta("store.schema_version") == "1"
    store.write(batch_of(("job", "after", "ok")))  # the store is still usable
    assert store.get("job", "after") == "ok"


# -- batch and lifecycle ---------------------------------------------------------------------


def test_batch_truthiness() -> None:
    assert not WriteBatch()
    fills: list[Callable[[WriteBatch], None]] = [
        lambda b: b.put("k", "k", "d"),
        lambda b: b.delete("k", "k"),
        lambda b: b.log(0, "c", "s", "e"),
        lambda b: b.set_meta("m", "v"),
    ]
    for fill in fills:
        batch = WriteBatch()
        fill(batch)
        assert batch


def test_empty_batch_writes_nothing(store: Store) -> None:
    store.write(WriteBatch())
    assert store.load("job") == []


def test_every_call_after_close_raises_store_error(store: Store) -> None:
    store.close()
    store.close()  # twice is harmless
    calls: list[Callable[[], object]] = [
        lambda: store.write(batch_of(("job", "j", "d"))),
        lambda: store.write(WriteBatch()),
        lambda: store.load("job"),
        lambda: store.get("job", "j"),
        lambda: store.history("job-1"),
        lambda: store.history("job-1", limit=0),
        lambda: store.prune_journal(0),
        lambda: store.get_meta("head_id"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()
