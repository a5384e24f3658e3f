"""Enforcing each attempt's vCPU, memory and pids limits with cgroups (v2 or v1).

Vocabulary:
    hierarchy   one mounted cgroup tree the agent uses: the v2 unified tree, or a v1 tree of
                one or more controllers (``cpu,cpuacct`` are often mounted together). Each
                carries the controllers, of memory / cpu / pids, it enforces; a v2 tree with
                none of them is kept for ``cgroup.kill`` only where no v1 tree is used.
    node dir    ``<hierarchy>/hpcbatch/<safe node name>.<hash of the state dir>``: everything
                one agent creates. The hash keeps apart agents (virtual nodes, test runs)
                that share a machine and even a node name.
    slot        ``<node dir>/s<N>``, one per hierarchy: a cgroup the agent reuses for one
                attempt after another (slots.py), its limits written before the job starts.
                Nothing of the job ever runs outside it: in a v1 hierarchy the agent's own
                thread steps into the slot's ``tasks`` for the spawn and back out (the child
                inherits it); in v2 the job's first process (a fork child of the agent, forkexec.py) joins
                through ``cgroup.procs`` before it execs the command.
    home        the agent's own cgroup in a v1 hierarchy, where its thread steps back to.
    enforced    the controllers actually enforced; ``version`` names the hierarchy kind doing
                it ("v2", "v1", "none") and is what the hello reports as ``node.cgroups``.
    devices     a v1 ``devices`` hierarchy the caller may add (gpudevices.py plans it on a
                host with GPUs): probed and given slots like the others, it holds no limits
                here; gpudevices.py writes each attempt's rules into the slot's dir. Where
                GPUs are kept apart by an eBPF device program instead (gpubpf.py), the caller
                asks to keep the v2 tree (``keep_unified``) and the program is attached to the
                slot's dir in it (``v2_index``).
    cpu counter the slot file counting its processes' CPU time (cpucounters.py); a v1
                cpuacct tree may join the plan for counting alone (``plan_cpuacct``).

Detection is a pure function of /proc/self/mountinfo, /proc/self/cgroup and the v2 root's
cgroup.controllers (``plan_hierarchies``, golden-tested), followed by a probe that creates
the node dir, enables the controllers on the way down (v2 ``cgroup.subtree_control``) and
creates one throw-away child to check its limit files exist. v2 is preferred for every
controller it offers; v1 serves the others; whatever fails the probe is not enforced.
Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
from collections.abc import Iterable

from .cgroupfiles import KeptFiles
from .cgroupmounts import CONTROLLERS as CONTROLLERS
from .cgroupmounts import DEVICES as DEVICES
from .cgroupmounts import Hierarchy as Hierarchy
from .cgroupmounts import Mount as Mount
from .cgroupmounts import parse_mountinfo as parse_mountinfo
from .cgroupmounts import parse_proc_cgroup as parse_proc_cgroup
from .cgroupmounts import unescape_mount_path as unescape_mount_path
from .cgroupmounts import v2_mount as v2_mount
from .cpucounters import CPUACCT, cpuacct_mount_path, find_cpu_counter, parse_cpu_usage_ns
from .procfs import read_head
from .spool import safe_name

CPU_PERIOD_US = 100_000
DEFAULT_PIDS_MAX = 4096
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
TOP = "hpcbatch"
# Files an attempt dir must have for a controller to count as enforceable.
LIMIT_FILES = {
    (2, "memory"): "memory.max",
    (2, "cpu"): "cpu.max",
    (2, "pids"): "pids.max",
    (1, "memory"): "memory.limit_in_bytes",
    (1, "cpu"): "cpu.cfs_quota_us",
    (1, "pids"): "pids.max",
    (1, DEVICES): "devices.deny",
    (1, CPUACCT): "cpuacct.usage",
}


# --- pure detection ------------------------------------------------------------------------


def plan_hierarchies(
    mounts: list[Mount],
    proc_cgroup: dict[str, str],
    v2_controllers: str | None,
    keep_unified: bool = False,
) -> list[Hierarchy]:
    """Which hierarchy enforces which controller: v2 for every controller its root offers
    (``v2_controllers`` is the text of its cgroup.controllers), v1 for the rest.

    A v2 tree with none of them still ends whole trees with cgroup.kill, but on a hybrid
    host, where v1 trees enforce the limits, it is left out: one more group per job costs
    a mkdir, a rmdir, a migration and PSI accounting on every context switch of the job
    (~8% of launch throughput), and v1's cgroup.procs already names every process to kill.
    ``keep_unified`` keeps it anyway: an eBPF device program needs a v2 group per job."""
    plan: list[Hierarchy] = []
    unified = v2_mount(mounts, proc_cgroup)
    offered = set((v2_controllers or "").split())
    if unified is not None:
        plan.append(Hierarchy(unified.path, 2, tuple(c for c in CONTROLLERS if c in offered)))
    taken = set(plan[0].controllers) if plan else set()
    v1_plan: dict[str, list[str]] = {}
    for controller in CONTROLLERS:
        if controller in taken or controller not in proc_cgroup:
            continue
        mount = next((m for m in mounts if m.version == 1 and controller in m.controllers), None)
        if mount is not None:
            v1_plan.setdefault(mount.path, []).append(controller)
    if v1_plan and plan and not plan[0].controllers and not keep_unified:
        plan.clear()
    plan += [Hierarchy(path, 1, tuple(names)) for path, names in v1_plan.items()]
    return plan


def plan_cpuacct(
    mounts: list[Mount], proc_cgroup: dict[str, str], plan: list[Hierarchy]
) -> Hierarchy | None:
    """A v1 cpuacct tree to add to ``plan`` only to count CPU time (cpucounters.py)."""
    path = cpuacct_mount_path(mounts, proc_cgroup, plan)
    return None if path is None else Hierarchy(path, 1, (CPUACCT,))


def version_of(plan: Iterable[Hierarchy]) -> str:
    """The hierarchy kind enforcing limits: "v2" if v2 enforces any, else "v1" or "none"."""
    versions = {h.version for h in plan if set(h.controllers) & set(CONTROLLERS)}
    return "v2" if 2 in versions else "v1" if 1 in versions else "none"


def enforced_of(plan: Iterable[Hierarchy]) -> list[str]:
    names = {c for h in plan for c in h.controllers}
    return [c for c in CONTROLLERS if c in names]


def limit_writes(
    version: int,
    controllers: Iterable[str],
    vcpus: int,
    memory_mib: int,
    pids_max: int,
    optional: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """(file, value) of every limit a slot must hold for one attempt, in order, "no limit"
    spelled out: a reused slot still holds its previous attempt's values. ``optional`` names
    the files that exist only on some kernels (memsw, swap.max). 0 = no limit. The v1 cfs
    period is never written, so it stays the kernel default (100 ms)."""
    writes: list[tuple[str, str]] = []
    names = set(controllers)
    if "memory" in names:
        limit = str(memory_mib * 1024 * 1024) if memory_mib > 0 else ""
        if version == 2:
            writes.append(("memory.max", limit or "max"))
            if "memory.swap.max" in optional:
                writes.append(("memory.swap.max", "0" if limit else "max"))
        else:
            writes.append(("memory.limit_in_bytes", limit or "-1"))
            if "memory.memsw.limit_in_bytes" in optional:
                writes.append(("memory.memsw.limit_in_bytes", limit or "-1"))
    if "cpu" in names:
        quota = str(vcpus * CPU_PERIOD_US) if vcpus > 0 else ""
        if version == 2:
            writes.append(("cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}"))
        else:
            writes.append(("cpu.cfs_quota_us", quota or "-1"))
    if "pids" in names:
        writes.append(("pids.max", str(pids_max) if pids_max > 0 else "max"))
    return writes


def _bytes_or_unlimited(value: str) -> float:
    return float("inf") if value in ("-1", "max") else int(value)


def order_writes(writes: list[tuple[str, str]], old: dict[str, str]) -> list[tuple[str, str]]:
    """The writes that change ``old`` (the values a slot holds), ordered so that each one is
    accepted: v1 refuses a memsw limit below the memory limit, so a raise writes memsw
    first and a cut writes it last."""
    changed = [(name, value) for name, value in writes if old.get(name) != value]
    memory = next((v for n, v in changed if n == "memory.limit_in_bytes"), None)
    previous = old.get("memory.limit_in_bytes")
    raised = memory is not None and previous is not None
    if raised and _bytes_or_unlimited(memory or "") > _bytes_or_unlimited(previous or ""):
        changed.sort(key=lambda item: item[0] != "memory.memsw.limit_in_bytes")
    return changed


def parse_oom_kills(text: str) -> int | None:
    """The ``oom_kill N`` count of v2 memory.events or v1 memory.oom_control."""
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "oom_kill" and words[1].isdigit():
            return int(words[1])
    return None


def node_dir_name(node_name: str, state_dir: str) -> str:
    digest = hashlib.sha256(state_dir.encode()).hexdigest()[:8]
    return f"{safe_name(node_name)}.{digest}"


# --- I/O -----------------------------------------------------------------------------------


def read_mounts() -> tuple[list[Mount], dict[str, str]]:
    """This process's cgroup mounts and its /proc/self/cgroup."""
    mounts = parse_mountinfo(_read("/proc/self/mountinfo") or "")
    return mounts, parse_proc_cgroup(_read("/proc/self/cgroup") or "")


