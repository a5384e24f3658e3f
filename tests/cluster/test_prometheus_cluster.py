"""A real Prometheus scraping a head that manages the 4-host dev cluster (issue 11, item 4).

One Prometheus (scrape and rule evaluation every 1 s, TSDB in a temporary folder) and one head
(its /metrics on a free port, heartbeat timeout 3 s) serve the whole module; the tests run in
file order and each leaves the cluster idle for the next: CPU seconds of a busy and a sleeping
job, an array's queue depth and allocations, a node cut off, and last every panel and alert
expression of the shipped files, evaluated once the earlier tests have given them data.
Everything is read through Prometheus' HTTP API, never from the head's /metrics directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbatch.devcluster import DevCluster
from hpcbatch.monitoring.export import concrete, panel_expressions
from tests.cluster.conftest import _require_root, start_head
from tests.cluster.prometheus_proc import Prometheus, poll, require_prometheus
from tests.head.headproc import HeadProcess, free_port, stop_agent_and_jobs
from tests.monitoring.conftest import MONITORING
from tests.monitoring.contract import series_named
from tests.monitoring.test_alert_rules import ALERTS

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 2.0: pass\n"
WHOLE_HOST = [{"type": "VCPU", "value": "2"}]  # a host has 2 vCPUs: one such job per host
CHILDREN = 12  # 8 run (4 hosts x 2 vCPUs), 4 wait for capacity
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")

# No expression is excused from returning data: the head creates every labelled counter at 0
# for each queue it knows (retries, timeouts, host lost included), so even what never happened
# here has a series, and every histogram named by a panel has had observations by the end.


@dataclass
class Stack:
    cluster: DevCluster
    head: HeadProcess
    prometheus: Prometheus
    tmp: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_root()
    require_prometheus()
    tmp = tmp_path_factory.mktemp("prometheus-cluster")
    cluster = DevCluster.up(tmp / "cluster", hosts=4)
    head: HeadProcess | None = None
    prometheus: Prometheus | None = None
    try:
        target = f"127.0.0.1:{free_port()}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HPCBATCH_METRICS_LISTEN", target)  # the head inherits our environment
            head = start_head(tmp, cluster, heartbeat=3.0, lost=600.0)
        rules = MONITORING / "prometheus" / "hpcbatch-alerts.yml"
        prometheus = Prometheus(tmp / "prometheus", target, rules).start()
        poll(prometheus.ready, 20, f"Prometheus ready (log: {prometheus.log})")
        poll(
            lambda: prometheus.scalar('up{job="hpcbatch"}') == 1.0,
            20,
            f"Prometheus' first sample of the head (log: {prometheus.log})",
        )
        yield Stack(cluster, head, prometheus, tmp)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if head is not None:
            head.cleanup()
        for host in cluster.hosts:
            cluster.link_up(host.name)
            stop_agent_and_jobs(Path(host.agent_state_dir))
        cluster.down()


def submit(
    head: HeadProcess,
    command: list[str],
    overrides: Mapping[str, object] | None = None,
    **fields: object,
) -> str:
    container = {"command": command, **(overrides or {})}
    return str(
        head.batch().submit_job(
            jobName="p",
            jobQueue="cluster",
            jobDefinition="default",
            containerOverrides=container,
            **fields,
        )["jobId"]
    )


def test_cpu_used_grows_for_a_busy_job_and_not_for_a_sleeping_one(stack: Stack) -> None:
    """Fresh agents: each node's counter holds only this test's jobs' CPU time."""
    head, prometheus = stack.head, stack.prometheus
    hosts = {h.name for h in stack.cluster.hosts}
    poll(
        lambda: set(prometheus.by_label("hpcbatch_node_cpu_used_seconds_total", "node")) == hosts,
        20,
        "every node's CPU counter in Prometheus before the jobs",
    )
    whole = {"resourceRequirements": WHOLE_HOST}
    busy = submit(head, ["python3", "-c", SPIN], overrides=whole)
    asleep = submit(head, ["sleep", "2"], overrides=whole)
    for job_id in (busy, asleep):
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    busy_node = head.raw_describe(busy)["hpcbatch"]["node"]
    asleep_node = head.raw_describe(asleep)["hpcbatch"]["node"]
    assert busy_node != asleep_node

    def counted() -> dict[str, float] | None:
        used = prometheus.by_label("hpcbatch_node_cpu_used_seconds_total", "node")
        settled = used.get(busy_node, 0.0) >= 1.5 and asleep_node in used
        return used if settled else None

    used = poll(counted, 20, f"{busy_node}'s busy CPU seconds in Prometheus")
    assert used[busy_node] < 3.5, used
    assert used[asleep_node] < 0.3, used
    # increase() needs a sample on each side of the growth inside its window. Three CI runs
    # read 0.0 for every node for 30 s: the window's first sample was already past the growth,
    # because the jobs had run before Prometheus' first scrape (poll() returned the connection
    # error of a Prometheus not yet listening, which is truthy, as if the waits had passed).
    # A timeout still prints the raw samples and the scrape health that the window held.
    growth = "increase(hpcbatch_node_cpu_used_seconds_total[5m])"

    def increased() -> dict[str, float] | None:
        grew = seen[0] = prometheus.by_label(growth, "node")
        return grew if {busy_node, asleep_node} <= set(grew) and grew[busy_node] > 1.0 else None

    seen: list[dict[str, float]] = [{}]
    try:
        grew = poll(increased, 30, f"{busy_node}'s increase() over 5 minutes to pass 1 CPU second")
    except AssertionError as timed_out:
        held = {
            e: changes(prometheus.query(e))
            for e in (f'hpcbatch_node_cpu_used_seconds_total{{node="{busy_node}"}}[5m]', "up[5m]")
        }
        raise AssertionError(
            f"{timed_out}; increase() read {seen[0]}; at {time.time():.1f} the window held "
            f"(first sample, then each change, then the last, with their count) {held}"
        ) from timed_out
    assert grew[asleep_node] < 0.3, grew


