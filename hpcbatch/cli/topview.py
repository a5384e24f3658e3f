"""What ``hpcbatch top`` draws: one frame from one ``GET /hpcbatch/v1/top`` document.

Vocabulary: a **frame** is the whole screen — a header line, then four **sections** (queues,
nodes, running jobs, failed jobs), each a title line, a header row and its rows. A frame fits
the terminal it is drawn for: no line is wider than ``width`` (cells are cut with an ellipsis,
never wrapped) and, when ``height`` is given, the frame has at most ``height`` lines — rows are
shared out among the sections and a cut section ends with ``+N more``.

Pure: a document and a size in, a rich renderable (or its text) out; the terminal handling lives
in ``cli/commands/top.py``.
"""

from __future__ import annotations

import io
import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hpcbatch.cli import render

LIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
LIVE_HEADERS = ("SUBMIT", "PEND", "RUNNABLE", "START", "RUN")
BAR_WIDTH = 6
SECTION_CHROME = 2  # a section's title line and its header row


Row = list[str | Text]


def frame(
    doc: dict[str, Any], endpoint: str, width: int, height: int | None, *, unicode: bool = True
) -> RenderableType:
    """The whole frame for a terminal ``width`` columns wide and ``height`` lines high (None:
    as many lines as the rows take, for ``--once``)."""
    now = int(doc.get("time") or render.now_ms())
    sections = [
        ("Queues", QUEUE_COLUMNS, [_queue_row(q) for q in doc.get("queues", [])]),
        ("Nodes", NODE_COLUMNS, [_node_row(n, now, unicode) for n in doc.get("nodes", [])]),
        (
            "Running (newest)",
            RUNNING_COLUMNS,
            [_running_row(j, now) for j in doc.get("running", [])],
        ),
        ("Failed (newest)", FAILED_COLUMNS, [_failed_row(j) for j in doc.get("failed", [])]),
    ]
    budget = None if height is None else height - 1 - SECTION_CHROME * len(sections)
    shown = _share([len(rows) for _, _, rows in sections], budget)
    stamp = time.strftime("%H:%M:%S", time.localtime(now / 1000))
    header = Text(f"hpcbatch top  {endpoint}  {stamp}  (q quits)", style="bold", no_wrap=True)
    header.truncate(width, overflow="ellipsis")
    parts: list[RenderableType] = [header]
    for (title, columns, rows), count in zip(sections, shown, strict=True):
        parts.extend(_section(title, columns, rows, count, width))
    return Group(*parts)