def _read(path: str) -> str | None:
    # os.open + os.read: a buffered text file costs ~3x as much on these tiny kernel files.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _mkdir(path: str) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)


class Cgroups:
    """The hierarchies one agent enforces limits with, and its per-attempt operations.
    An instance with no hierarchies (``Cgroups.disabled()``) does nothing."""

    def __init__(self, plan: list[Hierarchy], node_dir: str, pids_max: int) -> None:
        self.plan = plan
        self.pids_max = pids_max
        self.node_dirs = [f"{h.path}/{TOP}/{node_dir}" for h in plan]
        self.version = version_of(plan)
        self.enforced = enforced_of(plan)
        self.optional: frozenset[str] = frozenset()
        self.v2_index = next((i for i, h in enumerate(plan) if h.version == 2), None)
        self._kill_index = self.v2_index
        self._memory = next(
            ((i, h.version) for i, h in enumerate(plan) if "memory" in h.controllers), None
        )
        # Kernels before 4.13 have no v1 oom_kill counter: memory.failcnt stands in.
        self.has_oom_counter = True
        self._limits: dict[tuple[int, int], list[list[tuple[str, str]]]] = {}
        self._home_fds: list[int] | None = None
        self._v1_pids = any(h.version == 1 and "pids" in h.controllers for h in plan)
        self._files = KeptFiles()  # slot files read or written per attempt, kept open
        self.devices_index = next((i for i, h in enumerate(plan) if DEVICES in h.controllers), None)
        self.cpu_counter: tuple[int, str] | None = None  # (hierarchy index, file): detect()

    @classmethod
    def disabled(cls) -> Cgroups:
        return cls([], "", DEFAULT_PIDS_MAX)

    @classmethod
    def detect(
        cls,
        node_name: str,
        state_dir: str,
        pids_max: int = DEFAULT_PIDS_MAX,
        thread_join: bool = True,
        devices: Hierarchy | None = None,
        keep_unified: bool = False,
    ) -> Cgroups:
        """Plan from this host's files, then keep what the probe proves usable. Without
        ``thread_join`` jobs' first processes join v1 hierarchies through cgroup.procs, as on v2.
        ``devices``: a v1 devices hierarchy to use too (gpudevices.plan_devices), last.
        ``keep_unified``: keep the v2 tree even on a hybrid host (see plan_hierarchies)."""
        mounts, proc_cgroup = read_mounts()
        unified = v2_mount(mounts, proc_cgroup)
        controllers = _read(f"{unified.path}/cgroup.controllers") if unified else None
        plan = plan_hierarchies(mounts, proc_cgroup, controllers, keep_unified)
        cpuacct = plan_cpuacct(mounts, proc_cgroup, plan)
        if cpuacct is not None:
            plan.append(cpuacct)
        if devices is not None:
            plan.append(devices)
        name = node_dir_name(node_name, state_dir)
        usable = [
            kept
            for h in plan
            if (kept := _probe(h, name, proc_cgroup if thread_join else {})) is not None
        ]
        cgroups = cls(usable, name, pids_max)
        cgroups.optional = frozenset(
            f
            for d in cgroups.node_dirs
            for f in ("memory.swap.max", "memory.memsw.limit_in_bytes", "cgroup.kill")
            if os.path.exists(f"{d}/{f}")
        )
        cgroups.cpu_counter = find_cpu_counter(cgroups.plan, cgroups.node_dirs)
        if "cgroup.kill" not in cgroups.optional:
            cgroups._kill_index = None
        if cgroups._memory is not None:
            index, version = cgroups._memory
            events = "memory.events" if version == 2 else "memory.oom_control"
            text = _read(f"{cgroups.node_dirs[index]}/{events}") or ""
            cgroups.has_oom_counter = parse_oom_kills(text) is not None
        return cgroups

    @property
    def active(self) -> bool:
        return bool(self.plan)

    def write_file(self, directory: str, name: str, data: bytes) -> None:
        """One write to a slot's file, kept open (a devices rule: one rule a write)."""
        self._files.write(directory, name, data)

    def cpu_usage_ns(self, dirs: list[str]) -> int | None:
        """The CPU time, in ns, the processes of the dirs have used since the dirs were made
        (ended ones included); None without a counter, or if it cannot be read."""
        if self.cpu_counter is None or len(dirs) != len(self.plan):
            return None
        index, name = self.cpu_counter
        return parse_cpu_usage_ns(name, self._files.read(dirs[index], name))

    def child_dirs(self, name: str) -> list[str]:
        """``<node dir>/<name>`` in each hierarchy."""
        return [f"{d}/{name}" for d in self.node_dirs]

    def join_files(self, dirs: list[str]) -> tuple[list[str], list[str]]:
        """(enter, joins) for a slot's dirs: the v1 ``tasks`` files the agent's thread writes
        "0" (itself) into around a spawn, and the v2 ``cgroup.procs`` files the job's first
        process writes itself into.

        v1 ``tasks`` moves the writing thread alone: the kernel then skips the global
        cgroup_threadgroup_rwsem, whose write side stalls every fork on the host for an RCU
        grace period; moving the agent's thread in and out costs ~0.01 ms per hierarchy.
        v2 domain groups accept only cgroup.procs (the whole process, so the job's own)."""
        enter: list[str] = []
        joins: list[str] = []
        for hierarchy, directory in zip(self.plan, dirs, strict=True):
            if hierarchy.version == 1 and hierarchy.home:
                enter.append(f"{directory}/tasks")
            else:
                joins.append(f"{directory}/cgroup.procs")
        return enter, joins

    def enter(self, files: list[str]) -> None:
        """Move the calling thread into a slot (the ``enter`` files); OSError leaves it home."""
        try:
            for path in files:
                directory, name = path.rsplit("/", 1)
                self._files.write(directory, name, b"0")
        except OSError:
            self.leave()
            raise

    def leave(self) -> None:
        """Move the calling thread back to the agent's own cgroups (files kept open)."""
        if self._home_fds is None:
            self._home_fds = [
                os.open(f"{h.home}/tasks", os.O_WRONLY | os.O_CLOEXEC)
                for h in self.plan
                if h.version == 1 and h.home
            ]
        for fd in self._home_fds:
            os.write(fd, b"0")

    def limits(self, vcpus: int, memory_mib: int) -> list[list[tuple[str, str]]]:
        """Per hierarchy, the (file, value) pairs an attempt's slot must hold; cached, as a
        node sees few distinct shapes."""
        key = (vcpus, memory_mib)
        found = self._limits.get(key)
        if found is None:
            found = [
                limit_writes(
                    h.version, h.controllers, vcpus, memory_mib, self.pids_max, self.optional
                )
                for h in self.plan
            ]
            self._limits[key] = found
        return found

    def unlimited(self) -> list[list[tuple[str, str]]]:
        """Per hierarchy, what a new cgroup's limit files hold: no limits at all."""
        return [limit_writes(h.version, h.controllers, 0, 0, 0, self.optional) for h in self.plan]

    def write_limits(
        self, dirs: list[str], wanted: list[list[tuple[str, str]]], held: list[dict[str, str]]
    ) -> None:
        """Write the values of ``wanted`` that differ from ``held`` (what each dir holds now),
        updating ``held`` as each write lands."""
        for directory, writes, old in zip(dirs, wanted, held, strict=True):
            for name, value in order_writes(writes, old):
                _write(f"{directory}/{name}", value)
                old[name] = value

    def is_empty(self, dirs: list[str]) -> bool:
        """No process left in any of the dirs (v2: nor below them).

        v1 asks ``pids.current`` where the pids controller is a v1 hierarchy: reading a v1
        ``cgroup.procs`` builds a sorted pid list under the lock that every fork and exit on
        the host takes, which with an agent per node and a read per job costs the jobs
        themselves more than the read. A job's processes share one slot in every hierarchy
        (only root could move one out of some), so one count answers for all v1 trees."""
        for hierarchy, directory in zip(self.plan, dirs, strict=True):
            if hierarchy.version == 2:
                events = self._files.read(directory, "cgroup.events")
                if events is None or b"populated 0" not in events:
                    return False
            elif "pids" in hierarchy.controllers:
                if self._files.read(directory, "pids.current") != b"0\n":
                    return False
            elif not self._v1_pids and read_head(f"{directory}/cgroup.procs") != b"":
                return False
        return True

    def oom_count(self, dirs: list[str]) -> int | None:
        """The cumulative ``oom_kill`` count of the dirs' memory cgroup (None: no memory
        controller, or a kernel without the counter: then memory.failcnt)."""
        if self._memory is None or not dirs:
            return None
        index, version = self._memory
        if not self.has_oom_counter:
            failcnt = (_read(f"{dirs[index]}/memory.failcnt") or "").strip()
            return int(failcnt) if failcnt.isdigit() else None
        events = "memory.events" if version == 2 else "memory.oom_control"
        return parse_oom_kills((self._files.read(dirs[index], events) or b"").decode())

    def oom_killed(self, count: int | None, base: int, signum: int | None) -> bool:
        """Whether the OOM killer struck since the counter stood at ``base``."""
        if count is None or count <= base:
            return False
        # Without the counter, failcnt only says the limit was hit: SIGKILL must have ended it.
        return self.has_oom_counter or signum == signal.SIGKILL

    def reset_oom_fallback(self, dirs: list[str]) -> None:
        """Zero memory.failcnt (the old kernels' stand-in) of a slot about to be reused."""
        if self._memory is not None and not self.has_oom_counter and dirs:
            with contextlib.suppress(OSError):
                _write(f"{dirs[self._memory[0]]}/memory.failcnt", "0")

    def kill(self, dirs: list[str], signum: int) -> None:
        """Signal every process in the attempt's cgroup, including those that left its
        process group: SIGKILL through v2 cgroup.kill where it exists, else pid by pid."""
        if not dirs:
            return
        if signum == signal.SIGKILL and self._kill_index is not None:
            with contextlib.suppress(OSError):
                _write(f"{dirs[self._kill_index]}/cgroup.kill", "1")
                return
        for pid in _pids_in(dirs[0]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def kill_each(self, dirs: Iterable[str]) -> None:
        """SIGKILL whatever is left in each dir (stale dirs of a previous agent)."""
        for directory in dirs:
            try:
                _write(f"{directory}/cgroup.kill", "1")
            except OSError:
                for pid in _pids_in(directory):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)

    def remove(self, dirs: Iterable[str]) -> list[str]:
        """rmdir each dir; those still busy (processes dying) are returned for a retry."""
        busy: list[str] = []
        for directory in dirs:
            self._files.forget(directory)
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EAGAIN):
                    busy.append(directory)
        return busy

    def remove_node_dirs(self) -> None:
        for node_dir in self.node_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(node_dir)

    def stale(self, live: set[str]) -> list[str]:
        """Dirs under this node's dirs that are not in ``live`` (a previous agent's)."""
        found: list[str] = []
        for node_dir in self.node_dirs:
            with contextlib.suppress(OSError):
                for entry in os.scandir(node_dir):
                    if entry.is_dir(follow_symlinks=False) and entry.path not in live:
                        found.append(entry.path)
        return sorted(found)


