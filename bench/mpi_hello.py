"""An MPI program for the MPI benchmarks and tests: every rank says who and where it is, then
an allreduce of the ranks' numbers. One JSON line per rank; exits 1 when the world is not the
size given (Open MPI's mpi4py started by Hydra makes every rank a rank 0 of 1) or the sum is
wrong.

    mpirun ... python bench/mpi_hello.py <expected size>
"""

from __future__ import annotations

import json
import socket
import sys

from mpi4py import MPI


def main() -> int:
    expected = int(sys.argv[1])
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    total = world.allreduce(rank, op=MPI.SUM)
    line = {"rank": rank, "size": size, "host": socket.gethostname(), "sum": total}
    print(json.dumps(line), flush=True)
    return 0 if size == expected and total == size * (size - 1) // 2 else 1


if __name__ == "__main__":
    sys.exit(main())
