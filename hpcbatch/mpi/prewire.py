"""The variables that make a bare ``mpirun``/``mpiexec`` on a multi-node job's main node start
its remote daemons through a given launcher, with no flag (issue 8 item 4).

With :func:`hpcbatch.mpi.hostfile.hostfile_environment` (the default hostfiles) these are the
whole pre-wiring; docs/mpi.md §5 shows how each MPI calls the launcher. Verified with real
Open MPI 4.1.4 and MPICH 4.0.2 (tests/mpi/test_real_mpi.py).
"""

from __future__ import annotations

from hpcbatch.mpi.mpirun import OPENMPI_ROOT, MpirunError


def launch_environment(launcher: str, run_as_root: bool) -> dict[str, str]:
    """``launcher`` (an absolute path) as Open MPI's rsh agent and Hydra's ssh launcher.

    Open MPI's tree spawn is off: only the main node launches (its daemons would otherwise call
    the launcher from other nodes too). Hydra's launcher stays ``ssh``, so it is called as
    ``launcher -x <host> <command...>``. Open MPI refuses root without the confirmation pair;
    it is set only for a job that runs as root."""
    if not launcher.startswith("/") or any(c.isspace() or c == "\0" for c in launcher):
        raise MpirunError(
            f"launcher must be an absolute path without whitespace or NUL, got {launcher!r}"
        )
    env = {
        "OMPI_MCA_plm_rsh_agent": launcher,
        "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
        "HYDRA_LAUNCHER": "ssh",
        "HYDRA_LAUNCHER_EXEC": launcher,
    }
    return env | OPENMPI_ROOT if run_as_root else env
