"""Scraping a head's /metrics in tests: parsed by prometheus_client's own parser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.head.headproc import HeadProcess, free_port

Families = dict[str, Any]


def metrics_head(data_dir: Path, **options: Any) -> tuple[HeadProcess, str]:
    """A head whose [metrics] listen is a free port of its own (not the suite's port 0)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HPCBATCH_METRICS_LISTEN"}
    extra = options.pop("extra_config", "") + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    head = HeadProcess(data_dir, extra_config=extra, env=env, **options)
    return head, f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> Families:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def value(families: Families, name: str, **labels: str) -> float:
    """The one sample of family ``name`` (its sample name: ``name`` or ``name_total``)."""
    family = families[name]
    wanted = {name, f"{name}_total"}
    found = [
        s.value
        for s in family.samples
        if s.name in wanted and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return float(found[0])


def histogram_count(families: Families, name: str, **labels: str) -> float:
    family = families[name]
    return sum(
        s.value
        for s in family.samples
        if s.name == f"{name}_count" and all(s.labels.get(k) == v for k, v in labels.items())
    )
