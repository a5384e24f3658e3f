"""The simulated-node harness (bench/simcluster.py) against a real head process: the head runs
jobs on simulated agents as on real ones, each attempt runs once, and a fleet that goes away
is noticed within the heartbeat timeout and reconciled when it comes back (issue 15)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.simcluster import SimCluster
from tests.head.headproc import wait_for

NODES = 8
CONFIG = "heartbeat_timeout_s = 2\nnode_lost_timeout_s = 60\n"


@pytest.fixture(scope="module")
def cluster() -> Iterator[SimCluster]:
    with SimCluster(
        nodes=NODES, vcpus=4, run_ms=150, spread_ms=100, heartbeat_s=0.3, head_config=CONFIG
    ) as sim:
        yield sim


def call(cluster: SimCluster, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{cluster.endpoint}/v1/{operation}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def nodes(cluster: SimCluster) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(
        f"{cluster.endpoint}/hpcbatch/v1/nodes", timeout=30
    ).json()["nodes"]
    return [n for n in found if n["computeEnvironment"] == "sim"]


def test_an_array_and_single_jobs_run_once_each_on_simulated_nodes(cluster: SimCluster) -> None:
    job = {"jobQueue": "sim", "jobDefinition": "default"}
    array = call(cluster, "submitjob", {**job, "jobName": "a", "arrayProperties": {"size": 300}})
    singles = [call(cluster, "submitjob", {**job, "jobName": f"s{i}"}) for i in range(20)]
    ids = [array["jobId"]] + [s["jobId"] for s in singles]

    def done() -> list[dict[str, Any]] | None:
        found = call(cluster, "describejobs", {"jobs": ids})["jobs"]
        return found if all(j["status"] == "SUCCEEDED" for j in found) else None

    found = wait_for(done, 60, "every job to succeed")
    assert found[0]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 300
    # the simulated nodes ran them, spread over several (4 vCPUs each, 32 at once)
    ran_on = {
        j["container"]["containerInstanceArn"].rsplit("/", 1)[1]
        for j in call(cluster, "describejobs", {"jobs": [f"{ids[0]}:{i}" for i in range(100)]})[
            "jobs"
        ]
    }
    assert len(ran_on) > 1 and ran_on <= {f"sim-{i + 1}" for i in range(NODES)}
    expected = {f"{ids[0]}:{i}/1" for i in range(300)} | {f"{i}/1" for i in ids[1:]}
    launched = wait_for(
        lambda: cluster.launched() if cluster.launched().keys() >= expected else None,
        10,
        "the fleet's log",
    )
    assert launched.keys() == expected  # each job once, one attempt each
    assert set(launched.values()) == {1}
    assert not cluster.relaunch_requests()


def test_silent_nodes_are_down_within_the_heartbeat_timeout_and_come_back(
    cluster: SimCluster,
) -> None:
    """A hung fleet (SIGSTOP: links open, nothing said) is noticed by the heartbeat timeout
    alone; once it answers again its nodes reconnect and run jobs."""
    assert {n["state"] for n in nodes(cluster)} == {"ONLINE"}
    cluster.pause_fleet()
    silent = time.monotonic()

    def all_down() -> list[dict[str, Any]] | None:
        found = nodes(cluster)
        return found if {n["state"] for n in found} == {"DOWN"} else None

    try:
        down = wait_for(all_down, 15, "every node DOWN")
        waited = time.monotonic() - silent
    finally:
        cluster.resume_fleet()
    # the 2 s timeout, checked every 0.5 s; the reason says it was the heartbeat
    assert waited < 2 + 2, waited
    assert {n["stateReason"] for n in down} == {"no heartbeat for 2 s"}
    wait_for(
        lambda: {n["state"] for n in nodes(cluster)} == {"ONLINE"}, 30, "every node back ONLINE"
    )
    job = call(
        cluster, "submitjob", {"jobQueue": "sim", "jobDefinition": "default", "jobName": "x"}
    )
    wait_for(
        lambda: (
            call(cluster, "describejobs", {"jobs": [job["jobId"]]})["jobs"][0]["status"]
            == "SUCCEEDED"
        ),
        30,
        "a job after the fleet's return",
    )


def test_a_fleet_that_goes_away_leaves_its_nodes_down_until_it_returns(cluster: SimCluster) -> None:
    cluster.stop_fleet()
    wait_for(lambda: {n["state"] for n in nodes(cluster)} == {"DOWN"}, 10, "every node DOWN")
    cluster.start_fleet()
    wait_for(
        lambda: {n["state"] for n in nodes(cluster)} == {"ONLINE"}, 30, "every node back ONLINE"
    )
