"""The shipped alert rules and Prometheus configuration: promtool accepts them, its unit tests
(monitoring/prometheus/tests/*.yml: input series, each alert seen firing and not) pass, and
every series they read is one the head exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.monitoring.conftest import MONITORING
from tests.monitoring.contract import SERIES, series_named

PROMETHEUS = MONITORING / "prometheus"
RULES = PROMETHEUS / "hpcbatch-alerts.yml"
ALERTS = {
    "HpcbatchQueueBlocked",
    "HpcbatchNodeDown",
    "HpcbatchNodeHeartbeatSilent",
    "HpcbatchJobFailureRatioHigh",
    "HpcbatchHeadTargetMissing",
    "HpcbatchSchedulingPassSlow",
}


def run(*argv: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules_and_the_config(promtool: str) -> None:
    rules = run(promtool, "check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in rules.stdout
    config = run(promtool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert files
    result = run(promtool, "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_is_unit_tested_firing_and_not() -> None:
    text = "".join(p.read_text() for p in (PROMETHEUS / "tests").glob("*.yml"))
    blocks = re.findall(
        r"alertname: (\w+)\n\s+exp_alerts:( \[\]|\n\s+- exp_labels)", text, flags=re.M
    )
    firing = {name for name, how in blocks if how != " []"}
    quiet = {name for name, how in blocks if how == " []"}
    assert firing == ALERTS
    assert quiet == ALERTS


def test_alerts_read_only_exported_series() -> None:
    expressions = re.findall(r"expr: \|?\n?((?:.+\n)+?)\s+for:", RULES.read_text())
    assert len(expressions) == len(ALERTS)
    for expression in expressions:
        assert series_named(expression) <= SERIES, expression
    assert {a for a in re.findall(r"- alert: (\w+)", RULES.read_text())} == ALERTS


def test_the_config_scrapes_the_head_as_job_hpcbatch() -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "job_name: hpcbatch" in config
    assert '"127.0.0.1:9650"' in config
    assert "- hpcbatch-alerts.yml" in config
