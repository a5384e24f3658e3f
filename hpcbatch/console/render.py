"""Jinja2 templates (``console/templates``), autoescaped, with the filters the pages share."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe

PREFIX = "/console"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("hpcbatch.console", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def when(ms: int | None) -> str:
    """A time in milliseconds as UTC, to the second; an empty string for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def took(start_ms: int | None, stop_ms: int | None) -> str:
    if start_ms is None:
        return ""
    end = stop_ms if stop_ms is not None else time.time() * 1000
    return duration((end - start_ms) / 1000)


def percent(part: float, whole: float) -> int:
    return 0 if whole <= 0 else max(0, min(100, round(100 * part / whole)))


def badge(status: str) -> markupsafe.Markup:
    return markupsafe.Markup('<span class="status s-{0}">{1}</span>').format(status.lower(), status)


def job_link(job_id: str, text: str) -> markupsafe.Markup:
    href = f"{PREFIX}/jobs/{quote(job_id, safe='')}"
    return markupsafe.Markup('<a href="{0}">{1}</a>').format(href, text)


_ENV.filters.update(
    when=when, duration=duration, took=took, q=lambda text: quote(str(text), safe="")
)
_ENV.globals.update(percent=percent, badge=badge, job_link=job_link)


def page(name: str, context: dict[str, Any]) -> bytes:
    return _ENV.get_template(name).render(context).encode()


def region(name: str, context: dict[str, Any]) -> bytes:
    """The template's ``live`` block alone: what a live page swaps in."""
    template = _ENV.get_template(name)
    return "".join(template.blocks["live"](template.new_context(context))).encode()


def problem(message: str) -> bytes:
    """A live region's stand-in when its subject is gone (a job the head forgot)."""
    return f'<p class="problem" role="alert">{markupsafe.escape(message)}</p>'.encode()
