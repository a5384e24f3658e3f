"""Quiet by default: hpcbatch's own lines at info, libraries (paramiko, httpx, uvicorn) at
warning unless --log-level debug; a real head's terminal at start and stop is a short, known
set of lines, and no line per request."""

from __future__ import annotations

import io
import logging
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hpcbatch.head import logsetup
from tests.head.headproc import free_port, stop_agent_and_jobs, wait_for

LIBRARIES = ("paramiko", "paramiko.transport", "httpx", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = ("hpcbatch", *logsetup.LIBRARY_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def emitted(level: str) -> list[str]:
    stream = io.StringIO()
    logsetup.configure(level, stream)
    logging.getLogger("hpcbatch.head").info("head info")
    logging.getLogger("hpcbatch.nodes").debug("head debug")
    logging.getLogger("hpcbatch.nodes").warning("head warning")
    logging.getLogger("paramiko.transport").info("Connected (version 2.0, client OpenSSH_9.6)")
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:7650")
    logging.getLogger("uvicorn.access").info("GET /hpcbatch/v1/health 200")
    logging.getLogger("httpx").info("HTTP Request: GET http://x")
    logging.getLogger("paramiko.transport").warning("Oops, unhandled type 3")
    return [line.split(" ", 3)[3] for line in stream.getvalue().splitlines()]


def test_info_shows_hpcbatch_info_and_library_warnings_only() -> None:
    assert emitted("info") == [
        "hpcbatch.head: head info",
        "hpcbatch.nodes: head warning",
        "paramiko.transport: Oops, unhandled type 3",
    ]
    assert logging.getLogger("hpcbatch").getEffectiveLevel() == logging.INFO
    for name in LIBRARIES:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    assert not logsetup.access_log_wanted("info")


def test_debug_opens_everything_and_the_access_log() -> None:
    assert len(emitted("debug")) == 8
    for name in ("hpcbatch", *LIBRARIES):
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG, name
    assert logsetup.access_log_wanted("debug")


def test_warning_and_error_quieten_hpcbatch_too() -> None:
    assert emitted("warning") == [
        "hpcbatch.nodes: head warning",
        "paramiko.transport: Oops, unhandled type 3",
    ]
    assert emitted("error") == []


def run_head(tmp_path: Path, *options: str) -> tuple[str, int, str]:
    """Start a real head, ask it for health twice, stop it with SIGTERM; its terminal output
    with the times cut off, its pid and its endpoint."""
    data = tmp_path / "data"
    config = tmp_path / "head.toml"
    config.write_text("[local]\nnodes = 1\nvcpus = 1\nmemory_mib = 1024\n")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    out = tmp_path / "terminal"
    cmd = [sys.executable, "-m", "hpcbatch.cli.main", "head", "--data-dir", str(data)]
    cmd += ["--listen", f"127.0.0.1:{port}", "--config", str(config), *options]
    with open(out, "wb") as terminal:
        head = subprocess.Popen(cmd, stdout=terminal, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _healthy(endpoint, head), 30, "the head to answer")
        assert httpx.get(f"{endpoint}/hpcbatch/v1/health", timeout=10).status_code == 200
        head.send_signal(signal.SIGTERM)
        assert head.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
        for state_dir in (data / "agents").glob("*"):
            stop_agent_and_jobs(state_dir)
    text = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", out.read_text(), flags=re.M)
    return text, head.pid, endpoint


def _healthy(endpoint: str, head: subprocess.Popen[bytes]) -> bool:
    assert head.poll() is None, "the head exited"
    try:
        return httpx.get(f"{endpoint}/hpcbatch/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_real_head_says_four_lines_from_start_to_stop(tmp_path: Path) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    text, pid, endpoint = run_head(tmp_path, "--metrics-listen", metrics)
    assert text.splitlines() == [
        f"INFO hpcbatch.head: hpcbatch head 0.1.0 (pid {pid}): data directory "
        f"{tmp_path / 'data'}, serving {endpoint}, metrics on http://{metrics}/metrics",
        "INFO hpcbatch.nodes: node local-1: connected",
        "INFO hpcbatch.head: ready: 1 local node",
        "INFO hpcbatch.head: stopping; running jobs keep running and the next head re-adopts them",
    ]


def test_debug_shows_uvicorn_and_each_request(tmp_path: Path) -> None:
    text, _, _ = run_head(tmp_path, "--log-level", "debug")
    assert "INFO uvicorn.error: Waiting for application startup." in text
    assert re.search(r"INFO uvicorn.access: .*\"GET /hpcbatch/v1/health HTTP/1.1\" 200", text)
