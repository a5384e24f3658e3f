"""One Chromium and one real head (two LOCAL nodes) for each module.

The browser lives for a module, not the session: Playwright's sync API keeps an event loop
running on the thread that drives it, and every later ``asyncio.run`` on that thread (the
tests of the head's loop and transports, on the same pytest-xdist worker) would fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import CHROMIUM, FLAGS, require_chromium, screenshot_dir
from tests.head.headproc import HeadProcess


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadProcess]:
    started = HeadProcess(tmp_path_factory.mktemp("console-head"), nodes=2).start()
    try:
        yield started
    finally:
        started.cleanup()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies), a desktop-sized page; closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))