def _pids_in(directory: str) -> list[int]:
    text = _read(f"{directory}/cgroup.procs") or ""
    return [int(word) for word in text.split() if word.isdigit()]


def _enable_down(hierarchy: Hierarchy, node_dir: str) -> tuple[str, ...]:
    """Create the node dir; on v2 enable the controllers at each level on the way down.
    Returns the controllers that made it to the node dir's subtree_control."""
    levels = [hierarchy.path, f"{hierarchy.path}/{TOP}", node_dir]
    wanted = list(hierarchy.controllers)
    for level in levels:
        _mkdir(level)
        if hierarchy.version != 2:
            continue
        for controller in list(wanted):
            try:
                _write(f"{level}/cgroup.subtree_control", f"+{controller}")
            except OSError:
                wanted.remove(controller)  # e.g. EBUSY: processes live in a non-root level
    return tuple(wanted)


def _probe(hierarchy: Hierarchy, name: str, proc_cgroup: dict[str, str]) -> Hierarchy | None:
    """The part of ``hierarchy`` the agent can use: it must make a child whose limit files
    exist. A v2 hierarchy left with no controllers still serves cgroup.kill. In v1 the
    agent's thread must also be able to step into the child and back home."""
    node_dir = f"{hierarchy.path}/{TOP}/{name}"
    probe = f"{node_dir}/.probe-{os.getpid()}"  # safe_name never starts with "."
    try:
        controllers = _enable_down(hierarchy, node_dir)
        _mkdir(probe)
    except OSError:
        return None
    home = ""
    try:
        usable = tuple(
            c for c in controllers if os.path.exists(f"{probe}/{LIMIT_FILES[hierarchy.version, c]}")
        )
        if hierarchy.version == 1 and usable:
            home = _thread_home(hierarchy, usable[0], proc_cgroup, probe)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)
    if not usable and hierarchy.version == 1:
        return None
    return Hierarchy(hierarchy.path, hierarchy.version, usable, home)


def _thread_home(
    hierarchy: Hierarchy, controller: str, proc_cgroup: dict[str, str], probe: str
) -> str:
    """The agent's own cgroup dir in a v1 hierarchy if its thread can move to ``probe``
    and back; "" if not (the job's first process then joins through cgroup.procs)."""
    own = proc_cgroup.get(controller)
    if own is None:
        return ""
    home = hierarchy.path + own.rstrip("/") if own != "/" else hierarchy.path
    try:
        _write(f"{probe}/tasks", "0")
    except OSError:
        return ""
    try:
        _write(f"{home}/tasks", "0")
    except OSError:
        # Stuck in the probe: stay there rather than fail; it is only removed when empty.
        return ""
    return home
