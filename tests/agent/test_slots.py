"""The slot pool: cgroups reused by one attempt after another, on this host's real cgroups.

Needs root and writable cgroups like test_cgroups.py: skipped without them, failed under CI.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import Client, cgroups_of, poll_until
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import CONTROLLERS, Cgroups
from hpcbatch_agent.slots import Slot, SlotPool


def _limit(directory: str, name: str) -> str:
    return Path(directory, name).read_text().strip()


def _memory_limit(host: Cgroups, dirs: dict[str, str]) -> int | None:
    """The slot's memory limit in bytes, None for none."""
    version = next(h.version for h in host.plan if "memory" in h.controllers)
    text = _limit(dirs["memory"], "memory.max" if version == 2 else "memory.limit_in_bytes")
    return None if text == "max" or int(text) >= 1 << 62 else int(text)


def _cpu_quota(host: Cgroups, dirs: dict[str, str]) -> int | None:
    version = next(h.version for h in host.plan if "cpu" in h.controllers)
    text = (
        _limit(dirs["cpu"], "cpu.max").split()[0]
        if version == 2
        else _limit(dirs["cpu"], "cpu.cfs_quota_us")
    )
    return None if text in ("max", "-1") else int(text)


def test_next_attempt_reuses_the_slot_with_its_own_limits(
    host: Cgroups, client: Client, tmp_path: Path
) -> None:
    shapes = [(1, 64), (2, 0), (1, 32)]  # a cut, a raise to none, a cut again (memsw order)
    seen: list[dict[str, str]] = []
    for index, (vcpus, memory_mib) in enumerate(shapes):
        gate = tmp_path / f"gate{index}"
        job = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"]
        spec = p.attempt_spec(f"a{index}", job, vcpus=vcpus, memory_mib=memory_mib)
        client.send(p.launch([spec]))
        dirs = cgroups_of(host, client.wait_state(f"a{index}", p.RUNNING)["pid"])
        assert _memory_limit(host, dirs) == (memory_mib << 20 or None)
        assert _cpu_quota(host, dirs) == vcpus * 100_000
        assert _limit(dirs["pids"], "pids.max") == "4096"
        seen.append(dirs)
        gate.touch()
        assert client.wait_state(f"a{index}", p.EXITED)["exit_code"] == 0
    assert seen[0] == seen[1] == seen[2]


@pytest.fixture
def pool(host: Cgroups, tmp_path: Path) -> Iterator[SlotPool]:
    cgroups = Cgroups.detect("slots-test", str(tmp_path))
    assert cgroups.enforced == list(CONTROLLERS)
    slots = SlotPool(cgroups)
    yield slots
    slots.close(wait_s=5.0)


def _join(pool: SlotPool, slot: Slot) -> subprocess.Popen[bytes]:
    """A process that sits in the slot, as a job's straggler would."""
    joins = slot.enter + slot.joins
    script = 'for f in "$@"; do echo 0 > "$f"; done; echo in; exec sleep 300'
    child = subprocess.Popen(["sh", "-c", script, "sh", *joins], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"in\n"
    return child


def test_a_slot_still_holding_a_process_is_not_handed_out(pool: SlotPool) -> None:
    first = pool.acquire(1, 64)
    straggler = _join(pool, first)
    try:
        pool.finish(first, None, 0)  # the attempt ended, its straggler has not (yet)
        assert first.name in pool.draining
        second = pool.acquire(1, 64)
        assert second.name != first.name
        poll_until(lambda: straggler.poll() is not None, what="straggler killed")
        poll_until(lambda: (pool.tick(0), first.name not in pool.draining)[1], what="drained")
        # Drained, it is free again: handed out next, empty.
        assert [slot.name for slot in pool.free] == [first.name]
        again = pool.acquire(2, 0)
        assert again.name == first.name and pool.cgroups.is_empty(again.dirs)
        pool.finish(again, 0, 0)
        pool.finish(second, 0, 0)
    finally:
        if straggler.poll() is None:
            straggler.kill()
        straggler.wait()
        if straggler.stdout:
            straggler.stdout.close()


def test_idle_slots_are_removed_and_all_go_at_close(pool: SlotPool) -> None:
    slots = [pool.acquire(1, 0) for _ in range(3)]
    for slot in slots:
        pool.finish(slot, 0, 1_000)
    assert len(pool.free) == 3 and all(os.path.isdir(d) for s in slots for d in s.dirs)
    pool.tick(1_000 + 60_000)
    assert not pool.free
    assert not any(os.path.exists(d) for s in slots for d in s.dirs)
    kept = pool.acquire(1, 0)
    pool.finish(kept, 0, 2_000)
    pool.close(wait_s=5.0)
    assert not any(os.path.exists(d) for d in [*kept.dirs, *pool.cgroups.node_dirs])
