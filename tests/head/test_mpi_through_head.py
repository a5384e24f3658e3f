"""Real MPI through hpcbatch, end to end: a real head, its LOCAL compute environment with two
virtual nodes (real agents, each with its own loopback address and launch server), and
``hpcbatch submit --nodes 2 -- mpirun -n 2 ...`` with no MPI flag at all: the hostfile, the
launcher and Open MPI's root flags come from hpcbatch's environment; each rank lands in its
node's allocation, and the job succeeds with the main node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.mpi.mpirun import MPI4PY_MPICH_NAME, MPICH_LIBRARY, mpi4py_on_mpich
from tests.head.headproc import HeadProcess

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
HELLO = Path(__file__).parents[2] / "bench" / "mpi_hello.py"
LAUNCHERS = {"openmpi": "/usr/bin/mpirun.openmpi", "mpich": "/usr/bin/mpiexec.hydra"}
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    if not all(os.access(path, os.X_OK) for path in LAUNCHERS.values()):
        pytest.skip("no Open MPI or MPICH: scripts/test.sh installs openmpi-bin and mpich")
    pytest.importorskip("mpi4py")
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=1, memory=2048)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _hpcbatch(head: HeadProcess, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    return subprocess.run(
        [HPCBATCH, *argv], capture_output=True, text=True, env=env, timeout=90, check=False
    )


@pytest.mark.parametrize("mpi", ["openmpi", "mpich"])
def test_submit_nodes_mpirun_runs_one_rank_per_node_with_no_flag(
    head: HeadProcess, tmp_path: Path, mpi: str
) -> None:
    env_flags: list[str] = []
    if mpi == "mpich":  # mpi4py's wheel loads Debian's MPICH only under its other name
        library = tmp_path / "lib"
        library.mkdir()
        (library / MPI4PY_MPICH_NAME).symlink_to(LIBDIR / MPICH_LIBRARY)
        for name, value in mpi4py_on_mpich(str(library)).items():
            env_flags += ["--env", f"{name}={value}"]
    command = [LAUNCHERS[mpi], "-n", "2", sys.executable, str(HELLO), "2"]
    submitted = _hpcbatch(head, "submit", "--nodes", "2", "--timeout", "60", *env_flags, "--wait",
                          "--", *command)  # fmt: skip
    parent = submitted.stdout.strip()
    log = _hpcbatch(head, "logs", f"{parent}#0").stdout
    assert submitted.returncode == 0, (submitted.stderr, log, head.story(parent, nodes=2))
    text = log.replace("}{", "}\n{")  # Hydra may glue two ranks' lines
    ranks = sorted(
        (json.loads(line) for line in text.splitlines() if line.startswith('{"rank"')),
        key=lambda rank: rank["rank"],
    )
    assert [(r["rank"], r["size"], r["sum"]) for r in ranks] == [(0, 2, 1), (1, 2, 1)], log
    described = head.describe(parent)
    assert described["status"] == "SUCCEEDED"
    nodes = [head.describe(f"{parent}#{i}") for i in range(2)]
    assert [n["status"] for n in nodes] == ["SUCCEEDED", "SUCCEEDED"]
    placed = {n["attempts"][-1]["container"]["logStreamName"].split("/")[1] for n in nodes}
    assert placed == {"local-1", "local-2"}  # one whole virtual node each
