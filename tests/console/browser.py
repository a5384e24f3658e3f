"""Debian's Chromium driven by Playwright, for the console's tests.

Playwright's own browser download cannot be reached here, so it launches the system's
``/usr/bin/chromium`` (scripts/test.sh installs it), headless, with the flags that keep it off
the network (no background fetches, no QUIC), as root needs ``--no-sandbox``. axe-core comes
from the ``axe-playwright-python`` wheel (its ``axe.min.js``); nothing is fetched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIOUS = ("serious", "critical")


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        reason = "Debian's chromium is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['html'][:120] for n in v['nodes'][:3]]}"
        for v in found
        if v["impact"] in SERIOUS
    ]


def screenshot_dir(base: Path) -> Path:
    """Where the tests write their screenshots: ``$HPCBATCH_SCREENSHOTS`` (docs/images, to
    refresh the README's), else the test session's own directory."""
    chosen = os.environ.get("HPCBATCH_SCREENSHOTS")
    directory = Path(chosen) if chosen else base
    directory.mkdir(parents=True, exist_ok=True)
    return directory
