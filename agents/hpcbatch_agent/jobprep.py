"""Preparing a launched attempt for its spawn: everything the agent decides and makes before
the job's process exists.

Vocabulary:
    ready      an attempt whose job can be spawned now: its spawn request (program resolved
               on the job's PATH from its cwd, environment, user, cgroup slot), the attempt
               dir made for it (its cwd unless the spec names one: jobcwd.py), its timeout,
               and a gang node's launch key.
    refused    an attempt that cannot start, and why (a CannotStartContainerError reason),
               with the log its reason goes to; whatever was made for it is released.
    batch      one launch message's attempts: PATH lookups and users are looked up once per
               batch (new_batch clears them), never across batches, so a changed host is seen.
    environment the agent's own PATH, HOME, LANG, USER, SHELL, then the spec's, then the
               attempt id and state dir (jobs.py), the attempt dir (HPCBATCH_ATTEMPT_DIR),
               the user's HOME/USER/LOGNAME, and a gang node's variables (gangprep.py).
               CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES come in the spec's env: the
               head sets them, one owner.
    GPUs       the spec's GPU ids; where the node isolates GPUs by device (gpudevices.py) its
               slot is given them, after the slot's limits: v1 devices rules written, or on
               cgroup v2 an eBPF device program attached (gpubpf.py).
Standard library only.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from . import protocol as p
from .gangprep import prepare_gang
from .gpudevices import GpuDevices
from .jobcwd import ATTEMPT_DIR_VAR, cwd_problem
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
    work_dir: str  # the attempt dir made for it (HPCBATCH_ATTEMPT_DIR), its cwd by default
    timeout_s: int | None
    launch_key: str | None = None  # a gang node's: its launch server accepts this key


@dataclass(frozen=True)
class Refused:
    log_path: str
    reason: str


class JobPrep:
    """Prepares attempts for one agent: ``state`` its state dir, ``logs`` and ``work`` the
    dirs for jobs' logs and work dirs (plain strings: pathlib costs ~10 us per join)."""

    def __init__(
        self,
        state: str,
        logs: str,
        work: str,
        slots: SlotPool,
        workdirs: WorkDirs,
        host: str | None = None,
    ):
        self._state, self._logs, self._work = state, logs, work
        self.host = host or socket.gethostname()  # the node's name, in a cwd's reasons
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
        env[ATTEMPT_DIR_VAR] = attempt_dir = self._attempt_dir(safe, who)
        auto_dir = spec["cwd"] is None
        cwd = attempt_dir if auto_dir else str(spec["cwd"])
        problem = None if auto_dir else cwd_problem(cwd, who, self.host)
        program = None
        if problem is None:
            program, problem = resolve_cached(spec["command"][0], cwd, env["PATH"], self._resolved)
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
            self.workdirs.release(attempt_dir)
            return Refused(log_path, problem or "CannotStartContainerError")
        switch = who if who is not None and who.switch else None
        request = SpawnRequest(program, command, env, cwd, log_path, slot, switch, auto_dir)
        return Ready(attempt_id, request, attempt_dir, spec["timeout_s"], spec.get("launch_key"))

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

    def _attempt_dir(self, safe: str, who: RunAs | None) -> str:
        """The attempt's private directory, made (empty) and given to the job's user."""
        path = f"{self._work}/{safe}"
        self.workdirs.make(path)
        if who is not None:
            os.chown(path, who.uid, who.gid)  # the job's own scratch directory
        return path
