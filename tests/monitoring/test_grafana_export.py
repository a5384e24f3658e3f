"""The dashboards built from code: the checked-in JSON is what `hpcbatch grafana export`
writes, every panel and variable expression parses (promtool) and reads exported series,
and the dashboards answer the questions issue 11 asks of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.cli.main import main
from hpcbatch.monitoring.export import (
    concrete,
    dashboard_documents,
    label_values_series,
    panel_expressions,
    rendered_files,
)
from tests.monitoring.conftest import MONITORING
from tests.monitoring.contract import SERIES, series_named

CHECKED_IN = MONITORING / "grafana"


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_checked_in_files_are_what_export_writes(tmp_path: Path, capsys: Any) -> None:
    assert main(["grafana", "export", str(tmp_path / "out")]) == 0
    written = tree(tmp_path / "out")
    assert written == tree(CHECKED_IN), (
        "monitoring/grafana is stale: run `hpcbatch grafana export monitoring/grafana`"
    )
    assert sorted(written) == sorted(rendered_files())
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / "out" / name) for name in written)


def test_export_options_reach_the_provisioning_files(tmp_path: Path) -> None:
    argv = ["grafana", "export", str(tmp_path), "--prometheus-url", "http://prom:9090"]
    assert main([*argv, "--dashboards-path", "/srv/dash"]) == 0
    provisioning = tmp_path / "provisioning"
    assert 'url: "http://prom:9090"' in (provisioning / "datasources/hpcbatch.yml").read_text()
    assert 'path: "/srv/dash"' in (provisioning / "dashboards/hpcbatch.yml").read_text()


def all_expressions() -> list[tuple[str, str, str]]:
    return [
        (name, title, expression)
        for name, document in dashboard_documents().items()
        for title, expression in panel_expressions(document)
    ]


def test_every_panel_expression_parses(promtool: str, tmp_path: Path) -> None:
    # One recording rule per expression: `promtool check rules` parses each with Prometheus'
    # own parser and names the rule of any that fails.
    lines = ["groups:", "  - name: hpcbatch_panels", "    rules:"]
    for number, (_, _, expression) in enumerate(all_expressions()):
        lines.append(f"      - record: hpcbatch_panel_{number}")
        lines.append(f"        expr: '{concrete(expression)}'")
    rules = tmp_path / "panels.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(all_expressions())} rules found" in result.stdout


def test_a_broken_expression_would_be_caught(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "bad.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: 'sum by (queue (x)'\n"
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0


def test_panels_read_only_exported_series() -> None:
    for name, title, expression in all_expressions():
        named = series_named(concrete(expression))
        assert named, (name, title)
        assert named <= SERIES, (name, title, named - SERIES)


def test_concrete_replaces_every_grafana_variable() -> None:
    assert concrete('rate(x{queue=~"$queue"}[$__rate_interval])') == 'rate(x{queue=~".*"}[1m])'
    with pytest.raises(ValueError, match="unknown Grafana variable"):
        concrete("x{a=~'$unknown'}")
    assert label_values_series('label_values(up{ce=~"$ce"}, node)') == 'up{ce=~"$ce"}'


def titles(document: dict[str, Any]) -> set[str]:
    return {panel["title"] for panel in document["panels"]}


def test_the_overview_answers_the_issues_questions() -> None:
    overview = dashboard_documents()["hpcbatch-overview.json"]
    assert {
        "Queue depth by queue and status",
        "Why RUNNABLE jobs wait",
        "vCPUs: offered, allocated, used",
        "GPUs: offered, allocated",
        "Nodes by state",
        "Throughput",
        "Queue wait percentiles",
    } <= titles(overview)
    expressions = [e for t, e in panel_expressions(overview)]
    assert any("hpcbatch_node_cpu_used_seconds_total" in e for e in expressions)
    assert any("histogram_quantile(0.99" in e for e in expressions)


def test_the_drilldown_filters_by_its_template_variables() -> None:
    drilldown = dashboard_documents()["hpcbatch-drilldown.json"]
    variables = {v["name"]: v for v in drilldown["templating"]["list"]}
    assert set(variables) == {"datasource", "queue", "ce", "node"}
    assert variables["node"]["query"] == 'label_values(hpcbatch_node_vcpus{ce=~"$ce"}, node)'
    for name in ("queue", "ce", "node"):
        assert variables[name]["multi"] and variables[name]["allValue"] == ".*"
    for panel in drilldown["panels"]:
        for target in panel.get("targets") or []:
            assert "$queue" in target["expr"] or "$node" in target["expr"], panel["title"]


def test_panels_use_the_datasource_variable_and_unique_ids() -> None:
    for document in dashboard_documents().values():
        ids = [panel["id"] for panel in document["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in document["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_checked_in_dashboards_read_back_as_grafana_models() -> None:
    # The SDK's own decoder (Grafana's schema as types): a hand edit that breaks the model's
    # shape, or a field the schema does not know, does not survive the round trip.
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    for path in sorted((CHECKED_IN / "dashboards").glob("*.json")):
        document = json.loads(path.read_text())
        assert json.loads(JSONEncoder().encode(Dashboard.from_json(document))) == document
