"""The head's state.db holds jobs' commands and environments: it and its -wal/-shm files are
created 0600 whatever the umask, and an older, more open file is tightened (issue 18, item 6)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.store import SqliteStore, WriteBatch


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual umask: new files 0644
    yield
    os.umask(previous)


def _modes(path: Path) -> dict[str, int]:
    return {
        suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(f"{path}{suffix}")
    }


def _write_one(store: SqliteStore) -> None:
    batch = WriteBatch()
    batch.put("job", "j1", "doc")
    store.write(batch)


def test_state_db_and_its_wal_and_shm_are_created_0600(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    _write_one(store)
    assert _modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    store.close()


def test_an_existing_world_readable_state_db_is_tightened(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    _write_one(store)
    store.close()
    path.chmod(0o644)
    again = SqliteStore(path)
    _write_one(again)
    assert set(_modes(path).values()) == {0o600}
    again.close()
