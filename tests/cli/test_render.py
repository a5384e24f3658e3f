"""Pure rendering helpers: tables, times, durations."""

from __future__ import annotations

import pytest

from hpcbatch.cli import render


def test_table_aligns_columns_and_marks_missing_cells() -> None:
    text = render.table(
        ["ID", "STATE", "REASON"], [["1", "RUNNING", ""], ["12345", "FAILED", "oom"]]
    )
    assert text.splitlines() == [
        "ID     STATE    REASON",
        "1      RUNNING  -",
        "12345  FAILED   oom",
    ]


def test_times_are_local_and_iso_ish() -> None:
    assert render.fmt_time(1_795_460_341_000) == "2026-11-23 18:59:01"  # TZ=UTC in conftest
    assert render.fmt_time(None) == "-"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (420, "0.42s"),
        (12_345, "12.3s"),
        (245_000, "4m05s"),
        (10_920_000, "3h02m"),
        (187_200_000, "2d04h"),
    ],
)
def test_durations_read_at_a_human_precision(ms: int, text: str) -> None:
    assert render.fmt_duration(ms) == text


def test_truncate_keeps_one_line() -> None:
    assert render.truncate("a\nb  c", 10) == "a b c"
    assert render.truncate("x" * 20, 10) == "x" * 9 + "…"
