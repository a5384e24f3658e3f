"""Command lines that start an MPI program over plain ssh: Open MPI's ``mpirun`` and MPICH
Hydra's ``mpiexec``, with the flags that bite on our hosts (../shared/reference/testbed.md).

This is the *baseline* that hpcbatch's own launcher is measured against (bench/mpi_plain.py)
and the check that the hostfiles of :mod:`hpcbatch.mpi.hostfile` work with real MPI. It never
reads ``~/.ssh``: the key and known_hosts are named, ``-F /dev/null`` drops every config.

Vocabulary: **launcher** is what an MPI starter runs to reach another host (``ssh`` here;
hpcbatch's own in docs/mpi.md); **ranks** the number of MPI processes (``-n``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# One copy: the agent pre-wires these on each node of a gang; the plain baseline needs them too.
from hpcbatch_agent.mpienv import OPENMPI_ROOT as OPENMPI_ROOT

# mpi4py's wheel asks for libmpi.so.12; Debian's MPICH calls it libmpich.so.12.
MPICH_LIBRARY = "libmpich.so.12"
MPI4PY_MPICH_NAME = "libmpi.so.12"


class MpirunError(ValueError):
    """A command line that cannot be built; the message names the argument."""


def _no_space(name: str, value: str) -> str:
    # Open MPI and Hydra split these strings on spaces before they exec ssh.
    if not value or any(c.isspace() or c == "\0" for c in value):
        raise MpirunError(f"{name} must be non-empty without whitespace or NUL, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SshLauncher:
    """ssh with one key and one known_hosts file, nothing else of the caller's."""

    key_path: str
    known_hosts_path: str
    user: str = "root"
    ssh: str = "/usr/bin/ssh"

    def args(self) -> list[str]:
        return [
            "-F",
            "/dev/null",
            "-i",
            _no_space("key_path", self.key_path),
            "-l",
            _no_space("user", self.user),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={_no_space('known_hosts_path', self.known_hosts_path)}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ]


def _check_ranks(ranks: int) -> str:
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise MpirunError(f"ranks must be a positive integer, got {ranks!r}")
    return str(ranks)


def openmpi_argv(
    mpirun: str,
    hostfile: str | None,
    ranks: int,
    program: Sequence[str],
    launcher: SshLauncher,
    per_node: int | None = None,
) -> list[str]:
    """``mpirun`` over ssh from an Open MPI hostfile (``addr slots=n`` lines; None: the one
    ``OMPI_MCA_orte_default_hostfile`` names); with ``per_node``, ``--map-by ppr:<n>:node``.
    Run it with :data:`OPENMPI_ROOT` as root."""
    argv = [mpirun]
    if hostfile is not None:
        argv += ["--hostfile", _no_space("hostfile", hostfile)]
    argv += ["-n", _check_ranks(ranks)]
    if per_node is not None:
        argv += ["--map-by", f"ppr:{_check_ranks(per_node)}:node"]
    argv += ["--mca", "plm_rsh_agent", _no_space("ssh", launcher.ssh)]
    argv += ["--mca", "plm_rsh_args", " ".join(launcher.args())]
    return [*argv, *program]


def hydra_argv(
    mpiexec: str,
    hostfile: str,
    ranks: int,
    program: Sequence[str],
    launcher: SshLauncher,
    localhost: str,
) -> tuple[list[str], dict[str, str]]:
    """``mpiexec`` (Hydra) over ssh from a ``host:n`` hostfile, and the environment it needs:
    Hydra takes ssh's extra arguments from ``HYDRA_LAUNCHER_EXTRA_ARGS``. ``localhost`` is
    the address the other hosts reach this one at: without ``-localhost`` Hydra hangs, with
    no error, where the host name does not resolve to it."""
    argv = [mpiexec, "-f", _no_space("hostfile", hostfile), "-n", _check_ranks(ranks)]
    argv += ["-launcher", "ssh", "-launcher-exec", _no_space("ssh", launcher.ssh)]
    argv += ["-localhost", _no_space("localhost", localhost)]
    return [*argv, *program], {"HYDRA_LAUNCHER_EXTRA_ARGS": " ".join(launcher.args())}


def mpi4py_on_mpich(library_dir: str) -> dict[str, str]:
    """What mpi4py's wheel needs to load Debian's MPICH: ``library_dir`` holds a link
    ``libmpi.so.12`` to ``libmpich.so.12`` (Hydra passes the environment to every rank)."""
    return {"MPI4PY_LIBMPI": MPI4PY_MPICH_NAME, "LD_LIBRARY_PATH": library_dir}