def changes(matrix: list[dict[str, Any]]) -> tuple[int, list[tuple[float, str]]]:
    """A range query's one series, short: its sample count and the samples where it changed."""
    if not matrix:
        return 0, []
    values = [(float(t), v) for t, v in matrix[0]["values"]]
    kept = [s for i, s in enumerate(values) if i == 0 or s[1] != values[i - 1][1]]
    return len(values), kept + values[-1:]


def queue_depth(prometheus: Prometheus) -> float:
    return prometheus.scalar('sum(hpcbatch_queue_jobs{queue="cluster"})') or 0.0


def test_queue_depth_rises_and_falls_and_allocations_match_the_nodes(stack: Stack) -> None:
    head, prometheus = stack.head, stack.prometheus
    gate = stack.tmp / "array-gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    poll(lambda: queue_depth(prometheus) == 0, 10, "the queue empty before the array")
    submit(head, ["sh", "-c", script], arrayProperties={"size": CHILDREN})

    def settled() -> dict[str, float] | None:
        by_status = prometheus.by_label('hpcbatch_queue_jobs{queue="cluster"}', "status")
        wanted = by_status.get("RUNNING") == 8 and by_status.get("RUNNABLE") == CHILDREN - 8
        return by_status if wanted else None

    poll(settled, 30, "8 children RUNNING and 4 RUNNABLE in Prometheus")
    assert queue_depth(prometheus) >= CHILDREN
    waiting = 'sum(hpcbatch_queue_runnable_jobs_by_reason{queue="cluster",reason="capacity"})'
    assert prometheus.scalar(waiting) == CHILDREN - 8

    # While the children block on the gate nothing moves: one reading of the API is "the moment".
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    reported = {n["name"]: float(n["allocatedVcpus"]) for n in nodes}
    assert sum(reported.values()) == 8, reported

    def agreed() -> dict[str, float] | None:
        seen = prometheus.by_label("hpcbatch_node_vcpus_allocated", "node")
        return seen if seen == reported else None

    poll(agreed, 15, f"hpcbatch_node_vcpus_allocated to equal the API's {reported}")
    assert prometheus.scalar('sum(hpcbatch_ce_vcpus_allocated{ce="cluster"})') == 8
    later = {n["name"]: float(n["allocatedVcpus"]) for n in head.get("/hpcbatch/v1/nodes")["nodes"]}
    assert later == reported

    gate.touch()
    poll(lambda: queue_depth(prometheus) == 0, 30, "the queue to empty in Prometheus")
    assert prometheus.scalar('sum(hpcbatch_ce_vcpus_allocated{ce="cluster"})') == 0
    finished = prometheus.scalar('sum(hpcbatch_jobs_finished_total{queue="cluster"})')
    assert finished is not None and finished >= CHILDREN


def test_a_node_cut_off_turns_down(stack: Stack) -> None:
    node = stack.cluster.hosts[-1].name
    down = 'sum(hpcbatch_nodes{ce="cluster",state="DOWN"})'
    poll(lambda: stack.prometheus.scalar(down) == 0, 10, "no node DOWN before the cut")
    stack.cluster.link_down(node)  # left down: the expressions below see a DOWN node
    poll(lambda: stack.prometheus.scalar(down) == 1, 30, f"{node} DOWN in Prometheus")
    [online] = stack.prometheus.query('hpcbatch_nodes{ce="cluster",state="ONLINE"}')
    assert float(online["value"][1]) == 3


def shipped_panel_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((MONITORING / "grafana" / "dashboards").glob("*.json")):
        document = json.loads(path.read_text())
        found += [
            (f"{path.name}: {title}", concrete(e)) for title, e in panel_expressions(document)
        ]
    assert found
    return found


def test_every_panel_and_alert_expression_evaluates(stack: Stack) -> None:
    prometheus = stack.prometheus
    rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    alerts = {r["name"]: r["query"] for group in rules for r in group["rules"]}
    assert set(alerts) == ALERTS
    empty = []
    for title, expression in shipped_panel_expressions():
        if not prometheus.query(expression):
            empty.append(f"{title}: {expression}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    silent = []
    for name, expression in alerts.items():
        prometheus.query(expression)  # parses and evaluates; most are quiet here by design
        for series in sorted(series_named(expression)):
            if not prometheus.query(f"count({series})"):
                silent.append(f"{name}: {series}")
    assert not silent, "alerts reading series without data:\n" + "\n".join(silent)
    # The node cut off above fires the node-down condition (its `for:` keeps it pending).
    assert prometheus.query(alerts["HpcbatchNodeDown"])
