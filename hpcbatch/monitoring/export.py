"""Render the dashboards to Grafana's JSON and write them out with their provisioning files.

``export(directory)`` writes this tree (``hpcbatch grafana export DIR``; the copy checked in
under ``monitoring/grafana/`` is exactly its output with the defaults, kept so by a test)::

    DIR/dashboards/hpcbatch-overview.json      the dashboards (Grafana's JSON model)
    DIR/dashboards/hpcbatch-drilldown.json
    DIR/provisioning/datasources/hpcbatch.yml  a Prometheus data source (uid hpcbatch-prometheus)
    DIR/provisioning/dashboards/hpcbatch.yml   a file provider reading the dashboards' folder

Grafana reads provisioning from ``/etc/grafana/provisioning`` and needs the provider's path to
be absolute on its own host, hence ``dashboards_path``. Output is deterministic (sorted keys,
panel ids by position) so that a diff of the checked-in files shows a real change.

``panel_expressions`` and ``concrete`` serve tests that check every panel's PromQL: a panel's
expression holds Grafana variables, ``concrete`` replaces them with what Grafana would send.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from hpcbatch.monitoring import DEFAULT_DASHBOARDS_PATH, DEFAULT_PROMETHEUS_URL
from hpcbatch.monitoring.dashboards import DASHBOARDS, DATASOURCE_NAME, DATASOURCE_UID

# monitoring/prometheus/prometheus.yml's scrape interval; Grafana's $__rate_interval uses it.
SCRAPE_INTERVAL = "15s"

# What Grafana substitutes for its variables: 'All' of a multi-select is the variable's
# allValue (.*); the rate interval is at least four scrape intervals.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$queue": ".*",
    "$ce": ".*",
    "$node": ".*",
}


def dashboard_documents() -> dict[str, dict[str, Any]]:
    """File name -> the dashboard's JSON model, built by ``dashboards.py``."""
    documents = {}
    for uid, build in DASHBOARDS.items():
        model = build().build()
        for number, panel in enumerate(model.panels or [], start=1):
            panel.id_val = number  # the SDK leaves ids unset (rows 0); Grafana links panels by id
        documents[f"{uid}.json"] = json.loads(JSONEncoder().encode(model))
    return documents


def yaml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def datasource_provisioning(prometheus_url: str) -> str:
    return (
        "# Grafana data source for hpcbatch's dashboards (written by hpcbatch grafana export).\n"
        "apiVersion: 1\n"
        "datasources:\n"
        f"  - name: {yaml_string(DATASOURCE_NAME)}\n"
        f"    uid: {DATASOURCE_UID}\n"
        "    type: prometheus\n"
        "    access: proxy\n"
        f"    url: {yaml_string(prometheus_url)}\n"
        "    jsonData:\n"
        f"      timeInterval: {SCRAPE_INTERVAL}\n"
    )


def dashboard_provisioning(dashboards_path: str) -> str:
    return (
        "# Grafana loads hpcbatch's dashboards from this folder (hpcbatch grafana export).\n"
        "apiVersion: 1\n"
        "providers:\n"
        "  - name: hpcbatch\n"
        "    folder: hpcbatch\n"
        "    type: file\n"
        "    allowUiUpdates: false\n"
        "    updateIntervalSeconds: 60\n"
        "    options:\n"
        f"      path: {yaml_string(dashboards_path)}\n"
    )


def rendered_files(
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH,
) -> dict[str, str]:
    """Relative path -> file text, for everything ``export`` writes."""
    files = {
        f"dashboards/{name}": json.dumps(document, indent=2, sort_keys=True) + "\n"
        for name, document in dashboard_documents().items()
    }
    files["provisioning/datasources/hpcbatch.yml"] = datasource_provisioning(prometheus_url)
    files["provisioning/dashboards/hpcbatch.yml"] = dashboard_provisioning(dashboards_path)
    return files


def export(
    directory: Path,
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH,
) -> list[Path]:
    """Write the dashboards and provisioning files under ``directory``; the paths written."""
    written = []
    for relative, text in rendered_files(prometheus_url, dashboards_path).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def panel_expressions(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query in a dashboard, template variables' included."""
    found = [
        (f"variable {variable['name']}", label_values_series(variable["query"]))
        for variable in document.get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    ]
    for panel in document.get("panels", []):
        for target in panel.get("targets") or []:
            found.append((panel["title"], target["expr"]))
    return found


def label_values_series(variable_query: str) -> str:
    """``label_values(SERIES, LABEL)`` -> SERIES: the PromQL part of a variable's query."""
    match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable_query)
    if match is None:
        raise ValueError(f"not a label_values() query: {variable_query!r}")
    return match.group(1)


def concrete(expression: str) -> str:
    """The expression as Grafana sends it, its variables replaced (longest names first)."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expression = expression.replace(name, GRAFANA_VARIABLES[name])
    if "$" in expression:
        raise ValueError(f"unknown Grafana variable in {expression!r}")
    return expression