def frame_text(doc: dict[str, Any], endpoint: str, width: int, height: int | None = None) -> str:
    """The frame as plain text (``--once`` and tests)."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False)
    console.print(frame(doc, endpoint, width, height, unicode=False), crop=True, overflow="crop")
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def _share(sizes: list[int], budget: int | None) -> list[int]:
    """Rows each section shows: all of them without a budget, else one at a time in turn (an
    empty section still takes its "none" row) until the budget is spent."""
    wanted = [max(size, 1) for size in sizes]
    if budget is None:
        return wanted
    shown = [0] * len(sizes)
    left = max(budget, 0)
    while left > 0 and shown != wanted:
        for index, want in enumerate(wanted):
            if left > 0 and shown[index] < want:
                shown[index] += 1
                left -= 1
    return shown


# (header, width, right-aligned); a column of width None (a reason) takes what is left of the
# terminal's width. Fixed widths keep the layout still from one second to the next.
Column = tuple[str, int | None, bool]
QUEUE_COLUMNS: list[Column] = [
    ("QUEUE", 24, False),
    ("STATE", 8, False),
    *((name, max(len(name), 6), True) for name in LIVE_HEADERS),
]
NODE_COLUMNS: list[Column] = [
    ("NODE", 14, False),
    ("CE", 10, False),
    ("STATE", 8, False),
    ("VCPUS", BAR_WIDTH + 10, False),
    ("GPUS", BAR_WIDTH + 4, False),
    ("JOBS", 4, True),
    ("LAST HB", 8, True),  # seconds since its last heartbeat
]
RUNNING_COLUMNS: list[Column] = [
    ("JOB", 13, False),
    ("NAME", 12, False),
    ("QUEUE", 10, False),
    ("NODE", 10, False),
    ("FOR", 7, True),
    ("WHY STARTED", None, False),
]
FAILED_COLUMNS: list[Column] = [
    ("JOB", 13, False),
    ("NAME", 12, False),
    ("QUEUE", 10, False),
    ("EXIT", 4, True),
    ("REASON", None, False),
]
REST_MIN = 4


def _section(
    title: str, columns: list[Column], rows: list[Row], count: int, width: int
) -> list[RenderableType]:
    if count <= 0:
        return []
    heading = Text(title, style="bold underline", no_wrap=True)
    heading.truncate(width, overflow="ellipsis")
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    fixed = sum((w or 0) + 1 for _, w, _ in columns)
    for name, column_width, right in columns:
        table.add_column(
            name,
            width=column_width or max(width - fixed, REST_MIN),
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if right else "left",
            header_style="bold",
        )
    if not rows:
        table.add_row(Text("none", style="dim"), *[""] * (len(columns) - 1))
    else:
        cut = len(rows) > count
        for row in rows[: count - 1 if cut else count]:
            table.add_row(*row)
        if cut:
            more = len(rows) - count + 1
            table.add_row(Text(f"+{more} more", style="dim"), *[""] * (len(columns) - 1))
    return [heading, table]


def _queue_row(queue: dict[str, Any]) -> Row:
    depth = queue.get("depth") or {}
    state = queue.get("state", "")
    return [
        queue.get("name", ""),
        Text(state, style="" if state == "ENABLED" else "yellow"),
        *(str(depth.get(status, 0)) for status in LIVE),
    ]


STATE_STYLE = {"ONLINE": "green", "DRAINING": "yellow", "DRAINED": "yellow", "DOWN": "bold red"}


def _node_row(node: dict[str, Any], now: int, unicode: bool) -> Row:
    state = node.get("state", "")
    return [
        node.get("name", ""),
        node.get("computeEnvironment", ""),
        Text(state, style=STATE_STYLE.get(state, "")),
        _bar(_float(node.get("allocatedVcpus")), _float(node.get("vcpus")), unicode),
        _bar(_float(node.get("allocatedGpus")), _float(node.get("gpus")), unicode),
        str(node.get("runningJobs", 0)),
        _since(node.get("lastHeartbeatAt"), now),
    ]


def _bar(used: float, total: float, unicode: bool) -> Text:
    """``[####----] 3/8``; "-" where the node has none of it."""
    if total <= 0:
        return Text("-", style="dim")
    filled = min(BAR_WIDTH, round(BAR_WIDTH * used / total))
    full, empty = ("█", "░") if unicode else ("#", "-")
    style = "red" if used >= total else "green"
    bar = Text(full * filled, style=style)
    bar.append(empty * (BAR_WIDTH - filled), style="dim")
    bar.append(f" {_num(used)}/{_num(total)}")
    return bar


def _running_row(job: dict[str, Any], now: int) -> Row:
    return [
        short_id(job.get("jobId", "")),
        job.get("jobName", ""),
        job.get("jobQueue", ""),
        job.get("node", ""),
        render.elapsed(job.get("startedAt"), None, now),
        _line(job.get("startReason") or job.get("statusReason")),
    ]


def _failed_row(job: dict[str, Any]) -> Row:
    exit_code = job.get("exitCode")
    return [
        short_id(job.get("jobId", "")),
        job.get("jobName", ""),
        job.get("jobQueue", ""),
        "-" if exit_code is None else str(exit_code),
        Text(_line(job.get("statusReason")), style="red"),
    ]


def short_id(job_id: str) -> str:
    """A UUID's first 8 characters, keeping an array index or node number: ``1b2c3d4e:7``."""
    base, sep, rest = job_id.partition(":")
    if not sep:
        base, sep, rest = job_id.partition("#")
    return base[:8] + sep + rest


def _since(then: int | None, now: int) -> str:
    return "-" if then is None else render.fmt_duration(now - then)


def _line(text: str | None) -> str:
    """A reason on one line: a newline in it would break the frame's line count."""
    return " ".join((text or "").split())


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"
