"""Children of one array in one launch, submitted as one ``sbatch --array`` (standard library).

Slurm schedules an array as one job record until its tasks start, and one ``sbatch`` costs
what a thousand would: so the bridge hands it the children of an array that way wherever
their attempts differ only in which child they are.

Vocabulary:
    child      an attempt ``<parent>:<index>/<number>`` whose environment names it the way
               the head does (``AWS_BATCH_JOB_ID=<parent>:<index>``,
               ``AWS_BATCH_JOB_ARRAY_INDEX=<index>``).
    group      children of one parent and attempt number whose command, resources, timeout,
               working directory and every other variable are the same: one Slurm array,
               its task ids the children's indexes (``--array=0-3,7``), task ``i`` being the
               attempt ``<parent>:<i>/<number>`` (Slurm id ``<array job>_<i>``).
    name       ``hb-<parent>:_/<number>``: ``_`` stands for the task id (``attempt_of``).
    script     as a single job's (slurmscript.py), the two per-child variables taken from
               ``SLURM_ARRAY_TASK_ID``, and the child's own work directory entered first
               where it has no working directory of its own.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from .slurmscript import NAME_PREFIX, script_env
from .wiretypes import AttemptSpec

INDEX_VAR = "AWS_BATCH_JOB_ARRAY_INDEX"
ID_VAR = "AWS_BATCH_JOB_ID"
TASK_MARK = "_"
TASK = '"$SLURM_ARRAY_TASK_ID"'


@dataclass
class ArrayGroup:
    parent: str
    number: str
    specs: list[AttemptSpec] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)

    def children(self) -> list[tuple[int, AttemptSpec]]:
        return list(zip(self.indexes, self.specs, strict=True))

    def attempt_id(self, index: int | str) -> str:
        return f"{self.parent}:{index}/{self.number}"

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}{self.parent}:{TASK_MARK}/{self.number}"


def child_parts(spec: AttemptSpec) -> tuple[str, int, str] | None:
    """``(parent, index, number)`` of an array child, or None."""
    job, slash, number = spec["attempt_id"].rpartition("/")
    parent, colon, index = job.rpartition(":")
    if not (slash and colon and parent and index.isdigit() and number.isdigit()):
        return None
    env = spec["env"]
    if env.get(INDEX_VAR) != index or env.get(ID_VAR) != job or not index.isascii():
        return None
    return parent, int(index), number


def _key(spec: AttemptSpec, parent: str, number: str) -> str:
    """What children of one array must share; GPUs by their count (Slurm picks the boards)."""
    rest = {k: v for k, v in spec.items() if k not in ("attempt_id", "env", "gpus")}
    rest["gpus"] = len(spec["gpus"])
    env = {k: v for k, v in script_env(spec).items() if k not in (INDEX_VAR, ID_VAR)}
    return json.dumps([parent, number, rest, env], sort_keys=True)


def group(specs: Iterable[AttemptSpec]) -> tuple[list[ArrayGroup], list[AttemptSpec]]:
    """The groups of two children or more, and every other attempt (in launch order)."""
    groups: dict[str, ArrayGroup] = {}
    order: list[AttemptSpec | str] = []
    for spec in specs:
        parts = child_parts(spec)
        if parts is None:
            order.append(spec)
            continue
        parent, index, number = parts
        key = _key(spec, parent, number)
        if key not in groups:
            groups[key] = ArrayGroup(parent, number)
            order.append(key)
        groups[key].specs.append(spec)
        groups[key].indexes.append(index)
    arrays: list[ArrayGroup] = []
    singles: list[AttemptSpec] = []
    for item in order:
        if not isinstance(item, str):
            singles.append(item)
        elif len(groups[item].specs) > 1:
            arrays.append(groups[item])
        else:
            singles.extend(groups[item].specs)
    return arrays, singles


def array_ranges(indexes: Iterable[int]) -> str:
    """``0-3,7,9-10``: what ``--array`` takes."""
    ranges: list[str] = []
    ordered = sorted(set(indexes))
    start = previous = ordered[0]
    for index in [*ordered[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ",".join(ranges)


def array_script(array: ArrayGroup, work_dir: tuple[str, str] | None) -> str:
    """``work_dir``: (before, after) the task id in each child's own work directory's path;
    None: the children share the working directory sbatch's ``-D`` gives."""
    spec = array.specs[0]
    lines = ["#!/bin/sh"]
    if work_dir is not None:
        before, after = work_dir
        lines.append(f"cd -- {shlex.quote(before)}{TASK}{shlex.quote(after)} || exit 1")
    env = script_env(spec)
    fixed = [f"{k}={v}" for k, v in env.items() if k not in (INDEX_VAR, ID_VAR)]
    words = " ".join(shlex.quote(word) for word in ["exec", "env", "--", *fixed])
    per_task = f"{shlex.quote(f'{ID_VAR}={array.parent}:')}{TASK} {INDEX_VAR}={TASK}"
    command = " ".join(shlex.quote(word) for word in spec["command"])
    lines.append(f"{words} {per_task} {command}")
    return "\n".join(lines) + "\n"


def split_path(path_of: dict[int, str], marker_path: str, marker: str) -> tuple[str, str] | None:
    """``marker_path`` (a child's path made with ``marker`` for its index) cut at the marker,
    if every child's path in ``path_of`` is the two halves around its index; else None."""
    if marker_path.count(marker) != 1:
        return None
    before, after = marker_path.split(marker)
    if all(path == f"{before}{index}{after}" for index, path in path_of.items()):
        return before, after
    return None
