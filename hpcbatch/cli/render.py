"""Pure text rendering for people: aligned tables, local times, durations.

Vocabulary: a **table** is a header row plus rows of cells (already strings); times arrive as
epoch milliseconds (the API's unit) and are shown in the local time zone as
``2026-11-23 18:59:01``; a **duration** is shown at the precision a person cares about
(``0.42s``, ``12.3s``, ``4m05s``, ``3h02m``, ``2d04h``). A missing value renders as ``-``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

MISSING = "-"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    grid = [list(headers)] + [[cell if cell else MISSING for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    lines = []
    for row in grid:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return MISSING
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def fmt_duration(ms: int | float | None) -> str:
    if ms is None:
        return MISSING
    seconds = max(ms, 0) / 1000
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def elapsed(start_ms: int | None, stop_ms: int | None, now_ms: int) -> str:
    """How long something ran: until it stopped, or until now while it still runs."""
    if start_ms is None:
        return MISSING
    return fmt_duration((stop_ms if stop_ms is not None else now_ms) - start_ms)


def age(then_ms: int | None, now_ms: int) -> str:
    """'12.3s ago' for heartbeats and the like."""
    if then_ms is None:
        return "never"
    return fmt_duration(now_ms - then_ms) + " ago"


def plural(count: object, noun: str) -> str:
    """``1 vCPU``, ``2 vCPUs``, ``0.5 vCPUs``; ``count`` as the API gave it (int or text)."""
    return f"{count} {noun}" + ("" if str(count) in ("1", "1.0") else "s")


def truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())  # a reason with newlines would break the table
    return text if len(text) <= width else text[: width - 1] + "…"


def now_ms() -> int:
    return int(time.time() * 1000)


def print_json(document: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def short_name(arn_or_name: str | None) -> str:
    """``arn:aws:batch:r:a:job-queue/default`` -> ``default``; names pass through."""
    if not arn_or_name:
        return ""
    if arn_or_name.startswith("arn:"):
        return arn_or_name.rsplit("/", 1)[-1]
    return arn_or_name


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """``key: value`` lines, the values aligned: a describe command's block for one resource."""
    rows = list(pairs)
    width = max((len(key) for key, _ in rows), default=0) + 1
    return "\n".join(
        f"{(key + ':').ljust(width)} {value or MISSING}".rstrip() for key, value in rows
    )


def number(value: object) -> str:
    """A quantity as the API gave it, without a float's ``.0`` (``2.0`` -> ``2``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)
