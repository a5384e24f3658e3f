"""What a SLURM bridge offers the head as its node, and the environment its Slurm commands
run with (standard library).

Vocabulary:
    node       ``vcpus`` is the compute environment's maxvCpus (the cap on its jobs' vCPUs in
               Slurm at once); memory and GPUs are what sinfo counts in its partitions. The
               memory bounds what one job may ask (Slurm checks each node's); the GPUs are
               Slurm's generic resources (``gres/gpu``), offered as that many GPUs numbered
               0..N-1: a job holding k of them is submitted with ``--gpus=k``, and Slurm
               picks the boards and sets ``CUDA_VISIBLE_DEVICES`` (slurmscript.py drops the
               head's).
    env        what sbatch, squeue... (and so every job, which inherits sbatch's environment)
               get of the bridge's own: PATH, HOME, LANG, USER, SHELL and SLURM_CONF.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from . import protocol as p
from . import slurmcli
from .agentlog import log
from .slurmcli import SlurmError
from .slurmscript import Target
from .spool import safe_name

ENV_KEPT = ("PATH", "HOME", "LANG", "USER", "SHELL", "SLURM_CONF")
NO_MEMORY_MIB = 1 << 20  # Slurm did not say: its nodes' memory is Slurm's to check
GPU_ISOLATION_REASON = (
    "GPUs are Slurm's generic resources: Slurm picks each job's and isolates them where its "
    "cgroup.conf says ConstrainDevices=yes"
)


def bridge_name(attempt_id: str) -> str:
    """An attempt's file name without ``%`` (``=`` in its place): an array's ``-o`` holds only
    Slurm's own ``%a``."""
    return safe_name(attempt_id).replace("%", "=")


def bridge_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {name: environ[name] for name in ENV_KEPT if name in environ}
    env.setdefault("PATH", os.defpath)
    return env


def bridge_node(
    name: str, vcpus: int | None, memory_mib: int | None, target: Target, run: slurmcli.Run
) -> p.NodeInfo:
    """The node a bridge offers: ``vcpus`` and ``memory_mib`` where given, else what sinfo
    counts in the target's partitions; the partitions' GPUs."""
    nodes: list[slurmcli.SlurmNode] = []
    try:
        nodes = slurmcli.sinfo_nodes(run, target.partitions)
    except SlurmError as error:
        log(f"sinfo: {error.message}")
    if vcpus is None:
        vcpus = sum(node.cpus for node in nodes)
    if memory_mib is None:
        memory_mib = sum(node.memory_mib for node in nodes) or NO_MEMORY_MIB
    gpus = sum(node.gpus for node in nodes)
    node: p.NodeInfo = {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "gpus": [
            {"index": index, "uuid": None, "name": "Slurm gres/gpu", "memory_mib": None}
            for index in range(gpus)
        ],
        "cgroups": "none",
        "hostname": socket.gethostname(),
        "enforced": [],
        "launch_port": None,
    }
    if gpus:
        node["gpu_isolation"] = "env"
        node["gpu_isolation_reason"] = GPU_ISOLATION_REASON
    return node
