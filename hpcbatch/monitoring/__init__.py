"""Grafana dashboards and Prometheus files for watching an hpcbatch head, built from code.

Vocabulary:
- *series*: a metric the head exports on /metrics (docs/metrics.md), e.g. ``hpcbatch_queue_jobs``.
- *expression*: a PromQL query a panel or an alert evaluates; a panel's may hold Grafana
  variables (``$queue``, ``$__rate_interval``) that Grafana substitutes before asking Prometheus.
- *dashboard*: Grafana's JSON model, built with grafana-foundation-sdk (``dashboards.py``).
- *provisioning*: the YAML files that make Grafana load a data source and our dashboards at
  start (``export.py``), so nobody clicks them together by hand.

The alert rules are plain YAML in ``monitoring/prometheus/`` (promtool checks and unit-tests
them); ``hpcbatch grafana export DIR`` writes the dashboards and provisioning files.
"""

# Defaults of `hpcbatch grafana export`, here so that the CLI reads them without importing the SDK.
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/hpcbatch"
