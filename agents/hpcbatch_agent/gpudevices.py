"""Keeping a job off the GPUs it was not given: its slot's cgroup denies their device files.

Vocabulary:
    minor       a GPU's device file is ``/dev/nvidia<minor>``, a character device 195:<minor>.
                Read from the driver's ``/proc/driver/nvidia/gpus/*/information`` ("GPU
                UUID:" and "Device Minor:") where it exists; else assumed to equal
                nvidia-smi's index (both count the boards in PCI bus order unless something
                reorders them; a configured index with no inventory is taken as its minor too).
    known       GPU id (protocol.gpu_id: UUID, or index as a string) -> minor, for every GPU of
                the host: all of nvidia-smi's list, not only this node's share, since a job
                must not reach the boards of the machine's other virtual nodes either.
    universe    every minor the host has shown since the agent started. It never shrinks: a
                board that fell off nvidia-smi's list stays denied to every job.
    mechanism   how a slot denies: the v1 ``devices`` controller where the host has one;
                else, where the slots live in a v2 tree (a pure v2 host), an eBPF device
                program attached to the slot's v2 dir (gpubpf.py), once a probe at start
                showed the kernel lets the agent load and attach one.
    rules       v1: per attempt, one ``c 195:<minor> rwm`` write per minor of the universe
                into the slot's dir: to ``devices.deny`` for those the attempt was not given,
                to ``devices.allow`` for those it was (a slot is reused, and its last attempt
                may have had other GPUs). v2: the program denying the same minors, attached
                in place of the last attempt's. Every other device stays allowed (nvidiactl
                195:255, nvidia-uvm, nvidia-modeset, nvidia-caps): CUDA needs them, and none
                of them reaches a board by itself.
    isolation   what the hello reports as ``gpu_isolation``: "devices" when every job's slot
                denies (either mechanism: the agent's log says which), else "env" (only
                CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES, which the head sets, keep
                jobs apart), with ``gpu_isolation_reason`` on a host with GPUs.

A MIG id (``MIG-...``) names no board of nvidia-smi's ``--query-gpu`` list: it allows no minor
here. Parsing and planning are pure; ``start_devices`` probes and ``GpuDevices`` writes or
attaches. (Tests only: ``HPCBATCH_AGENT_GPU_FILTER=bpf`` takes the eBPF path where the v1
controller exists too, keeping the hybrid host's v2 tree for the slots, so that path can be
tested on a development machine.) Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .agentlog import log
from .cgroups import DEVICES, Cgroups, Hierarchy, Mount, read_mounts, v2_mount
from .gpubpf import NVIDIA_MAJOR, DevicePrograms
from .protocol import GpuInfo, gpu_id

DRIVER_DIR = "/proc/driver/nvidia"
DRIVER_DIR_VAR = "HPCBATCH_AGENT_NVIDIA_PROC"  # tests only: a fake driver dir
FILTER_VAR = "HPCBATCH_AGENT_GPU_FILTER"  # tests only: "bpf" prefers the eBPF program
NO_CONTROLLER_REASON = "neither a cgroup v1 devices controller nor a cgroup v2 tree is mounted"
NO_V2_REASON = f"{FILTER_VAR}=bpf, but no cgroup v2 tree is mounted"
NO_CGROUPS_REASON = "cgroups are off (serve --no-cgroups)"
NO_MINORS_REASON = (
    "the GPUs' device numbers are unknown: nvidia-smi listed none and the driver has no "
    "/proc/driver/nvidia/gpus"
)


@dataclass(frozen=True)
class GpuIsolation:
    mode: str  # "devices" | "env"
    reason: str | None = None


@dataclass(frozen=True)
class V2Filter:
    """The plan to deny through eBPF device programs on slots in the v2 tree at ``path``."""

    path: str


DevicePlan = Hierarchy | V2Filter | str  # v1 devices, eBPF on v2, or why neither


# --- pure ----------------------------------------------------------------------------------


def parse_gpu_information(text: str) -> tuple[str | None, int | None]:
    """(UUID, minor) from a /proc/driver/nvidia/gpus/<bus id>/information file."""
    uuid: str | None = None
    minor: int | None = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key.strip() == "GPU UUID" and value:
            uuid = value
        elif key.strip() == "Device Minor" and value.isdigit():
            minor = int(value)
    return uuid, minor


def known_minors(
    gpus: Iterable[GpuInfo], driver: Mapping[str, int], configured: Sequence[int | str] | None
) -> dict[str, int]:
    """GPU id -> minor for every GPU the host is known to have (see the module docstring).
    A GPU is also known by its index as a string, which is its id where it has no UUID."""
    known: dict[str, int] = {}
    for index in configured or ():
        if isinstance(index, int):
            known[str(index)] = index
    known.update(driver)
    for gpu in gpus:
        uuid = gpu["uuid"]
        minor = driver[uuid] if uuid is not None and uuid in driver else gpu["index"]
        known[str(gpu["index"])] = known[gpu_id(gpu)] = minor
    return known


def device_rules(universe: Iterable[int], allowed: set[int]) -> list[tuple[str, bytes]]:
    """(file, rule) writes giving a slot exactly the ``allowed`` minors of the universe."""
    return [
        (
            "devices.allow" if minor in allowed else "devices.deny",
            f"c {NVIDIA_MAJOR}:{minor} rwm".encode(),
        )
        for minor in sorted(universe)
    ]


def plan_devices(
    mounts: list[Mount], proc_cgroup: dict[str, str], prefer_filter: bool = False
) -> DevicePlan:
    """The v1 devices hierarchy this process belongs to; else the v2 tree it belongs to, for
    eBPF device programs; or why neither. ``prefer_filter`` (tests only): v2 first."""
    unified = v2_mount(mounts, proc_cgroup)
    if prefer_filter:
        return V2Filter(unified.path) if unified is not None else NO_V2_REASON
    if DEVICES in proc_cgroup:
        mount = next((m for m in mounts if m.version == 1 and DEVICES in m.controllers), None)
        if mount is not None:
            return Hierarchy(mount.path, 1, (DEVICES,))
    return V2Filter(unified.path) if unified is not None else NO_CONTROLLER_REASON


def isolation_of(
    has_gpus: bool,
    known: Mapping[str, int],
    planned: DevicePlan | None,
    cgroups: Cgroups,
    filter_problem: str | None = None,
) -> GpuIsolation:
    """What the hello says. ``has_gpus``: the node offers GPUs or the host has some;
    ``known``: known_minors; ``planned``: what plan_here gave (None: cgroups are off);
    ``filter_problem``: why the eBPF probe failed (DevicePrograms.probe), if it did."""
    if cgroups.devices_index is not None:
        return GpuIsolation("devices")
    usable_v2 = isinstance(planned, V2Filter) and cgroups.v2_index is not None
    if usable_v2 and filter_problem is None:
        return GpuIsolation("devices")
    if not has_gpus:
        return GpuIsolation("env")
    if not known:
        return GpuIsolation("env", NO_MINORS_REASON)
    if planned is None:
        return GpuIsolation("env", NO_CGROUPS_REASON)
    if isinstance(planned, str):
        return GpuIsolation("env", planned)
    if isinstance(planned, V2Filter):
        return GpuIsolation(
            "env",
            filter_problem
            or f"the cgroup v2 tree at {planned.path} is not usable: the agent cannot make a "
            "cgroup there (it needs root)",
        )
    return GpuIsolation(
        "env",
        f"the cgroup v1 devices controller at {planned.path} is not usable: the agent cannot "
        "make a cgroup there and step into it (it needs root)",
    )


# --- I/O -----------------------------------------------------------------------------------


def read_driver_minors(directory: str | None = None) -> dict[str, int]:
    """UUID -> minor of every GPU the NVIDIA driver lists ({} without the driver)."""
    root = directory or os.environ.get(DRIVER_DIR_VAR) or DRIVER_DIR
    found: dict[str, int] = {}
    try:
        entries = sorted(os.listdir(f"{root}/gpus"))
    except OSError:
        return found
    for entry in entries:
        try:
            with open(f"{root}/gpus/{entry}/information", encoding="utf-8", errors="replace") as f:
                uuid, minor = parse_gpu_information(f.read())
        except OSError:
            continue
        if uuid is not None and minor is not None:
            found[uuid] = minor
    return found


def plan_here(known: Mapping[str, int], cgroups_on: bool) -> DevicePlan | None:
    """plan_devices for this process where GPU minors are known and cgroups on; None otherwise
    (a CPU-only host pays nothing for a hierarchy that would deny nothing)."""
    if not known or not cgroups_on:
        return None
    return plan_devices(*read_mounts(), prefer_filter=os.environ.get(FILTER_VAR) == "bpf")


def start_devices(
    cgroups: Cgroups, known: Mapping[str, int], planned: DevicePlan | None, has_gpus: bool
) -> tuple[GpuDevices | None, GpuIsolation]:
    """The slots' GPU denier, if any, and what the hello says; on the eBPF plan, after a probe
    in the v2 node dir (``cgroups`` came from Cgroups.detect with ``planned``). Logs which."""
    programs: DevicePrograms | None = None
    problem: str | None = None
    if isinstance(planned, V2Filter) and cgroups.v2_index is not None:
        programs = DevicePrograms()
        problem = programs.probe(cgroups.node_dirs[cgroups.v2_index])
    isolation = isolation_of(has_gpus, known, planned, cgroups, problem)
    devices: GpuDevices | None = None
    if isolation.mode == "devices":
        devices = GpuDevices(cgroups, known, programs)
    elif programs is not None:
        programs.close()
    if has_gpus:
        if devices is None:
            log(f"GPUs kept apart by CUDA_VISIBLE_DEVICES only: {isolation.reason}")
        else:
            log(f"GPUs kept apart by {devices.mechanism} on each job's cgroup")
    return devices, isolation


class GpuDevices:
    """The host's GPU minors and what each attempt's slot gets: v1 rules (``cgroups`` has a
    devices hierarchy: ``cgroups.devices_index``), or with ``programs`` an eBPF program in
    the slot's v2 dir (``cgroups.v2_index``)."""

    def __init__(
        self, cgroups: Cgroups, known: Mapping[str, int], programs: DevicePrograms | None = None
    ) -> None:
        index = cgroups.devices_index if programs is None else cgroups.v2_index
        assert index is not None
        self.cgroups = cgroups
        self.index = index
        self.programs = programs
        where = cgroups.plan[index].path
        self.mechanism = (
            f"the cgroup v1 devices controller ({where})"
            if programs is None
            else f"an eBPF device program (cgroup v2, {where})"
        )
        self.known: dict[str, int] = {}
        self.universe: set[int] = set()
        self.learn(known)

    def learn(self, known: Mapping[str, int]) -> None:
        """A newer inventory's ids and minors (a re-detection); the universe only grows."""
        self.known.update(known)
        self.universe.update(known.values())

    def restrict(self, dirs: list[str], given: Iterable[str]) -> None:
        """Deny a slot every GPU but ``given`` (GPU ids) for its next attempt: write its
        rules, or attach its program. OSError if that fails: the attempt must not start."""
        directory = dirs[self.index]
        allowed = {self.known[g] for g in given if g in self.known}
        if self.programs is not None:
            self.programs.attach(directory, self.universe - allowed)
            return
        for name, rule in device_rules(self.universe, allowed):
            self.cgroups.write_file(directory, name, rule)
