"""An MPI program for the dev-cluster tests: each rank checks where it is and what it was given,
then an allreduce and a ring send/receive. One JSON line per rank; exits non-zero when a check
fails, or with --fail-rank R, rank R exits 7 after the allreduce (a rank that fails mid-job).

    mpirun ... python tests/cluster/mpi_ranks.py SIZE NODES MAIN_ADDRESS [--fail-rank R]
"""

from __future__ import annotations

import json
import os
import socket
import sys

from mpi4py import MPI


def checks(size: int, nodes: int, main_address: str) -> list[str]:
    want = {
        "AWS_BATCH_JOB_NUM_NODES": str(nodes),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": main_address,
    }
    problems = [f"{k}={os.environ.get(k)!r}, not {v!r}" for k, v in want.items()
                if os.environ.get(k) != v]  # fmt: skip
    index = os.environ.get("AWS_BATCH_JOB_NODE_INDEX", "")
    if not os.environ.get("AWS_BATCH_JOB_ID", "").endswith(f"#{index}") or not index:
        problems.append(f"AWS_BATCH_JOB_ID {os.environ.get('AWS_BATCH_JOB_ID')!r}, index {index!r}")
    if MPI.COMM_WORLD.Get_size() != size:
        problems.append(f"world size {MPI.COMM_WORLD.Get_size()}, not {size}")
    return problems


def main() -> int:
    size, nodes, main_address = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    fail_rank = int(sys.argv[5]) if sys.argv[4:5] == ["--fail-rank"] else -1
    world = MPI.COMM_WORLD
    rank, world_size = world.Get_rank(), world.Get_size()
    problems = checks(size, nodes, main_address)
    total = world.allreduce(rank, op=MPI.SUM)
    if total != world_size * (world_size - 1) // 2:
        problems.append(f"allreduce {total}")
    if rank == fail_rank:
        print(json.dumps({"rank": rank, "failing": True}), flush=True)
        os._exit(7)
    right, left = (rank + 1) % world_size, (rank - 1) % world_size
    got = world.sendrecv(rank, dest=right, source=left)  # the ring, one hop
    if got != left:
        problems.append(f"ring got {got} from {left}")
    line = {
        "rank": rank,
        "size": world_size,
        "host": socket.gethostname(),
        "node": int(os.environ.get("AWS_BATCH_JOB_NODE_INDEX", "-1")),
        "job": os.environ.get("AWS_BATCH_JOB_ID"),
        "from_mpiexec": os.environ.get("FROM_MPIEXEC"),  # set in mpiexec's environment alone
        "sum": total,
        "problems": problems,
    }
    print(json.dumps(line), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
