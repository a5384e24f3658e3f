"""The --wait progress display: a redrawn bar on a terminal, sparse lines elsewhere."""

from __future__ import annotations

import io

from hpcbatch.cli.commands._wait import Progress, describe_progress, next_interval


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def array_job(status: str, **summary: int) -> dict[str, object]:
    return {
        "jobId": "A",
        "status": status,
        "arrayProperties": {"size": 10, "statusSummary": summary},
    }


def test_bar_counts_ended_children() -> None:
    line = describe_progress(array_job("PENDING", SUCCEEDED=3, FAILED=2, RUNNING=5))
    assert line.startswith("[" + "#" * 15 + "." * 15 + "] 5/10 ended")
    assert line.endswith("RUNNING 5  SUCCEEDED 3  FAILED 2")


def test_terminal_redraws_one_line_in_place() -> None:
    stream = FakeTTY()
    progress = Progress(stream)
    progress.update(array_job("PENDING", RUNNABLE=10))
    progress.update(array_job("PENDING", RUNNING=10))
    progress.update(array_job("SUCCEEDED", SUCCEEDED=10))
    progress.finish()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")


def test_plain_lines_are_rate_limited_but_the_end_is_always_shown() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, clock=lambda: now[0])
    progress.update(array_job("PENDING", RUNNABLE=10))
    now[0] = 1.0
    progress.update(array_job("PENDING", RUNNING=10))  # too soon after the last line
    now[0] = 2.0
    progress.update(array_job("SUCCEEDED", SUCCEEDED=10))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "RUNNABLE 10" in lines[0] and "10/10" in lines[1]


def test_poll_interval_grows_from_50ms_to_1s() -> None:
    intervals = [0.05]
    while intervals[-1] < 1.0:
        intervals.append(next_interval(intervals[-1]))
    assert intervals[1] > 0.05 and intervals[-1] == 1.0 and len(intervals) < 12
