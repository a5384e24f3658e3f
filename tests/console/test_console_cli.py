"""``hpcbatch console``: the address a browser opens, from a real head."""

from __future__ import annotations

import subprocess
import sys

import httpx

from hpcbatch.cli.commands.console import console_url
from tests.head.headproc import HeadProcess


def test_hpcbatch_console_prints_the_address_and_it_serves_the_console(head: HeadProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hpcbatch.cli.main", "console", "-e", head.endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},  # no $DISPLAY: opens nothing
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url == f"{head.endpoint}/console/"
    page = httpx.get(url, follow_redirects=True, timeout=10)
    assert page.status_code == 200 and "<h1>Jobs</h1>" in page.text


def test_on_the_unix_socket_the_head_says_where_its_console_is(head: HeadProcess) -> None:
    health = head.get("/hpcbatch/v1/health")
    assert health["console"] == f"http://127.0.0.1:{head.port}/console/"
    assert console_url("unix:///run/hpcbatch/head.sock", health) == health["console"]
    assert console_url("unix:///run/hpcbatch/head.sock", {"console": None}) is None
