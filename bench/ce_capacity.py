"""Compute environments from the API (issue 14 item 1): what their decisions and starts cost.

- ``decision``: one ``plan_pool`` + ``waiting_vcpus`` for a CE of a 1,000-host pool holding 500
  hosts, with 100,000 RUNNABLE jobs queued: the head's reconcile pays this per pool CE every
  0.5 s, so it must stay far under a millisecond-scale budget and not grow with the queue;
  three cases: hosts' sizes unknown, known, and known with no job any host could hold
  (``pool_fit``: those jobs are read and skipped, so that case does grow with the queue).
- ``local``: through a real head, CreateComputeEnvironment LOCAL -> VALID (its agent started and
  connected), the AWS sequence to a SUCCEEDED job, and maxvCpus 0 -> the node released.

Prints JSON lines. ``python -m bench.ce_capacity [decision|local]`` (default both).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx

from hpcbatch.core import events as ev
from hpcbatch.core.host_pools import Demand, PoolHost, plan_pool, waiting_vcpus
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.state import State
from hpcbatch.core.step import step


def bench_decision(
    hosts: int = 1000, held: int = 500, jobs: int = 100_000, case: str = "unsized"
) -> dict[str, Any]:
    """``case``: ``unsized`` (no host size known: every job counts, as before sizes were
    known), ``sized`` (every host's size known, every job fits one: each job is judged, then
    counted), ``hopeless`` (sized, and no job fits any host: every job is judged and skipped,
    the whole queue read)."""
    state = State()
    vcpus = 64 if case == "hopeless" else 1
    echo = {"computeResources": {"type": "SSH", "instanceTypes": ["p"]}}
    step(
        state,
        ev.CreateComputeEnvironment(
            cause="b",
            now=1,
            name="ce",
            ce_type="MANAGED",
            kind="SSH",
            echo=echo,
            max_vcpus=4 * hosts,
        ),
    )
    step(state, ev.CreateJobQueue(cause="b", now=1, name="q", priority=1, ce_order=((1, "ce"),)))
    step(
        state,
        ev.RegisterJobDefinition(
            cause="b", now=1, name="d", def_type="container", spec=JobSpec(("true",))
        ),
    )
    for i in range(jobs):
        step(
            state,
            ev.SubmitJob(
                cause="b",
                now=2,
                job_id=f"j{i}",
                name="j",
                queue="q",
                definition="d",
                cpu_milli=vcpus * 1000,
            ),
        )
    size = (None, None, None) if case == "unsized" else (4, 16384, 0)
    pool = {"p": tuple(PoolHost(f"h{i}", "p", *size) for i in range(hosts))}
    owners = {f"h{i}": "ce" for i in range(held)}
    for i in range(held):
        step(
            state,
            ev.NodeJoined(cause="b", now=3, node=f"h{i}", ce="ce", capacity=Resources(4000, 16384)),
        )
    ce = state.ces["ce"]
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        waiting = waiting_vcpus(state, ce, ce.max_vcpus or 0, pool)
        plan = plan_pool(ce, pool, owners, state.nodes, {}, Demand(waiting))
    seconds = (time.perf_counter() - start) / rounds
    return {
        "bench": "ce_pool_decision",
        "case": case,
        "pool_hosts": hosts,
        "held": held,
        "runnable_jobs": jobs,
        "waiting_vcpus": waiting,
        "take": list(plan.take),
        "ms_per_decision": round(seconds * 1000, 3),
    }


def _wait(client: httpx.Client, name: str, status: str, reason: str | None = None) -> None:
    while True:
        doc = client.post(
            "/v1/describecomputeenvironments", json={"computeEnvironments": [name]}
        ).json()
        ce = doc["computeEnvironments"][0]
        if ce["status"] == status and (reason is None or ce["statusReason"] == reason):
            return
        time.sleep(0.01)


def bench_local() -> dict[str, Any]:
    from bench.headproc import BenchHead

    with (
        BenchHead(nodes=1, vcpus=1, memory_mib=1024) as head,
        httpx.Client(base_url=head.endpoint, timeout=30) as client,
    ):
        t0 = time.perf_counter()
        client.post(
            "/v1/createcomputeenvironment",
            json={
                "computeEnvironmentName": "mine",
                "type": "MANAGED",
                "computeResources": {"type": "LOCAL", "maxvCpus": 1},
            },
        ).raise_for_status()
        answered = time.perf_counter() - t0
        _wait(client, "mine", "VALID")
        valid = time.perf_counter() - t0
        client.post(
            "/v1/createjobqueue",
            json={
                "jobQueueName": "q",
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "mine"}],
            },
        )
        t1 = time.perf_counter()
        job = client.post(
            "/v1/submitjob", json={"jobName": "j", "jobQueue": "q", "jobDefinition": "default"}
        ).json()["jobId"]
        while (
            client.post("/v1/describejobs", json={"jobs": [job]}).json()["jobs"][0]["status"]
            != "SUCCEEDED"
        ):
            time.sleep(0.01)
        succeeded = time.perf_counter() - t1
        t2 = time.perf_counter()
        client.post(
            "/v1/updatecomputeenvironment",
            json={"computeEnvironment": "mine", "computeResources": {"maxvCpus": 0}},
        )
        _wait(client, "mine", "VALID", "no node: maxvCpus is 0")
        released = time.perf_counter() - t2
    return {
        "bench": "ce_local_api",
        "create_answered_s": round(answered, 3),
        "create_to_valid_s": round(valid, 3),
        "submit_to_succeeded_s": round(succeeded, 3),
        "max_0_to_released_s": round(released, 3),
    }


if __name__ == "__main__":
    which = sys.argv[1:] or ["decision", "local"]
    if "decision" in which:
        for case in ("unsized", "sized", "hopeless"):
            print(json.dumps(bench_decision(case=case)), flush=True)
    if "local" in which:
        print(json.dumps(bench_local()), flush=True)
