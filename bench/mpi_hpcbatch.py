"""Issue 8's speed target: a 4-node, 4-rank mpi4py hello + allreduce (bench/mpi_hello.py) from
SubmitJob to SUCCEEDED through hpcbatch (a real head, an SSH compute environment over a 4-host
dev cluster, ``mpirun -n 4`` with no flag on the main node, ranks started through the agents'
launch ports), against plain ``mpirun`` over ssh on the same hosts (bench/mpi_plain.py's way),
runs interleaved, Open MPI and MPICH.

One JSON line per (route, MPI): median/min/max of --runs. Target: hpcbatch at most 1.2x plain,
and below Slurm 22.05's ~1.0 s (sbatch + srun with PMIx, ../shared/reference/testbed.md).

    sudo .venv/bin/python -m bench.mpi_hpcbatch [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.headproc import BenchHead
from bench.mpi_plain import HELLO, on_host
from bench.ssh_cluster import ce_config
from hpcbatch.devcluster import DevCluster
from hpcbatch.mpi.hostfile import HostSlots, hostfiles
from hpcbatch.mpi.mpirun import (
    MPI4PY_MPICH_NAME,
    MPICH_LIBRARY,
    OPENMPI_ROOT,
    SshLauncher,
    hydra_argv,
    mpi4py_on_mpich,
    openmpi_argv,
)
from hpcbatch.transport.local import stop_local_agent

LAUNCHERS = {"openmpi": "/usr/bin/mpirun.openmpi", "mpich": "/usr/bin/mpiexec.hydra"}
RANKS = 4


def plain_run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0 or done.stdout.replace("}{", "}\n{").count('"rank"') != RANKS:
        sys.exit(f"plain {argv} failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
    return seconds


def hpcbatch_run(client: httpx.Client, mpi: str, env: dict[str, str], split: bool = False) -> float:
    environment = [{"name": k, "value": v} for k, v in env.items()]
    command = [LAUNCHERS[mpi], "-n", str(RANKS), sys.executable, str(HELLO), str(RANKS)]
    hold = {"command": ["sleep", "infinity"], "environment": environment}
    body = {
        "jobName": "mpi",
        "jobQueue": "cluster",
        "jobDefinition": "default-multinode",
        "nodeOverrides": {
            "numNodes": RANKS,
            "nodePropertyOverrides": [
                {"targetNodes": "0", "containerOverrides": {**hold, "command": command}},
                {"targetNodes": "1:", "containerOverrides": hold},
            ],
        },
    }
    start = time.perf_counter()
    job_id = client.post("/v1/submitjob", json=body).raise_for_status().json()["jobId"]
    deadline = start + 60
    while time.perf_counter() < deadline:
        job = client.post("/v1/describejobs", json={"jobs": [job_id]}).json()["jobs"][0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            seconds = time.perf_counter() - start
            if job["status"] != "SUCCEEDED":
                sys.exit(f"hpcbatch {mpi} job {job_id} failed: {job.get('statusReason')}")
            if split:
                print(json.dumps(split_row(client, mpi, job, seconds)), flush=True)
            return seconds
        time.sleep(0.002)  # poll; the head answers DescribeJobs in well under a millisecond
    sys.exit(f"hpcbatch {mpi} job {job_id} did not end in 60 s")


def split_row(
    client: httpx.Client, mpi: str, parent: dict[str, object], seconds: float
) -> dict[str, object]:
    """Where one run's time went, from the head's own ms timestamps, relative to createdAt:
    each node's startedAt and stoppedAt, and the parent's stoppedAt."""
    created = int(parent["createdAt"])  # type: ignore[call-overload]
    ids = [f"{parent['jobId']}#{i}" for i in range(RANKS)]
    nodes = client.post("/v1/describejobs", json={"jobs": ids}).json()["jobs"]
    row: dict[str, object] = {"bench": "mpi_split_ms", "mpi": mpi, "total_s": round(seconds, 3)}
    for node in sorted(nodes, key=lambda n: str(n["jobId"])):
        index = str(node["jobId"]).rsplit("#", 1)[1]
        row[f"n{index}"] = [
            int(node.get(k) or created) - created for k in ("startedAt", "stoppedAt")
        ]
    row["parent_stopped"] = int(parent["stoppedAt"]) - created  # type: ignore[call-overload]
    return row


def plain_cases(cluster: DevCluster, work: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    for name, text in hostfiles([HostSlots(h.address, 1) for h in cluster.hosts]).items():
        (work / name).write_text(text)
    program = [sys.executable, str(HELLO), str(RANKS)]
    ssh = SshLauncher(str(cluster.key_path), str(cluster.known_hosts_path))
    main = cluster.hosts[0]
    ompi = openmpi_argv(LAUNCHERS["openmpi"], str(work / "hostfile"), RANKS, program, ssh)
    hydra, hydra_env = hydra_argv(
        LAUNCHERS["mpich"], str(work / "hostfile.mpich"), RANKS, program, ssh, main.address
    )
    return {
        "openmpi": (on_host(main) + ompi, OPENMPI_ROOT),
        "mpich": (on_host(main) + hydra, hydra_env | mpi4py_on_mpich(str(work))),
    }


def report(route: str, mpi: str, seconds: list[float]) -> dict[str, object]:
    row: dict[str, object] = {"bench": "mpi_submit_to_succeeded", "route": route, "mpi": mpi}
    row |= {"hosts": RANKS, "ranks": RANKS, "runs": len(seconds)}
    row |= {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3)}
    row |= {"max_s": round(max(seconds), 3)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--split", action="store_true", help="print each run's timestamps")
    parser.add_argument("--mpi", choices=sorted(LAUNCHERS), action="append")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hpcbatch-bench-mpi-"))
    cluster = DevCluster.up(base / "cluster", hosts=RANKS)
    try:
        work = base / "work"
        work.mkdir()
        (work / MPI4PY_MPICH_NAME).symlink_to(Path("/usr/lib/x86_64-linux-gnu") / MPICH_LIBRARY)
        plain = plain_cases(cluster, work)
        with BenchHead(nodes=0, extra_config=ce_config(cluster, vcpus=1)) as head:
            client = httpx.Client(base_url=head.endpoint, timeout=30)
            order = [{"order": 1, "computeEnvironment": "cluster"}]
            client.post("/v1/createjobqueue", json={"jobQueueName": "cluster", "priority": 1,
                        "computeEnvironmentOrder": order}).raise_for_status()  # fmt: skip
            wait_online(client, {h.name for h in cluster.hosts})
            for mpi, (argv, env) in plain.items():
                if args.mpi and mpi not in args.mpi:
                    continue
                batch_env = mpi4py_on_mpich(str(work)) if mpi == "mpich" else {}
                hpcbatch_run(client, mpi, batch_env)  # warm: first agent launch, page cache
                times: dict[str, list[float]] = {"plain": [], "hpcbatch": []}
                for _ in range(args.runs):  # interleaved
                    times["plain"].append(plain_run(argv, env))
                    times["hpcbatch"].append(hpcbatch_run(client, mpi, batch_env, args.split))
                rows = {route: report(route, mpi, s) for route, s in times.items()}
                ratio = float(rows["hpcbatch"]["median_s"]) / float(rows["plain"]["median_s"])  # type: ignore[arg-type]
                print(json.dumps({"bench": "mpi_ratio", "mpi": mpi, "hpcbatch_over_plain":
                                  round(ratio, 2)}), flush=True)  # fmt: skip
    finally:
        for host in cluster.hosts:
            stop_local_agent(Path(host.agent_state_dir), kill_jobs=True)
        cluster.down()


def wait_online(client: httpx.Client, names: set[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        nodes = client.get("/hpcbatch/v1/nodes").json()["nodes"]
        if names <= {n["name"] for n in nodes if n["state"] == "ONLINE"}:
            return
        time.sleep(0.1)
    sys.exit("the hosts did not come ONLINE")


if __name__ == "__main__":
    main()
