"""One module per command group; each exposes ``register(subparsers, common)``.

Every module imports only the standard library at module level: building the parser loads all
of them, and ``hpcbatch submit`` must start in well under 150 ms.
"""

from __future__ import annotations

# The order is the order of ``hpcbatch --help``: daily use first, administration after.
COMMAND_MODULES = (
    "submit",
    "jobs",
    "describe",
    "logs",
    "cancel",
    "queues",
    "compute_envs",
    "policies",
    "quota_shares",
    "consumables",
    "job_defs",
    "nodes",
    "top",
    "console",
    "health",
    "users",
    "head",
    "backup",
    "hosts",
    "grafana",
    "devcluster",
    "vagrant",
)

# Command name (and alias) -> the module that registers it, so that a call builds only its
# own parser: building all of them costs 15-30 ms, a fifth of a submission.
MODULE_OF = {
    "submit": "submit",
    "jobs": "jobs",
    "describe": "describe",
    "logs": "logs",
    "cancel": "cancel",
    "terminate": "cancel",
    "queues": "queues",
    "compute-environments": "compute_envs",
    "ces": "compute_envs",
    "policies": "policies",
    "scheduling-policies": "policies",
    "quota-shares": "quota_shares",
    "consumables": "consumables",
    "job-definitions": "job_defs",
    "defs": "job_defs",
    "nodes": "nodes",
    "top": "top",
    "console": "console",
    "health": "health",
    "users": "users",
    "whoami": "users",
    "head": "head",
    "backup": "backup",
    "restore": "backup",
    "hosts": "hosts",
    "grafana": "grafana",
    "dev-cluster": "devcluster",
    "vagrant": "vagrant",
}
