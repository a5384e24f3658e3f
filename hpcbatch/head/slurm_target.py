"""Where a SLURM compute environment's jobs go in Slurm, as its CreateComputeEnvironment said,
in fields boto3 and the aws CLI already send (docs/slurm.md):

- ``computeResources.instanceTypes``: the partition(s) (none: Slurm's default partition), as
  an SSH compute environment's name its host pools;
- ``computeResources.tags``: ``slurm:account`` and ``slurm:qos``, the account (``-A``) and QOS
  (``-q``) its jobs are submitted with;
- ``computeResources.maxvCpus``: the cap on vCPUs of its jobs in Slurm at once (queued there or
  running), the size of its one node, the bridge.

Names are checked here only for what would break the sbatch command line (empty, a comma, a
space or a control character, over 64 characters); whether Slurm knows them is Slurm's to say,
and its refusal becomes the jobs' statusReason in its own words.
"""

from __future__ import annotations

from typing import Any

from hpcbatch_agent.slurmscript import Target

from hpcbatch.errors import ValidationError

ACCOUNT_TAG = "slurm:account"
QOS_TAG = "slurm:qos"
MAX_NAME = 64


def slurm_target(echo: dict[str, Any]) -> Target:
    """The target a stored compute environment's echo (its request as made) names."""
    resources = echo.get("computeResources") or {}
    tags = resources.get("tags") or {}
    return Target(
        tuple(resources.get("instanceTypes") or ()), tags.get(ACCOUNT_TAG), tags.get(QOS_TAG)
    )


def check_slurm_names(partitions: list[str] | None, tags: dict[str, str] | None) -> None:
    for index, partition in enumerate(partitions or []):
        check_slurm_name(f"computeResources.instanceTypes[{index}]", "a Slurm partition", partition)
    for tag in (ACCOUNT_TAG, QOS_TAG):
        if tags and tag in tags:
            check_slurm_name(f"computeResources.tags.{tag}", f"the Slurm {tag[6:]}", tags[tag])


def check_slurm_name(field: str, what: str, name: str) -> None:
    bad = [c for c in name if c == "," or c.isspace() or not c.isprintable()]
    if not name or bad or len(name) > MAX_NAME:
        raise ValidationError(
            field,
            f"must name {what}: 1 to {MAX_NAME} characters, no comma, space or control "
            f"character (got {name!r})",
        )


def slurm_agent_options(target: Target) -> list[str]:
    """The bridge's ``serve`` flags (agents/hpcbatch_agent/main.py)."""
    return ["--slurm", *target.flags()]
