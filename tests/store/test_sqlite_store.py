"""What only the SQLite store must show: durability across close, kill -9, and bad files."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hpcbatch.errors import StoreError
from hpcbatch.store import SqliteStore, WriteBatch
from hpcbatch.store import sqlite as sqlite_module

CHILD = Path(__file__).with_name("store_writer_child.py")


def put_batch(*keys: str, doc: str = "d") -> WriteBatch:
    batch = WriteBatch()
    for key in keys:
        batch.put("job", key, doc)
    return batch


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"  # the directory is made on open
    store = SqliteStore(path)
    batch = put_batch("j1", "j2")
    batch.log(1, "c", "j1", "SUBMITTED")
    batch.set_meta("head_id", "h1")
    store.write(batch)
    store.close()
    again = SqliteStore(path)
    try:
        assert again.load("job") == [("j1", "d"), ("j2", "d")]
        assert [e.event for e in again.history("j1")] == ["SUBMITTED"]
        assert again.get_meta("head_id") == "h1"
    finally:
        again.close()


@pytest.mark.parametrize("durability", ["process", "power"])
def test_file_is_wal_with_the_chosen_synchronous(tmp_path: Path, durability: str) -> None:
    store = SqliteStore(tmp_path / "s.db", durability=durability)  # type: ignore[arg-type]
    try:
        conn = store._connection("test")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        expected = {"process": 1, "power": 2}[durability]  # NORMAL, FULL
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    finally:
        store.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        SqliteStore(tmp_path / "s.db", durability="sometimes")  # type: ignore[arg-type]


def read_reports(proc: subprocess.Popen[bytes], wanted: int, deadline_s: float) -> list[int]:
    """Batch numbers the child reported, read until ``wanted`` arrived (never sleeps)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + deadline_s
    while (got := buffer.count(b"\n")) < wanted:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"child reported only {got} batches in time"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, (
                f"child exited early: {proc.wait()} {proc.stderr and proc.stderr.read()!r}"
            )
            buffer += chunk
    return [int(line) for line in buffer.split(b"\n")[:-1]]


@pytest.mark.parametrize("durability", ["process", "power"])
def test_every_reported_batch_survives_kill_9(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        reported = read_reports(proc, wanted=25, deadline_s=60)
    finally:
        # Killed while it goes on writing: most likely inside a transaction.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert reported == list(range(len(reported)))
    check_only_whole_batches(path, last_reported=reported[-1])


def check_only_whole_batches(path: Path, last_reported: int) -> None:
    rows = 200  # store_writer_child.ROWS
    store = SqliteStore(path)
    try:
        per_batch = Counter(key.split("-")[0] for key, _ in store.load("job"))
        stored = sorted(int(name[1:]) for name in per_batch)
        assert stored == list(range(len(stored))), "batches are stored in order, none skipped"
        assert stored[-1] >= last_reported, "every batch the child reported is there"
        for i in stored:
            assert per_batch[f"b{i:06d}"] == rows, f"batch {i} is partial"
            assert len(store.history(f"b{i:06d}")) == rows, f"batch {i}'s journal is partial"
        assert store.history(f"b{stored[-1] + 1:06d}") == []
        assert store.get_meta("last_batch") == str(stored[-1])
    finally:
        store.close()


def test_failure_injected_inside_the_transaction_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    try:
        store.write(put_batch("keep"))
        with sqlite3.connect(path) as side:  # a trigger fails the journal insert midway
            side.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON journal WHEN NEW.event = 'boom'"
                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        batch = put_batch(*[f"new-{i}" for i in range(1000)])
        batch.delete("job", "keep")
        batch.log(1, "c", "j1", "fine")
        batch.log(2, "c", "j1", "boom")
        batch.set_meta("head_id", "h")
        with pytest.raises(StoreError) as caught:
            store.write(batch)
        assert "write" in str(caught.value) and str(path) in str(caught.value)
        assert "injected failure" in str(caught.value)
        assert store.load("job") == [("keep", "d")]
        assert store.history("j1") == []
        assert store.get_meta("head_id") is None
    finally:
        store.close()


def test_prune_works_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "PRUNE_CHUNK", 3)
    store = SqliteStore(tmp_path / "s.db")
    try:
        batch = WriteBatch()
        for t in range(10):
            batch.log(t, "c", "j", f"E{t}")
        batch.log(50, "c", "j", "late")
        store.write(batch)
        assert store.prune_journal(10) == 10
        assert [e.event for e in store.history("j")] == ["late"]
    finally:
        store.close()


def test_writers_on_two_threads_do_not_interleave(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(50):
                batch = put_batch(f"{name}-{i:02d}")
                batch.log(i, "c", name, f"E{i}")
                store.write(batch)
        except BaseException as err:  # surfaced below; a thread cannot fail the test itself
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(store.load("job")) == 200
        assert all(len(store.history(f"t{n}")) == 50 for n in range(4))
    finally:
        store.close()


# -- files it must refuse --------------------------------------------------------------------


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as side:
        side.execute("UPDATE meta SET value = '2' WHERE key = 'store.schema_version'")
    side.close()
    with pytest.raises(StoreError, match="newer") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_a_garbage_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database at all\n" * 100)
    with pytest.raises(StoreError, match="not an SQLite database") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_a_corrupt_schema_page_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.write(put_batch(*[str(i) for i in range(100)], doc="x" * 500))
    store.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1 after the header: the schema itself
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as side:
        side.execute("CREATE TABLE photos (id INTEGER)")
    side.close()
    with pytest.raises(StoreError, match="not an hpcbatch store"):
        SqliteStore(path)


def test_a_directory_that_cannot_be_made_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create its directory"):
        SqliteStore(tmp_path / "file" / "state.db")


def test_history_and_prune_use_their_indexes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        conn = store._connection("test")
        plans = {
            "journal_by_subject": sqlite_module._HISTORY,
            "journal_by_time": sqlite_module._PRUNE,
        }
        for index, sql in plans.items():
            params = ("job-1", 10) if index == "journal_by_subject" else (0, 10)
            plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert index in plan, plan
    finally:
        store.close()
