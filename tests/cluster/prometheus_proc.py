"""A real Prometheus for tests: started on a free port with its TSDB in a temporary folder,
scraping one target every second, stopped by PID; queried through its HTTP API.

Vocabulary: a *query* is an instant PromQL query (``/api/v1/query``); its *vector* is the
result's list of ``{"metric": labels, "value": [time, "text"]}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.head.headproc import free_port

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: hpcbatch
    static_configs:
      - targets: ["{target}"]
"""


def require_program(name: str) -> str:
    """The path of one of Debian's prometheus package's programs; under CI its absence fails."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: scripts/test.sh installs the prometheus package")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return path


def require_prometheus() -> str:
    return require_program("prometheus")


class Prometheus:
    """One Prometheus process scraping ``target`` (host:port) and loading ``rules``."""

    def __init__(self, directory: Path, target: str, rules: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "prometheus.yml"
        self.config.write_text(CONFIG.format(rules=json.dumps(str(rules)), target=target))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = directory / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        argv = [
            require_prometheus(),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.directory / 'tsdb'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=5).status_code == 200

    def query_reply(self, expression: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The vector of an instant query; the query must succeed."""
        reply = self.query_reply(expression)
        if reply.status_code == 503:  # not ready yet, though /-/ready said so a moment ago
            raise httpx.TransportError(f"{expression}: Prometheus answered 503: not ready")
        assert reply.status_code == 200, f"{expression}: {reply.status_code} {reply.text}"
        body = reply.json()
        assert body["status"] == "success", f"{expression}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def by_label(self, expression: str, label: str) -> dict[str, float]:
        """label value -> sample value, for a vector with one sample per ``label`` value."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expression)}

    def scalar(self, expression: str) -> float | None:
        """The value of a one-sample vector; None when it is empty."""
        vector = self.query(expression)
        assert len(vector) <= 1, f"{expression}: {vector}"
        return float(vector[0]["value"][1]) if vector else None


def poll(check: Callable[[], Any], deadline_s: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy (connection errors count as not yet)."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = result = check()
        except httpx.TransportError as error:
            # kept to be shown at the deadline, never returned: an exception is truthy, and
            # returning it passed a wait for Prometheus' first scrape while Prometheus was
            # not even listening yet (CI, loaded): the test's jobs then ran before any scrape
            last, result = error, None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what} (last: {last!r})")
