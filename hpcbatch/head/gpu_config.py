"""GPUs named in the head's config: ``[local] gpus`` and an SSH host's ``gpus``.

A GPU is named by its nvidia-smi index (``0``) or its UUID (``"GPU-16794395-…"``, a MIG
instance's ``"MIG-…"``); a list may mix them. The agent checks each name against nvidia-smi
where there is one (a GPU the host does not have is not offered, with a reason the node shows);
here the list itself is checked: every item a valid name, none twice.
"""

from __future__ import annotations

import re
from typing import Any

from hpcbatch.errors import ValidationError

GpuName = int | str
UUID_RE = re.compile(r"(GPU|MIG)-[A-Za-z0-9-]{1,120}")
MAX_INDEX = 65535


def check_gpu_list(value: Any, where: str) -> tuple[GpuName, ...]:
    """``value`` as a tuple of GPU names, or ValidationError naming ``where`` and the rule."""
    rule = f'must be a list of GPU indices (0-{MAX_INDEX}) or UUIDs ("GPU-…", "MIG-…")'
    if not isinstance(value, list):
        raise ValidationError(where, f"{rule} (got {value!r})")
    seen: set[GpuName] = set()
    for item in value:
        index_ok = isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= MAX_INDEX
        if not index_ok and not (isinstance(item, str) and UUID_RE.fullmatch(item)):
            raise ValidationError(where, f"{rule}; {item!r} is neither")
        if item in seen:
            raise ValidationError(
                where, f"GPU {item} appears twice: a GPU is offered by one node only"
            )
        seen.add(item)
    return tuple(value)


def gpu_flag(gpus: tuple[GpuName, ...] | list[GpuName]) -> str:
    """The agent's ``--gpus`` value."""
    return ",".join(str(gpu) for gpu in gpus)
