"""The environment of a gang node's job: what makes a bare ``mpirun``/``mpiexec`` on the main
node use the allocation's hostfile and hpcbatch's launcher with no flag (issue 8 item 4).

Vocabulary:
    launcher   the argv prefix of this agent's launch client (launchclient.py), as one
               executable path: a tiny script in the attempt's launch dir (launchdir.py),
               because Hydra's ``HYDRA_LAUNCHER_EXEC`` takes a path, not a command line.
    pre-wired  the variables below, added to the job's environment only where the job (its
               definition, its submission, the head) did not set them itself.

Verified with real Open MPI 4.1.4 and MPICH 4.0.2 (tests/mpi/test_real_mpi.py,
tests/agent/test_agent_launch_mpi.py). Pure; standard library only. ``hpcbatch.mpi.prewire``
re-exports :func:`launch_environment`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .hostfiles import (
    HOSTS,
    HYDRA_HOST_FILE,
    OMPI_DEFAULT_HOSTFILE,
    HostSlots,
    hostfile_environment,
    hostfiles,
    main_first,
    parse_hosts,
)
from .launchwire import LAUNCH_KEY_FILE as LAUNCH_KEY_FILE  # the client's names, defined
from .launchwire import LAUNCH_PEERS as LAUNCH_PEERS  # where the client imports them

OPENMPI_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
LAUNCHER = "HPCBATCH_LAUNCHER"
MAIN_NODE_INDEX = "AWS_BATCH_JOB_MAIN_NODE_INDEX"
HYDRA_ENV = "HYDRA_ENV"
NODE_PREFIXES = ("HPCBATCH_",)
NODE_VARIABLES = frozenset(
    {
        "AWS_BATCH_JOB_NODE_INDEX",
        "AWS_BATCH_JOB_ID",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "OMPI_MCA_plm_rsh_agent",
        "HYDRA_LAUNCHER_EXEC",
        HYDRA_HOST_FILE,
        OMPI_DEFAULT_HOSTFILE,
    }
)
KEY_FILE_NAME = "launch.key"
LAUNCHER_NAME = "launch"


class LaunchEnvError(ValueError):
    """A gang's environment that cannot be pre-wired; the message names the variable."""


def launch_environment(launcher: str, run_as_root: bool) -> dict[str, str]:
    """``launcher`` (an absolute path) as Open MPI's rsh agent and Hydra's ssh launcher.

    Open MPI's tree spawn is off: only the main node launches (its daemons would otherwise call
    the launcher from other nodes too). Hydra's launcher stays ``ssh``, so it is called as
    ``launcher -x <host> <command...>``. Open MPI refuses root without the confirmation pair;
    it is set only for a job that runs as root."""
    if not launcher.startswith("/") or any(c.isspace() or c == "\0" for c in launcher):
        raise LaunchEnvError(
            f"launcher must be an absolute path without whitespace or NUL, got {launcher!r}"
        )
    env = {
        "OMPI_MCA_plm_rsh_agent": launcher,
        "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
        "HYDRA_LAUNCHER": "ssh",
        "HYDRA_LAUNCHER_EXEC": launcher,
    }
    return env | OPENMPI_ROOT if run_as_root else env


def main_index(env: Mapping[str, str], nodes: int) -> int:
    text = env.get(MAIN_NODE_INDEX, "0")
    if not text.isdigit() or int(text) >= nodes:
        raise LaunchEnvError(
            f"{MAIN_NODE_INDEX} must be a node index below {nodes} (HPCBATCH_HOSTS), got {text!r}"
        )
    return int(text)


def gang_files(env: Mapping[str, str]) -> dict[str, str]:
    """The hostfiles' texts by file name, from the job's ``HPCBATCH_HOSTS`` (main node first)."""
    return hostfiles(_ordered(env))


def _ordered(env: Mapping[str, str]) -> tuple[HostSlots, ...]:
    if HOSTS not in env:
        raise LaunchEnvError(f"{HOSTS} must be set on every node of a gang (addr:slots,...)")
    nodes = parse_hosts(env[HOSTS])
    return main_first(nodes, main_index(env, len(nodes)))


def gang_environment(env: Mapping[str, str], directory: str, run_as_root: bool) -> dict[str, str]:
    """What the agent adds to a gang node's environment ``env`` for files written in
    ``directory``: the hostfile variables, the key file, the launcher and the pre-wired MPI
    variables; none of them replaces a variable ``env`` sets.

    Hydra forwards nothing itself (``HYDRA_ENV=none``; a ``-genvall`` on mpiexec's command
    line overrides it): its forwarding would put mpiexec's node-specific variables over those
    of each rank's node. hpcbatch's launch client carries mpiexec's environment to each
    Hydra proxy instead, and the launch server applies it over the node's own except the
    node's variables (:func:`rank_environment`). A stand-in launcher (ssh) carries nothing,
    so launch_environment leaves Hydra's forwarding as it is."""
    ordered = _ordered(env)
    launcher = f"{directory}/{LAUNCHER_NAME}"
    added = {
        **hostfile_environment(ordered, directory),
        LAUNCH_KEY_FILE: f"{directory}/{KEY_FILE_NAME}",
        LAUNCHER: launcher,
        **launch_environment(launcher, run_as_root),
        HYDRA_ENV: "none",
    }
    return {name: value for name, value in added.items() if name not in env}


def is_node_variable(name: str) -> bool:
    """A variable whose value is the node's own: its index, its node job's id, its GPUs and
    the paths of its attempt (HPCBATCH_*, the launcher and hostfiles in its launch dir)."""
    return name in NODE_VARIABLES or name.startswith(NODE_PREFIXES)


def rank_environment(node_env: Mapping[str, str], forwarded: Mapping[str, str]) -> dict[str, str]:
    """The environment of a Hydra proxy (and so of its ranks) started on a node whose job's
    environment is ``node_env``, for an mpiexec whose environment is ``forwarded``: mpiexec's
    variables over the node's, as Hydra's ``-genvall`` would, except the node's own
    (:func:`is_node_variable`), which keep the node's values or stay unset."""
    kept = {name: value for name, value in forwarded.items() if not is_node_variable(name)}
    return {**node_env, **kept}
