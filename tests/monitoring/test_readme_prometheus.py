"""The README's command starts Prometheus with the shipped configuration, and that Prometheus
loads every alert rule and has the head as its scrape target "hpcbatch" (no head runs here:
querying a live head through Prometheus is the cluster test's job)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.test_alert_rules import ALERTS

REPO = Path(__file__).resolve().parents[2]


def readme_prometheus_command() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    found = [b for b in blocks if "prometheus --config.file" in b]
    assert len(found) == 1, "README.md must hold one sh block starting Prometheus"
    return shlex.split(found[0].replace("\\\n", " "))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


def poll(url: str, ready: Any, deadline_s: float = 20.0) -> Any:
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = get_json(url)
            if ready(last):
                return last
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {deadline_s} s: {last}")


@pytest.mark.slow  # Prometheus lists its targets ~5 s after it starts
def test_the_readme_command_runs_prometheus_with_the_rules(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is missing: scripts/test.sh installs it")
        pytest.skip("prometheus is not installed")
    argv = readme_prometheus_command()
    assert argv[0] == "prometheus"
    address = f"127.0.0.1:{free_port()}"
    argv = [
        a.replace("/tmp/hpcbatch-prometheus", str(tmp_path / "tsdb")).replace(
            "127.0.0.1:9090", address
        )
        for a in argv
    ]
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        rules = poll(
            f"http://{address}/api/v1/rules",
            lambda r: r.get("data", {}).get("groups"),
        )
        loaded = {rule["name"] for g in rules["data"]["groups"] for rule in g["rules"]}
        assert loaded == ALERTS
        targets = poll(f"http://{address}/api/v1/targets", lambda r: r["data"]["activeTargets"])
        [target] = targets["data"]["activeTargets"]
        assert target["labels"] == {"instance": "127.0.0.1:9650", "job": "hpcbatch"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
