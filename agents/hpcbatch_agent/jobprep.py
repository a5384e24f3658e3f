"""Preparing a launched attempt for its spawn: everything the agent decides and makes before
the job's process exists.

Vocabulary:
    ready      an attempt whose job can be spawned now: its spawn request (program resolved
               on the job's PATH from its cwd, environment, user, cgroup slot), the work dir
               made for it, its timeout, and a gang node's launch key.
    refused    an attempt that cannot start, and why (a CannotStartContainerError reason),
               with the log its reason goes to; whatever was made for it is released.
    batch      one launch message's attempts: PATH lookups and users are looked up once per
               batch (new_batch clears them), never across batches, so a changed host is seen.
    environment the agent's own PATH, HOME, LANG, USER, SHELL, then the spec's, then the
               attempt id and state dir (jobs.py), the user's HOME/USER/LOGNAME, and a gang
               node's variables (gangprep.py). CUDA_VISIBLE_DEVICES and
               NVIDIA_VISIBLE_DEVICES come in the spec's env: the head sets them, one owner.
    GPUs       the spec's GPU ids; where the node isolates GPUs by device (gpudevices.py) its
               slot is given them, after the slot's limits: v1 devices rules written, or on
               cgroup v2 an eBPF device program attached (gpubpf.py).
Standard library only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from . import protocol as p
from .gangprep import prepare_gang
from .gpudevices import GpuDevices
from .jobs import ATTEMPT_VAR, DIR_VAR
from .slots import Slot, SlotPool
from .spawn import SpawnRequest, resolve_cached
from .spool import safe_name
from .users import RunAs, run_as_cached
from .workdirs import WorkDirs

INHERITED_ENV = ("PATH", "HOME", "LANG", "USER", "SHELL")


@dataclass
class Ready:
    """A launched attempt prepared for the spawn."""

    attempt_id: str
    request: SpawnRequest
    work_dir: str | None  # the work dir made for it (None: the job names its own)
    timeout_s: int | None
    launch_key: str | None = None  # a gang node's: its launch server accepts this key


@dataclass(frozen=True)
class Refused:
    log_path: str
    reason: str


class JobPrep:
    """Prepares attempts for one agent: ``state`` its state dir, ``logs`` and ``work`` the
    dirs for jobs' logs and work dirs (plain strings: pathlib costs ~10 us per join)."""

    def __init__(self, state: str, logs: str, work: str, slots: SlotPool, workdirs: WorkDirs):
        self._state, self._logs, self._work = state, logs, work
        self.slots = slots
        self.workdirs = workdirs
        self.base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        self.base_env.setdefault("PATH", os.defpath)
        self._resolved: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
        self._users: dict[str, RunAs | str] = {}
        self.devices: GpuDevices | None = None  # set where the node isolates GPUs by device

    def new_batch(self) -> None:
        self._resolved.clear()
        self._users.clear()

    def prepare(self, spec: p.AttemptSpec, launcher: list[str]) -> Ready | Refused:
        """``spec`` ready to spawn, or why not. ``launcher``: the launch client's argv."""
        attempt_id = spec["attempt_id"]
        safe = safe_name(attempt_id)
        log_path = f"{self._logs}/{safe}.log"
        env = {**self.base_env, **spec["env"], ATTEMPT_VAR: attempt_id, DIR_VAR: self._state}
        command = list(spec["command"])
        who = run_as_cached(spec.get("user"), self._users)
        if isinstance(who, str):
            return Refused(log_path, who)
        auto_dir = spec["cwd"] is None
        cwd = f"{self._work}/{safe}" if auto_dir else str(spec["cwd"])
        if auto_dir:
            self.workdirs.make(cwd)
            if who is not None:
                os.chown(cwd, who.uid, who.gid)  # the job's own scratch directory
        program, problem = self._resolve(spec["command"][0], cwd, env["PATH"])
        if who is not None:
            env.update(who.env)
        if problem is None and spec.get("launch_key"):
            key = str(spec["launch_key"])
            problem = prepare_gang(self._state, attempt_id, key, env, who, launcher)
        slot: Slot | None = None
        if problem is None and program is not None and self.slots.active:
            try:
                slot = self.slots.acquire(spec["vcpus"], spec["memory_mib"])
            except OSError as exc:
                problem = f"CannotStartContainerError: {exc}"
            else:
                problem = self._restrict_devices(slot, spec["gpus"])
        if problem is not None or program is None:
            if auto_dir:
                self.workdirs.release(cwd)
            return Refused(log_path, problem or "CannotStartContainerError")
        switch = who if who is not None and who.switch else None
        request = SpawnRequest(program, command, env, cwd, log_path, slot, switch, auto_dir)
        work_dir = cwd if auto_dir else None
        return Ready(attempt_id, request, work_dir, spec["timeout_s"], spec.get("launch_key"))

    def _restrict_devices(self, slot: Slot, gpus: list[str]) -> str | None:
        """Deny the slot every GPU of the host but ``gpus``; on failure the slot goes back
        and the reason is returned."""
        if self.devices is None:
            return None
        try:
            self.devices.restrict(slot.dirs, gpus)
        except OSError as exc:
            self.slots.finish(slot, None, time.time_ns() // 1_000_000)
            return (
                f"CannotStartContainerError: cannot deny the job the GPUs it was not given: {exc}"
            )
        return None

    def _resolve(self, program: str, cwd: str, path: str) -> tuple[str | None, str | None]:
        """(the file to execute, or None; why it cannot be, or None)."""
        if not os.path.isdir(cwd):
            return None, f"CannotStartContainerError: working directory does not exist: {cwd}"
        return resolve_cached(program, cwd, path, self._resolved)
