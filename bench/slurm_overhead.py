"""Issue 16's speed targets: hpcbatch in front of a real Slurm 22.05 against Slurm alone, side by
side in one run, on the 4-host dev cluster of tests/slurm (2 CPUs a host, no accounting).

One JSON line per scenario, each the wall time from the first submission to the last end:
- array: a ``--tasks``-task array of ``true``, as ``sbatch --array=0-N`` and through hpcbatch (a
  SLURM compute environment, SubmitJob with arrayProperties): hpcbatch's overhead in % of
  Slurm's own time (target: under 10 %)
- singles: ``--tasks`` separate jobs, as that many ``sbatch`` calls in a row and as that many
  SubmitJob calls (target: hpcbatch at least as fast)

    sudo .venv/bin/python -m bench.slurm_overhead [--tasks 1000] [--only array|singles]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from hpcbatch_agent import slurmcli

from hpcbatch.devcluster import DevCluster
from tests.head.headproc import HeadProcess, free_port
from tests.slurm.slurmcluster import PARTITION, SlurmCluster

POLL_S = 0.2


def wait(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {timeout_s} s")
        time.sleep(POLL_S)


def slurm_idle(run: slurmcli.Run) -> bool:
    return not slurmcli.squeue(run)


def plain_array(run: slurmcli.Run, tasks: int) -> float:
    start = time.monotonic()
    options = ["--no-requeue", "-o", "/dev/null", f"--array=0-{tasks - 1}", "-J", "plain"]
    slurmcli.sbatch(run, "#!/bin/sh\ntrue\n", options)
    wait(lambda: slurm_idle(run), 3600, "the plain array")
    return time.monotonic() - start


def plain_singles(run: slurmcli.Run, tasks: int) -> float:
    start = time.monotonic()
    for _ in range(tasks):
        slurmcli.sbatch(run, "#!/bin/sh\ntrue\n", ["--no-requeue", "-o", "/dev/null", "-J", "p"])
    wait(lambda: slurm_idle(run), 3600, "the plain jobs")
    return time.monotonic() - start


def post(client: httpx.Client, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/{action}", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"{action}: HTTP {response.status_code}: {response.text}")
    return dict(response.json())


def setup_head(client: httpx.Client, tasks: int) -> None:
    post(
        client,
        "createcomputeenvironment",
        {
            "computeEnvironmentName": "hpc",
            "type": "MANAGED",
            "computeResources": {"type": "SLURM", "maxvCpus": tasks, "instanceTypes": [PARTITION]},
        },
    )
    post(
        client,
        "createjobqueue",
        {
            "jobQueueName": "hpc-q",
            "priority": 1,
            "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "hpc"}],
        },
    )
    post(
        client,
        "registerjobdefinition",
        {
            "jobDefinitionName": "true",
            "type": "container",
            "containerProperties": {
                "command": ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "16"},
                ],
            },
        },
    )

    def valid() -> bool:
        found = post(client, "describecomputeenvironments", {"computeEnvironments": ["hpc"]})
        return bool(found["computeEnvironments"][0]["status"] == "VALID")

    wait(valid, 60, "the SLURM compute environment")


def finished(client: httpx.Client, job_ids: list[str]) -> bool:
    for start in range(0, len(job_ids), 100):
        jobs = post(client, "describejobs", {"jobs": job_ids[start : start + 100]})["jobs"]
        if any(job["status"] not in ("SUCCEEDED", "FAILED") for job in jobs):
            return False
    return True


def through_hpcbatch(client: httpx.Client, tasks: int, array: bool) -> tuple[float, int]:
    """Wall seconds, and how many of the jobs failed."""
    body = {"jobName": "b", "jobQueue": "hpc-q", "jobDefinition": "true"}
    start = time.monotonic()
    if array:
        job_ids = [post(client, "submitjob", {**body, "arrayProperties": {"size": tasks}})["jobId"]]
    else:
        job_ids = [post(client, "submitjob", body)["jobId"] for _ in range(tasks)]
    wait(lambda: finished(client, job_ids), 3600, "hpcbatch's jobs")
    took = time.monotonic() - start
    failed = 0
    for start_at in range(0, len(job_ids), 100):
        jobs = post(client, "describejobs", {"jobs": job_ids[start_at : start_at + 100]})["jobs"]
        failed += sum(job["status"] == "FAILED" for job in jobs)
    return took, failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--only", choices=("array", "singles"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hb-slurm-bench-") as tmp:
        cluster = DevCluster.up(Path(tmp) / "cluster", hosts=4)
        slurm = None
        head = None
        try:
            slurm = SlurmCluster.start(cluster, Path(tmp) / "slurm", free_port(), free_port())
            run = slurmcli.local(slurm.env)
            head = HeadProcess(Path(tmp) / "head", nodes=1, vcpus=1, memory=1024, env=slurm.env)
            head.start()
            with httpx.Client(base_url=head.endpoint, timeout=60) as client:
                setup_head(client, args.tasks)
                for scenario in ("array", "singles"):
                    if args.only not in (None, scenario):
                        continue
                    plain = (plain_array if scenario == "array" else plain_singles)(run, args.tasks)
                    ours, failed = through_hpcbatch(client, args.tasks, scenario == "array")
                    print(
                        json.dumps(
                            {
                                "bench": f"slurm_{scenario}",
                                "tasks": args.tasks,
                                "slurm_s": round(plain, 2),
                                "hpcbatch_s": round(ours, 2),
                                "overhead_pct": round(100 * (ours - plain) / plain, 1),
                                "failed": failed,
                            }
                        ),
                        flush=True,
                    )
        finally:
            if head is not None:
                head.cleanup()
            if slurm is not None:
                slurm.stop()
            cluster.down()


if __name__ == "__main__":
    main()
