"""The baseline of issue 8's speed target: a 4-rank (1 per host) mpi4py hello + allreduce
started by plain ``mpirun``/``mpiexec`` over ssh on a 4-host dev cluster, with Open MPI and
with MPICH; and, for the launcher's design (docs/mpi.md), what a message costs on each route
a launcher could take between two hosts.

One JSON line per measurement:
- mpi_plain: per MPI, the median/min/max wall time of --runs runs of mpirun on the first
  host (its namespace and host name), all ranks checked (size, sum)
- ssh_true: a fresh OpenSSH client from host 1 running `true` on host 2 (what each remote
  daemon's start costs plain mpirun), median of --runs
- mpi_local: the same program as 1 rank on host 1 only (no ssh): MPI start-up and Python
- route_direct_tcp: from host 1 to an echo server on host 2: connect, and a 64-byte round
  trip (TCP_NODELAY), medians
- route_ssh_channel: from the root namespace (where the head runs) to host 2 over one open
  paramiko SSH channel (TCP_NODELAY, as the head's links): a 64-byte round trip, median

    sudo .venv/bin/python -m bench.mpi_plain [--hosts 4] [--runs 10] [--per-host 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paramiko

from hpcbatch.devcluster import DevCluster, DevHost
from hpcbatch.devcluster.network import as_host_argv
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

HELLO = Path(__file__).with_name("mpi_hello.py")
ROUND_TRIPS = 1000
ECHO_SERVER = """
import socket, sys
s = socket.create_server(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := c.recv(65536):
        c.sendall(data)
    c.close()
"""
ECHO_CLIENT = """
import json, socket, statistics, sys, time
address, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connects, trips = [], []
for _ in range(20):
    t = time.perf_counter(); c = socket.create_connection((address, port))
    connects.append(time.perf_counter() - t); c.close()
c = socket.create_connection((address, port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(n):
    t = time.perf_counter(); c.sendall(b"x" * 64)
    got = 0
    while got < 64:
        got += len(c.recv(64 - got))
    trips.append(time.perf_counter() - t)
print(json.dumps({"connect_us": round(statistics.median(connects) * 1e6),
                  "round_trip_us": round(statistics.median(trips) * 1e6)}))
"""


def on_host(host: DevHost) -> list[str]:
    """Run a command as if on ``host``: its network namespace and its own host name."""
    return as_host_argv(host.namespace, host.name)


def timed_runs(argv: list[str], env: dict[str, str], ranks: int, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )
        seconds.append(time.perf_counter() - start)
        lines = [x for x in done.stdout.replace("}{", "}\n{").splitlines() if x]
        if done.returncode != 0 or len(lines) != ranks:
            sys.exit(
                f"{argv} failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-2000:]}"
            )
    return seconds


def bench_mpi(cluster: DevCluster, work: Path, per_host: int, runs: int) -> None:
    nodes = [HostSlots(h.address, per_host) for h in cluster.hosts]
    for name, text in hostfiles(nodes).items():
        (work / name).write_text(text)
    (work / MPI4PY_MPICH_NAME).symlink_to(Path("/usr/lib/x86_64-linux-gnu") / MPICH_LIBRARY)
    ranks = len(nodes) * per_host
    program = [sys.executable, str(HELLO), str(ranks)]
    ssh = SshLauncher(str(cluster.key_path), str(cluster.known_hosts_path))
    main = cluster.hosts[0]
    ompi = openmpi_argv("/usr/bin/mpirun.openmpi", str(work / "hostfile"), ranks, program, ssh)
    hydra, hydra_env = hydra_argv(
        "/usr/bin/mpiexec.hydra", str(work / "hostfile.mpich"), ranks, program, ssh, main.address
    )
    cases = {
        "openmpi": (ompi, OPENMPI_ROOT),
        "mpich": (hydra, hydra_env | mpi4py_on_mpich(str(work))),
    }
    for mpi, (argv, env) in cases.items():
        seconds = timed_runs(on_host(main) + argv, env, ranks, runs)
        row = {"bench": "mpi_plain", "mpi": mpi, "hosts": len(nodes), "ranks": ranks}
        row |= {"runs": runs, "median_s": round(statistics.median(seconds), 3)}
        row |= {"min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3)}
        print(json.dumps(row), flush=True)


def bench_parts(cluster: DevCluster, work: Path, runs: int) -> None:
    """Where plain mpirun's time goes: one ssh, and one rank started with no ssh at all."""
    main, other = cluster.hosts[0], cluster.hosts[1]
    ssh = SshLauncher(str(cluster.key_path), str(cluster.known_hosts_path))
    seconds = timed_runs([*on_host(main), ssh.ssh, *ssh.args(), other.address, "true"], {}, 0, runs)
    print(json.dumps({"bench": "ssh_true", "median_s": round(statistics.median(seconds), 3)}))
    (work / "hostfile.local").write_text(f"{main.address} slots=1\n")
    program = [sys.executable, str(HELLO), "1"]
    argv = openmpi_argv("/usr/bin/mpirun.openmpi", str(work / "hostfile.local"), 1, program, ssh)
    seconds = timed_runs(on_host(main) + argv, OPENMPI_ROOT, 1, runs)
    row = {"bench": "mpi_local", "mpi": "openmpi", "ranks": 1}
    print(json.dumps(row | {"median_s": round(statistics.median(seconds), 3)}), flush=True)


def bench_direct_tcp(client: DevHost, server: DevHost) -> None:
    echo = subprocess.Popen(
        [*on_host(server), sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert echo.stdout is not None
        port = echo.stdout.readline().strip()  # printed once it listens
        argv = [*on_host(client), sys.executable, "-c", ECHO_CLIENT]
        done = subprocess.run(
            [*argv, server.address, port, str(ROUND_TRIPS)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        row = {"bench": "route_direct_tcp", **json.loads(done.stdout)}
        print(json.dumps(row), flush=True)
    finally:
        echo.kill()
        echo.wait(timeout=10)


def bench_ssh_channel(cluster: DevCluster, host: DevHost) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(cluster.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host.address,
        username="root",
        key_filename=str(cluster.key_path),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        transport = client.get_transport()
        assert transport is not None
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        stdin, stdout, _ = client.exec_command("cat")
        trips = []
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            stdin.write(b"x" * 63 + b"\n")
            stdin.flush()
            stdout.readline()
            trips.append(time.perf_counter() - start)
        row = {"bench": "route_ssh_channel"}
        row["round_trip_us"] = round(statistics.median(trips) * 1e6)  # type: ignore[assignment]
        print(json.dumps(row), flush=True)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--per-host", type=int, default=1)
    args = parser.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="hpcbatch-bench-mpi-"))
    cluster = DevCluster.up(base_dir / "cluster", hosts=args.hosts, disk_mib=0)
    try:
        work = base_dir / "work"
        work.mkdir()
        bench_mpi(cluster, work, args.per_host, args.runs)
        bench_parts(cluster, work, args.runs)
        bench_direct_tcp(cluster.hosts[0], cluster.hosts[1])
        bench_ssh_channel(cluster, cluster.hosts[1])
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
