"""A simulated node that floods the head with messages is disconnected with a reason, not allowed
to stall the loop (issue 15, "Bad input and faults"): a real head process and a fleet of
simulated agents (bench/simcluster.py), one of which sends heartbeats in a tight loop."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.simcluster import SimCluster
from tests.head.headproc import wait_for

# Low limits so the test is quick; the honest nodes send ~4 messages a second each.
CONFIG = (
    "agent_message_rate = 200\nagent_message_burst = 2000\n"
    "heartbeat_timeout_s = 5\nnode_lost_timeout_s = 60\n"
)
REASON = re.compile(
    r"agent sent ([\d,]+) messages in [\d.,]+ s \(limit: 200/s, bursts of 2,000\): disconnected"
)
RECONNECT_S = 5.0  # the supervisor's longest backoff (MAX_BACKOFF_S)
FLOODER, HONEST = "sim-1", {"sim-2", "sim-3"}


@pytest.fixture
def cluster() -> Iterator[SimCluster]:
    with SimCluster(nodes=3, vcpus=2, run_ms=100, heartbeat_s=0.3, head_config=CONFIG) as sim:
        yield sim


def call(cluster: SimCluster, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{cluster.endpoint}/v1/{operation}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def nodes(cluster: SimCluster) -> dict[str, dict[str, Any]]:
    found = httpx.get(f"{cluster.endpoint}/hpcbatch/v1/nodes", timeout=10).json()["nodes"]
    return {n["name"]: n for n in found if n["computeEnvironment"] == "sim"}


def cut_after(cluster: SimCluster, after_ms: int) -> dict[str, dict[str, Any]] | None:
    """The nodes, once the flooder is DOWN for flooding, from a cut later than ``after_ms``."""
    found = nodes(cluster)
    node = found[FLOODER]
    flooded = node["state"] == "DOWN" and REASON.fullmatch(node["stateReason"] or "")
    return found if flooded and node["stateChangedAt"] > after_ms else None


def test_a_flooding_node_is_cut_off_with_a_reason_while_the_others_run_jobs(
    cluster: SimCluster,
) -> None:
    cluster.flood({FLOODER})
    found = wait_for(lambda: cut_after(cluster, 0), 20, f"{FLOODER} DOWN for flooding")
    first_cut = found[FLOODER]["stateChangedAt"]
    match = REASON.fullmatch(found[FLOODER]["stateReason"])
    assert match is not None and int(match[1].replace(",", "")) > 2000
    assert {found[name]["state"] for name in HONEST} == {"ONLINE"}

    # Submitted while it is DOWN: the other nodes run them (2 nodes x 2 vCPUs: all at once).
    job = {"jobQueue": "sim", "jobDefinition": "default"}
    ids = [call(cluster, "submitjob", {**job, "jobName": f"j{i}"})["jobId"] for i in range(4)]

    def done() -> list[dict[str, Any]] | None:
        jobs = call(cluster, "describejobs", {"jobs": ids})["jobs"]
        return jobs if all(j["status"] == "SUCCEEDED" for j in jobs) else None

    jobs = wait_for(done, 20, "the jobs to succeed")
    ran_on = {j["container"]["containerInstanceArn"].rsplit("/", 1)[1] for j in jobs}
    assert ran_on <= HONEST

    # It floods again once reconnected, and is cut again — after the backoff, not in a loop.
    found = wait_for(lambda: cut_after(cluster, first_cut), 30, f"{FLOODER} cut again")
    assert found[FLOODER]["stateChangedAt"] - first_cut >= RECONNECT_S * 1000
    assert {found[name]["state"] for name in HONEST} == {"ONLINE"}
    log = (cluster.dir / "head.out").read_text()
    assert 2 <= log.count(f"node {FLOODER}: agent sent ") <= 3, log[-3000:]

    # API reads answer all along, promptly.
    started = time.monotonic()
    for _ in range(20):
        assert FLOODER in nodes(cluster)
        call(cluster, "describejobs", {"jobs": ids})
    assert time.monotonic() - started < 10

    # Once it stops flooding, it is back for good.
    cluster.flood(set())
    wait_for(
        lambda: {n["state"] for n in nodes(cluster).values()} == {"ONLINE"},
        30,
        "every node ONLINE",
    )
