"""The journal: replay, torn tails, acks, compaction, file-name safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hpcbatch_agent import protocol as p
from hpcbatch_agent.spool import JOURNAL, Spool, attempt_id_from_name, safe_name


def _start(spool: Spool, attempt_id: str) -> None:
    spool.record_start(
        {
            "attempt_id": attempt_id,
            "pid": 1,
            "started_at_ms": 5,
            "timeout_s": None,
            "log_path": "/l",
            "status_path": "/s",
            "work_dir": None,
        }
    )


def test_replay_rebuilds_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _start(spool, "a")
    _start(spool, "b")
    spool.record_kill("b", "stop")
    result = p.attempt_update("b", p.EXITED, "/l", pid=1, exit_code=None, signal=15)
    spool.record_end(result)
    _start(spool, "c")
    spool.record_end(p.attempt_update("c", p.EXITED, "/l", exit_code=0))
    spool.record_ack("c")
    spool.close()
    records = Spool(tmp_path).records
    assert set(records) == {"a", "b"}
    assert records["a"]["result"] is None
    assert records["b"]["result"] == result
    assert records["b"]["kill_reason"] == "stop"


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _start(spool, "a")
    spool.close()
    with open(tmp_path / JOURNAL, "ab") as journal:
        journal.write(b'{"op":"end","attempt_id":"a","res')
    assert Spool(tmp_path).records["a"]["result"] is None


def test_compaction_keeps_only_live_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for index in range(50):
        _start(spool, f"x{index}")
        spool.record_end(p.attempt_update(f"x{index}", p.EXITED, "/l", exit_code=index))
        if index % 10:
            spool.record_ack(f"x{index}")
    spool.commit()
    before = dict(spool.records)
    spool.compact()
    _start(spool, "after")
    spool.close()
    lines = (tmp_path / JOURNAL).read_bytes().count(b"\n")
    assert lines == 5 * 2 + 1
    replayed = Spool(tmp_path).records
    assert {k: v for k, v in replayed.items() if k != "after"} == before


def test_safe_name_is_a_reversible_single_path_component() -> None:
    for attempt_id in ["3f2c:17/2", "a#b", "..", ".hidden", "ü/ß", "plain"]:
        name = safe_name(attempt_id)
        assert "/" not in name and name not in (".", "..") and not name.startswith(".")
        assert attempt_id_from_name(name) == attempt_id
    long_id = "x/" * 300
    assert len(safe_name(long_id)) < 255
    assert attempt_id_from_name(safe_name(long_id)) is None


@pytest.mark.parametrize(("durability", "fsyncs"), [("process", 0), ("power", 1)])
def test_only_power_durability_waits_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str, fsyncs: int
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    spool = Spool(tmp_path, durability)
    _start(spool, "a")
    spool.record_end(p.attempt_update("a", p.EXITED, "/l", exit_code=0))
    spool.commit()  # one turn: a start and a result
    assert len(synced) == fsyncs
    spool.record_ack("a")
    spool.commit()  # an ack alone is never worth a wait
    assert len(synced) == fsyncs
    # Either way every line is written, for a restarted agent to read:
    assert Spool(tmp_path).records == {}
    assert (tmp_path / JOURNAL).read_bytes().count(b"\n") == 3


def test_an_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability must be 'process' or 'power', not 'disk'"):
        Spool(tmp_path, "disk")
