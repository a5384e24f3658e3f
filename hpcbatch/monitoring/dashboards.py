"""The two hpcbatch dashboards: a cluster overview and a per-queue / per-node drill-down.

Every panel reads the head's series (docs/metrics.md) through a ``datasource`` variable, so the
dashboards work with whichever Prometheus data source a Grafana has. Rates use Grafana's
``$__rate_interval``; histograms become percentiles with ``histogram_quantile`` over summed
buckets. A panel is a title, a unit and (expression, legend) pairs: the helpers below hold the
SDK's builder calls so that each dashboard reads as a list of questions it answers.

vCPUs *used* is the rate of ``hpcbatch_node_cpu_used_seconds_total`` (CPU-seconds per second):
next to vCPUs allocated it shows jobs that ask for more than they use.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig, VizLegendOptions
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OVERVIEW_UID = "hpcbatch-overview"
DRILLDOWN_UID = "hpcbatch-drilldown"
TAGS = ["hpcbatch"]
# The data source `hpcbatch grafana export` provisions; the variable starts on it.
DATASOURCE_UID = "hpcbatch-prometheus"
DATASOURCE_NAME = "hpcbatch Prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"

Query = tuple[str, str]  # (PromQL expression, legend format)


def query(expr: str, legend: str) -> Query:
    return (expr, legend)


def quantiles(histogram: str, selector: str = "", by: str = "") -> list[Query]:
    """p50, p90 and p99 of a histogram over the rate interval, optionally per label ``by``."""
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({histogram}_bucket{selector}[{RATE}])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def targets(panel: timeseries.Panel | stat.Panel, queries: list[Query]) -> None:
    for ref, (expr, legend) in zip("ABCDEFGHIJ", queries, strict=False):
        panel.with_target(
            prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()
        )


def graph(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    *,
    stacked: bool = False,
    width: int = 12,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .fill_opacity(20 if stacked else 10)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel.stacking(StackingConfig().mode(common.StackingMode.NORMAL))
    targets(panel, queries)
    return panel


def single(title: str, description: str, unit: str, expr: str) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(4)
        .height(4)
        .graph_mode(common.BigValueGraphMode.AREA)
    )
    targets(panel, [query(expr, title)])
    return panel


def datasource_variable() -> gd.DatasourceVariable:
    return (
        gd.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(VariableOption(selected=True, text=DATASOURCE_NAME, value=DATASOURCE_UID))
    )


def label_variable(name: str, label: str, series: str) -> gd.QueryVariable:
    """A multi-select over the values of label ``name`` on ``series``, 'All' meaning ``.*``."""
    return (
        gd.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({series}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def base(uid: str, title: str, description: str) -> gd.Dashboard:
    return (
        gd.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(
            gd.DashboardLink("hpcbatch")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
    )


def overview() -> gd.Dashboard:
    """The whole cluster on one screen: what waits and why, what runs, what is free."""
    return (
        base(
            OVERVIEW_UID,
            "hpcbatch / cluster overview",
            "Queues, capacity and the head of one hpcbatch cluster.",
        )
        .with_panel(
            single(
                "Jobs running",
                "Jobs in status RUNNING, all queues.",
                "short",
                'sum(hpcbatch_queue_jobs{status="RUNNING"})',
            )
        )
        .with_panel(
            single(
                "Jobs waiting (RUNNABLE)",
                "Jobs ready to start that wait for room or for a reason below.",
                "short",
                'sum(hpcbatch_queue_jobs{status="RUNNABLE"})',
            )
        )
        .with_panel(
            single(
                "vCPUs allocated",
                "Share of the vCPUs offered by all compute environments that jobs hold.",
                "percentunit",
                "sum(hpcbatch_ce_vcpus_allocated) / sum(hpcbatch_ce_vcpus)",
            )
        )
        .with_panel(
            single(
                "vCPUs used / allocated",
                "CPU actually used by jobs (agents' cgroup counters) over what they reserved: "
                "well under 100 % means jobs ask for more than they use.",
                "percentunit",
                f"sum(rate(hpcbatch_node_cpu_used_seconds_total[{RATE}]))"
                " / sum(hpcbatch_ce_vcpus_allocated)",
            )
        )
        .with_panel(
            single(
                "Nodes DOWN",
                "Nodes whose agent the head lost.",
                "short",
                'sum(hpcbatch_nodes{state="DOWN"}) or vector(0)',
            )
        )
        .with_panel(
            single(
                "Head scraped",
                "1 when Prometheus reaches the head's /metrics (scrape job hpcbatch).",
                "short",
                'min(up{job="hpcbatch"})',
            )
        )
        .with_row(gd.Row("Queues"))
        .with_panel(
            graph(
                "Queue depth by queue and status",
                "Jobs per queue and status (SUBMITTED to RUNNING).",
                "short",
                [query("sum by (queue, status) (hpcbatch_queue_jobs)", "{{queue}} {{status}}")],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Why RUNNABLE jobs wait",
                "RUNNABLE jobs by the class of reason `hpcbatch describe` gives: capacity, "
                "dependency, misconfiguration, queue or environment disabled, node unavailable.",
                "short",
                [
                    query(
                        "sum by (queue, reason) (hpcbatch_queue_runnable_jobs_by_reason)",
                        "{{queue}}: {{reason}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Throughput",
                "Jobs submitted and finished per second, by final status.",
                "short",
                [
                    query(f"sum(rate(hpcbatch_jobs_submitted_total[{RATE}]))", "submitted"),
                    query(
                        f"sum by (status) (rate(hpcbatch_jobs_finished_total[{RATE}]))",
                        "{{status}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Queue wait percentiles",
                "Seconds from submission (createdAt) to start (startedAt), all queues.",
                "s",
                quantiles("hpcbatch_job_queue_wait_seconds"),
            )
        )
        .with_row(gd.Row("Capacity"))
        .with_panel(
            graph(
                "vCPUs: offered, allocated, used",
                "Offered by ONLINE nodes, allocated to jobs, and actually used by jobs "
                "(CPU-seconds per second from the agents).",
                "short",
                [
                    query("sum(hpcbatch_ce_vcpus)", "offered"),
                    query("sum(hpcbatch_ce_vcpus_allocated)", "allocated"),
                    query(f"sum(rate(hpcbatch_node_cpu_used_seconds_total[{RATE}]))", "used"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "GPUs: offered, allocated",
                "GPUs offered and allocated to jobs, per compute environment.",
                "short",
                [
                    query("sum by (ce) (hpcbatch_ce_gpus)", "{{ce}} offered"),
                    query("sum by (ce) (hpcbatch_ce_gpus_allocated)", "{{ce}} allocated"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Memory: offered, allocated",
                "Memory offered and allocated to jobs, all compute environments.",
                "bytes",
                [
                    query("sum(hpcbatch_ce_memory_bytes)", "offered"),
                    query("sum(hpcbatch_ce_memory_allocated_bytes)", "allocated"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Nodes by state",
                "Nodes per compute environment and state (ONLINE, DRAINING, DRAINED, DOWN).",
                "short",
                [query("sum by (ce, state) (hpcbatch_nodes)", "{{ce}} {{state}}")],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Retries, timeouts, lost hosts",
                "Per second, all queues: attempts retried, attempts over their timeout, and "
                "attempts failed because their node was lost.",
                "short",
                [
                    query(f"sum(rate(hpcbatch_job_retries_total[{RATE}]))", "retries"),
                    query(f"sum(rate(hpcbatch_job_timeouts_total[{RATE}]))", "timeouts"),
                    query(f"sum(rate(hpcbatch_host_lost_total[{RATE}]))", "host lost"),
                ],
            )
        )
        .with_row(gd.Row("Head"))
        .with_panel(
            graph(
                "Scheduling and commit (p99)",
                "99th percentile of a scheduling pass, of a batch's commit to the store, and "
                "of a command's dispatch to its agent.",
                "s",
                [
                    query(
                        f"histogram_quantile(0.99, sum by (le) (rate({name}_bucket[{RATE}])))",
                        label,
                    )
                    for name, label in (
                        ("hpcbatch_scheduling_pass_seconds", "scheduling pass"),
                        ("hpcbatch_batch_commit_seconds", "batch commit"),
                        ("hpcbatch_dispatch_latency_seconds", "dispatch"),
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "API requests",
                "Requests per second by outcome (ok, client_error, server_error).",
                "reqps",
                [
                    query(
                        f"sum by (outcome) (rate(hpcbatch_api_requests_total[{RATE}]))",
                        "{{outcome}}",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Head process",
                "The head's resident memory and CPU (prometheus-client process collector).",
                "short",
                [
                    query(f'rate(process_cpu_seconds_total{{job="hpcbatch"}}[{RATE}])', "CPU"),
                    query('process_resident_memory_bytes{job="hpcbatch"} / 2^30', "RSS GiB"),
                ],
                width=8,
            )
        )
    )


QUEUES = 'queue=~"$queue"'
NODES = 'ce=~"$ce", node=~"$node"'


def drilldown() -> gd.Dashboard:
    """One queue's jobs and one node's resources, chosen with template variables."""
    return (
        base(
            DRILLDOWN_UID,
            "hpcbatch / queues and nodes",
            "Per-queue and per-node detail: pick queues, compute environments and nodes above.",
        )
        .with_variable(label_variable("queue", "Queue", "hpcbatch_queue_jobs"))
        .with_variable(label_variable("ce", "Compute environment", "hpcbatch_node_vcpus"))
        .with_variable(label_variable("node", "Node", 'hpcbatch_node_vcpus{ce=~"$ce"}'))
        .with_row(gd.Row("Queues: $queue"))
        .with_panel(
            graph(
                "Depth by status",
                "Jobs in the selected queues per status.",
                "short",
                [
                    query(
                        f"sum by (queue, status) (hpcbatch_queue_jobs{{{QUEUES}}})",
                        "{{queue}} {{status}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Why RUNNABLE jobs wait",
                "RUNNABLE jobs of the selected queues by the class of their reason.",
                "short",
                [
                    query(
                        "sum by (queue, reason) "
                        f"(hpcbatch_queue_runnable_jobs_by_reason{{{QUEUES}}})",
                        "{{queue}}: {{reason}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Submitted and finished",
                "Jobs per second per queue: submitted, and finished by final status.",
                "short",
                [
                    query(
                        f"sum by (queue) (rate(hpcbatch_jobs_submitted_total{{{QUEUES}}}[{RATE}]))",
                        "{{queue}} submitted",
                    ),
                    query(
                        "sum by (queue, status) "
                        f"(rate(hpcbatch_jobs_finished_total{{{QUEUES}}}[{RATE}]))",
                        "{{queue}} {{status}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Attempts, retries, timeouts, lost hosts",
                "Per second per queue.",
                "short",
                [
                    query(
                        f"sum by (queue) (rate({name}{{{QUEUES}}}[{RATE}]))",
                        f"{{{{queue}}}} {label}",
                    )
                    for name, label in (
                        ("hpcbatch_attempts_total", "attempts"),
                        ("hpcbatch_job_retries_total", "retries"),
                        ("hpcbatch_job_timeouts_total", "timeouts"),
                        ("hpcbatch_host_lost_total", "host lost"),
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Queue wait percentiles",
                "Seconds from submission to start, per queue.",
                "s",
                quantiles("hpcbatch_job_queue_wait_seconds", f"{{{QUEUES}}}", by="queue"),
            )
        )
        .with_panel(
            graph(
                "Run time percentiles",
                "Seconds from start to finish, per queue.",
                "s",
                quantiles("hpcbatch_job_run_seconds", f"{{{QUEUES}}}", by="queue"),
            )
        )
        .with_row(gd.Row("Nodes: $node"))
        .with_panel(
            graph(
                "vCPUs allocated vs used",
                "Per node: vCPUs jobs reserved and CPU-seconds per second they used; the gap "
                "is over-asking.",
                "short",
                [
                    query(
                        f"sum by (node) (hpcbatch_node_vcpus_allocated{{{NODES}}})",
                        "{{node}} allocated",
                    ),
                    query(
                        "sum by (node) "
                        f"(rate(hpcbatch_node_cpu_used_seconds_total{{{NODES}}}[{RATE}]))",
                        "{{node}} used",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "vCPUs offered",
                "Per node: vCPUs the node offers to jobs.",
                "short",
                [query(f"sum by (node) (hpcbatch_node_vcpus{{{NODES}}})", "{{node}}")],
            )
        )
        .with_panel(
            graph(
                "GPUs allocated / offered",
                "Per node.",
                "short",
                [
                    query(
                        f"sum by (node) (hpcbatch_node_gpus_allocated{{{NODES}}})",
                        "{{node}} allocated",
                    ),
                    query(f"sum by (node) (hpcbatch_node_gpus{{{NODES}}})", "{{node}} offered"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Memory allocated / offered",
                "Per node.",
                "bytes",
                [
                    query(
                        f"sum by (node) (hpcbatch_node_memory_allocated_bytes{{{NODES}}})",
                        "{{node}} allocated",
                    ),
                    query(
                        f"sum by (node) (hpcbatch_node_memory_bytes{{{NODES}}})",
                        "{{node}} offered",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Seconds since last heartbeat",
                "Per node: a growing line is an agent that fell silent.",
                "s",
                [
                    query(
                        f"max by (node) (hpcbatch_node_heartbeat_age_seconds{{{NODES}}})",
                        "{{node}}",
                    )
                ],
                width=8,
            )
        )
    )


DASHBOARDS = {OVERVIEW_UID: overview, DRILLDOWN_UID: drilldown}
