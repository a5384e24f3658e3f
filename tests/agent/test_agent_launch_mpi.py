"""Real Open MPI and real MPICH launched through hpcbatch's launch server (issue 8 item 4):
two real agents as a LOCAL compute environment's virtual nodes (127.0.0.2 and 127.0.0.3), a
2-node gang started as the head would, and node 0's job runs a bare ``mpirun -n 2`` /
``mpiexec -n 2``: no flag beyond the pre-wired environment. Each rank reports the cgroups it
runs in: rank 1 must be in node 1's job's, started through node 1's agent; and its node's own
variables (AWS_BATCH_JOB_NODE_INDEX, AWS_BATCH_JOB_ID, HPCBATCH_ATTEMPT_ID), never the main
node's, beside a variable set in mpirun's environment alone (Hydra forwards it; Open MPI
does not)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client
from hpcbatch_agent import protocol as p

from hpcbatch.mpi.mpirun import MPI4PY_MPICH_NAME, MPICH_LIBRARY, mpi4py_on_mpich

ADDRESSES = ("127.0.0.2", "127.0.0.3")
MPIRUN = "/usr/bin/mpirun.openmpi"
MPIEXEC = "/usr/bin/mpiexec.hydra"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
RANK = """
import json, os, sys
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.Get_rank(), op=MPI.SUM)
cgroup = open("/proc/self/cgroup").read().splitlines()
env = {k: os.environ.get(k) for k in ("AWS_BATCH_JOB_NODE_INDEX", "AWS_BATCH_JOB_ID",
                                      "HPCBATCH_ATTEMPT_ID", "FROM_MPIEXEC")}
print(json.dumps({"rank": world.Get_rank(), "size": world.Get_size(), "sum": total,
                  "cgroup": cgroup, "env": env}), flush=True)
"""


@pytest.fixture
def agents(start_agent: Callable[..., AgentProcess], tmp_path: Path) -> Iterator[list[Client]]:
    if not all(os.access(path, os.X_OK) for path in (MPIRUN, MPIEXEC)):
        pytest.skip("no Open MPI or MPICH: scripts/test.sh installs openmpi-bin and mpich")
    pytest.importorskip("mpi4py")
    clients = []
    for index, address in enumerate(ADDRESSES):
        agent = start_agent(
            "--node-name",
            f"n{index}",
            "--launch-address",
            address,
            state_dir=tmp_path / f"node{index}",
        )
        clients.append(Client(agent.state_dir))
    yield clients
    for client in clients:
        client.close()


@pytest.mark.parametrize("mpi", ["openmpi", "mpich"])
def test_a_bare_mpirun_runs_one_rank_in_each_nodes_job(
    agents: list[Client], tmp_path: Path, mpi: str
) -> None:
    ports = [client.hello()["node"]["launch_port"] for client in agents]
    program = tmp_path / "rank.py"
    program.write_text(RANK)
    env = {
        "HPCBATCH_HOSTS": ",".join(f"{a}:1" for a in ADDRESSES),
        "HPCBATCH_LAUNCH_PEERS": ",".join(
            f"{a}={n}" for a, n in zip(ADDRESSES, ports, strict=True)
        ),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
    }
    if mpi == "mpich":
        library = tmp_path / "lib"
        library.mkdir()
        (library / MPI4PY_MPICH_NAME).symlink_to(LIBDIR / MPICH_LIBRARY)
        env |= mpi4py_on_mpich(str(library))
    key = secrets.token_hex(32)
    node1_env = env | {"AWS_BATCH_JOB_NODE_INDEX": "1", "AWS_BATCH_JOB_ID": "mpi#1"}
    spec1 = p.attempt_spec("mpi#1", ["sleep", "60"], env=node1_env, launch_key=key)
    agents[1].send(p.launch([spec1]))
    waiting = agents[1].wait_state("mpi#1", p.RUNNING, p.EXITED, p.FAILED_TO_START)
    assert waiting["state"] == p.RUNNING, waiting
    launcher = MPIRUN if mpi == "openmpi" else MPIEXEC
    command = [launcher, "-n", "2", sys.executable, str(program)]
    main_env = env | {"AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_ID": "mpi#0"}
    main_env["FROM_MPIEXEC"] = "set on the main node alone"
    spec = p.attempt_spec("mpi#0", command, env=main_env, launch_key=key, timeout_s=30)
    agents[0].send(p.launch([spec]))
    main = agents[0].wait_state("mpi#0", p.RUNNING, p.EXITED, p.FAILED_TO_START)
    node0_cgroup = Path(f"/proc/{main['pid']}/cgroup").read_text().splitlines()
    done = agents[0].wait_state("mpi#0", p.EXITED, p.FAILED_TO_START, timeout_s=40)
    log = Path(done["log_path"]).read_text()
    assert done["exit_code"] == 0, log
    text = log.replace("}{", "}\n{")  # Hydra may glue two ranks' lines
    ranks = sorted(
        (json.loads(line) for line in text.splitlines() if line.startswith("{")),
        key=lambda r: r["rank"],
    )
    assert [(r["rank"], r["size"], r["sum"]) for r in ranks] == [(0, 2, 1), (1, 2, 1)], log
    node1_cgroup = Path(f"/proc/{waiting['pid']}/cgroup").read_text().splitlines()
    assert ranks[1]["cgroup"] == node1_cgroup, log
    assert ranks[0]["cgroup"] in (node0_cgroup, node1_cgroup)
    forwarded = "set on the main node alone" if mpi == "mpich" else None
    for rank in ranks:
        node = 1 if rank["cgroup"] == node1_cgroup else 0
        want = {
            "AWS_BATCH_JOB_NODE_INDEX": str(node),
            "AWS_BATCH_JOB_ID": f"mpi#{node}",
            "HPCBATCH_ATTEMPT_ID": f"mpi#{node}",
            "FROM_MPIEXEC": forwarded if node else "set on the main node alone",
        }
        assert rank["env"] == want, (rank, log)
    agents[1].send(p.kill("mpi#1", "test over"))
    agents[1].wait_state("mpi#1", p.EXITED)
