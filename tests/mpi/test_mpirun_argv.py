"""The plain-ssh command lines of hpcbatch.mpi.mpirun: golden argv for Open MPI and Hydra, and
arguments that would be split on spaces refused with their name. Pure."""

from __future__ import annotations

import pytest

from hpcbatch.mpi.mpirun import MpirunError, SshLauncher, hydra_argv, openmpi_argv
from hpcbatch.mpi.prewire import LaunchEnvError, launch_environment

SSH = SshLauncher("/c/id_ed25519", "/c/known_hosts")
SSH_ARGS = (
    "-F /dev/null -i /c/id_ed25519 -l root -o IdentitiesOnly=yes "
    "-o UserKnownHostsFile=/c/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
)


def test_open_mpi_argv() -> None:
    argv = openmpi_argv("mpirun", "/j/hostfile", 8, ["python", "app.py"], SSH, per_node=2)
    assert argv == [
        "mpirun",
        "--hostfile",
        "/j/hostfile",
        "-n",
        "8",
        "--map-by",
        "ppr:2:node",
        "--mca",
        "plm_rsh_agent",
        "/usr/bin/ssh",
        "--mca",
        "plm_rsh_args",
        SSH_ARGS,
        "python",
        "app.py",
    ]


def test_open_mpi_without_a_hostfile_leaves_it_to_the_environment() -> None:
    argv = openmpi_argv("mpirun", None, 2, ["a"], SSH)
    assert "--hostfile" not in argv and argv[:3] == ["mpirun", "-n", "2"]


def test_hydra_argv_and_environment() -> None:
    argv, env = hydra_argv("mpiexec", "/j/hostfile.mpich", 4, ["a"], SSH, "10.0.0.11")
    assert argv == [
        "mpiexec",
        "-f",
        "/j/hostfile.mpich",
        "-n",
        "4",
        "-launcher",
        "ssh",
        "-launcher-exec",
        "/usr/bin/ssh",
        "-localhost",
        "10.0.0.11",
        "a",
    ]
    assert env == {"HYDRA_LAUNCHER_EXTRA_ARGS": SSH_ARGS}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: openmpi_argv("m", "/a b", 1, [], SSH), "hostfile must be non-empty"),
        (lambda: openmpi_argv("m", None, 0, [], SSH), "ranks must be a positive integer"),
        (lambda: openmpi_argv("m", None, True, [], SSH), "ranks must be a positive integer"),
        (lambda: openmpi_argv("m", None, 1, [], SshLauncher("/k ey", "/kh")), "key_path"),
        (lambda: hydra_argv("m", "/h", 1, [], SSH, ""), "localhost must be non-empty"),
    ],
)
def test_bad_arguments_are_refused_by_name(build: object, message: str) -> None:
    with pytest.raises(MpirunError, match=message):
        build()  # type: ignore[operator]


def test_the_prewired_launch_environment() -> None:
    assert launch_environment("/opt/hpcbatch/bin/hpcbatch-launch", run_as_root=False) == {
        "OMPI_MCA_plm_rsh_agent": "/opt/hpcbatch/bin/hpcbatch-launch",
        "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
        "HYDRA_LAUNCHER": "ssh",
        "HYDRA_LAUNCHER_EXEC": "/opt/hpcbatch/bin/hpcbatch-launch",
    }
    root = launch_environment("/l", run_as_root=True)
    assert root["OMPI_ALLOW_RUN_AS_ROOT"] == root["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    with pytest.raises(LaunchEnvError, match="launcher must be an absolute path"):
        launch_environment("hpcbatch-launch", run_as_root=False)
