"""Issue 3's targets on a 4-host dev cluster (namespaces + real sshd), trivial command `true`.

One JSON line per scenario:
- ssh_submit_to_running: one job at a time on an idle cluster, startedAt - createdAt
- ssh_array: a 10,000-child array from submit to the parent SUCCEEDED
- with it, the head's CPU per dispatched job, the bytes on the wire per job (all veths) and
  the CPU per job of every role (head, agents, attach relays, sshd, jobs, other, idle)
- ssh_array_runs: with --repeat N, the N arrays' rates and their median
- machine_gauge (before and after the arrays): the CPU of one bare spawn of `true`, how fast
  the machine is at the time (this VM drifts by ~40 %)

    sudo .venv/bin/python -m bench.ssh_cluster [--array 10000] [--vcpus 16] [--repeat 5]
        [--disk-mib 2048 (0: hosts share the machine's filesystem)]
        [--agent-durability process|power]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.head_throughput import (
    JOB,
    add_repeat_option,
    bench_latency,
    machine_gauge,
    report_runs,
    wait_done,
)
from bench.headproc import BenchHead
from hpcbatch.devcluster import DevCluster


def ce_config(cluster: DevCluster, vcpus: int, durability: str = "process") -> str:
    lines = ["[[compute_environments]]", 'name = "cluster"', 'kind = "SSH"']
    for h in cluster.hosts:
        lines += [
            "[[compute_environments.hosts]]",
            f'name = "{h.name}"',
            f'address = "{h.address}"',
            f'key = "{h.key_path}"',
            f'known_hosts = "{h.known_hosts_path}"',
            f'state_dir = "{h.agent_state_dir}"',
            'python = "/usr/bin/python3"',
            f"vcpus = {vcpus}",
            f'agent_durability = "{durability}"',
        ]
    return "\n".join(lines) + "\n"


def wire_bytes(cluster: DevCluster) -> int:
    links = json.loads(
        subprocess.run(
            ["ip", "-j", "-s", "link"], capture_output=True, text=True, check=True
        ).stdout
    )
    names = {h.veth for h in cluster.hosts}
    return sum(
        link["stats64"]["rx"]["bytes"] + link["stats64"]["tx"]["bytes"]
        for link in links
        if link["ifname"] in names
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def cpu_by_role(head_pid: int) -> dict[str, float]:
    """CPU seconds so far of every process by role: head, agent (keepers included), attach
    (the relays sshd runs), sshd, and jobs (what the agents have reaped), plus idle."""
    roles = dict.fromkeys(("head", "agent", "attach", "sshd", "jobs", "other"), 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = (int(fields[11]) + int(fields[12])) / 100
        if int(entry.name) == head_pid:
            role = "head"
        elif b"hpcbatch-agent-" in argv or b"hpcbatch_agent" in argv:
            role = "attach" if b"attach" in argv else "agent"
            if role == "agent":
                roles["jobs"] += (int(fields[13]) + int(fields[14])) / 100
        elif b"sshd" in argv:
            role = "sshd"
        else:
            role = "other"
        roles[role] += own
    idle = Path("/proc/stat").read_text().split("\n", 1)[0].split()[4]
    roles["idle"] = int(idle) / 100
    return roles


def run_array(
    client: httpx.Client, cluster: DevCluster, head_pid: int, job: dict, size: int
) -> float:
    """One array from submit to SUCCEEDED, printed with its costs; its children per second."""
    roles0 = cpu_by_role(head_pid)
    cpu0, bytes0, start = cpu_seconds(head_pid), wire_bytes(cluster), time.perf_counter()
    body = {**job, "jobName": "array", "arrayProperties": {"size": size}}
    parent = client.post("/v1/submitjob", json=body).json()["jobId"]
    done = wait_done(client, parent)
    seconds = time.perf_counter() - start
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    roles1 = cpu_by_role(head_pid)
    rate = round(size / seconds, 1)
    print(
        json.dumps(
            {
                "bench": "ssh_array",
                "children": size,
                "hosts": len(cluster.hosts),
                "seconds": round(seconds, 2),
                "children_per_second": rate,
                "head_cpu_ms_per_job": round((cpu_seconds(head_pid) - cpu0) * 1000 / size, 3),
                "wire_bytes_per_job": round((wire_bytes(cluster) - bytes0) / size),
                "cpu_ms_per_job_by_role": {
                    role: round((roles1[role] - roles0[role]) * 1000 / size, 3) for role in roles0
                },
            }
        ),
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--array", type=int, default=10_000)
    parser.add_argument("--latency", type=int, default=50)
    parser.add_argument("--vcpus", type=int, default=16)
    parser.add_argument(
        "--disk-mib", type=int, default=2048, help="each host's own disk (0: the shared one)"
    )
    parser.add_argument("--agent-durability", choices=("process", "power"), default="process")
    add_repeat_option(parser)
    args = parser.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="hpcbatch-bench-cluster-"))
    cluster = DevCluster.up(base_dir, hosts=4, disk_mib=args.disk_mib)
    try:
        with (
            BenchHead(
                nodes=0, extra_config=ce_config(cluster, args.vcpus, args.agent_durability)
            ) as head,
            httpx.Client(base_url=head.endpoint, timeout=60) as client,
        ):
            client.post(
                "/v1/createjobqueue",
                json={
                    "jobQueueName": "cluster",
                    "priority": 1,
                    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "cluster"}],
                },
            ).raise_for_status()
            deadline = time.monotonic() + 60
            while (
                sum(
                    n["state"] == "ONLINE" for n in client.get("/hpcbatch/v1/nodes").json()["nodes"]
                )
                < 4
            ):
                assert time.monotonic() < deadline, "hosts did not come ONLINE"
                time.sleep(0.05)
            job = {**JOB, "jobQueue": "cluster"}
            print(
                json.dumps(bench_latency(client, args.latency, "cluster", "ssh_submit_to_running")),
                flush=True,
            )
            assert head.proc is not None
            machine_gauge()
            rates = [
                run_array(client, cluster, head.proc.pid, job, args.array)
                for _ in range(args.repeat)
            ]
            report_runs("ssh_array_runs", rates)
            machine_gauge()
    finally:
        for host in cluster.hosts:
            from hpcbatch.transport.local import stop_local_agent

            stop_local_agent(Path(host.agent_state_dir), kill_jobs=True)
        cluster.down()


if __name__ == "__main__":
    main()
