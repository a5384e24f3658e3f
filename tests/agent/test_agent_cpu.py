"""The CPU time used by an agent's jobs, as its heartbeats' ``cpu_s`` reports it: counted by
the slots' cgroup counters (on this hybrid host: a v1 cpuacct tree of its own) or, under
``--no-cgroups``, from /proc and the rusage of reaped jobs. Real agents, real jobs."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_harness import DEADLINE_S, AgentProcess, Client, poll_until
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import Cgroups, parse_mountinfo
from hpcbatch_agent.cpumeter import stat_cpu_ticks
from hpcbatch_agent.slots import SlotPool

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"
BUSY_S = 1.5


def spin(seconds: float = BUSY_S) -> list[str]:
    """A job that uses ``seconds`` of CPU (time it spends waiting for a CPU does not count)."""
    return [sys.executable, "-c", SPIN.format(s=seconds)]


class Beats:
    """Reads heartbeats and checks that ``cpu_s`` never decreases."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.values: list[float] = []
        self.ends: dict[str, dict] = {}  # final updates, by attempt id

    def next(self) -> dict:
        beat = self.client.wait_message("heartbeat")
        assert "cpu_s" in beat, beat
        assert not self.values or beat["cpu_s"] >= self.values[-1], (self.values, beat)
        self.values.append(beat["cpu_s"])
        return beat

    def cpu_s(self) -> float:
        return float(self.next()["cpu_s"])

    def run(self, attempt_id: str, command: list[str]) -> float:
        """Run a job to its end; the CPU seconds the total gained meanwhile (read from a
        heartbeat sent after the end)."""
        before = self.cpu_s()
        self.client.send(p.launch([p.attempt_spec(attempt_id, command)]))
        end = self.client.wait_state(attempt_id, p.EXITED)
        assert end["exit_code"] == 0, end
        self.ends[attempt_id] = end
        return self.cpu_s() - before


def _connected(start_agent: Callable[..., AgentProcess], *args: str) -> Beats:
    agent = start_agent("--heartbeat-s", "0.05", *args)
    client = Client(agent.state_dir)
    client.hello()
    return Beats(client)


MODES = ["cgroups", "proc"]


@pytest.fixture(params=MODES)
def beats(request: pytest.FixtureRequest, start_agent: Callable[..., AgentProcess]) -> Beats:
    """A connected agent counting through cgroups (skipped where none are writable) or,
    with --no-cgroups, through /proc."""
    if request.param == "cgroups":
        request.getfixturevalue("host")
        return _connected(start_agent)
    return _connected(start_agent, "--no-cgroups")


def test_a_busy_job_counts_and_a_sleeping_one_does_not(beats: Beats) -> None:
    assert beats.cpu_s() >= 0
    busy = beats.run("busy", spin())
    assert 1.0 <= busy < BUSY_S + 1.0, beats.values
    asleep = beats.run("asleep", ["sleep", "1.5"])
    assert asleep < 0.2, beats.values
    # Each final update carries what its attempt used.
    assert 1.0 <= beats.ends["busy"]["cpu_s"] <= busy + 0.01, beats.ends
    assert 0 <= beats.ends["asleep"]["cpu_s"] < 0.2, beats.ends
    beats.client.close()


def test_the_total_only_grows_across_reused_slots(beats: Beats) -> None:
    """Attempts one after another reuse one slot (its counter is cumulative): each counts
    from the counter's value at its start, and the total never goes back."""
    gained = [beats.run(f"a{index}", spin(0.5)) for index in range(3)]
    assert all(0.3 <= each < 1.3 for each in gained), (gained, beats.values)
    assert all(0.3 <= end["cpu_s"] < 1.3 for end in beats.ends.values()), beats.ends
    assert beats.values[-1] - beats.values[0] >= 1.0
    beats.client.close()


def test_a_running_job_counts_as_it_runs_in_its_cgroup(
    host: Cgroups, start_agent: Callable[..., AgentProcess]
) -> None:
    """The busy process is the job's child, which the job has not waited for yet: only the
    slot's counter sees its time while it runs."""
    assert host.cpu_counter is not None
    if "/sys/fs/cgroup/unified" in [m.path for m in parse_mountinfo(_mountinfo())]:
        assert host.cpu_counter[1] == "cpuacct.usage"  # hybrid: counted through v1 cpuacct
    beats = _connected(start_agent)
    before = beats.cpu_s()
    job = ["sh", "-c", f"{' '.join(map(_quote, spin(3.0)))}; true"]
    beats.client.send(p.launch([p.attempt_spec("child", job)]))

    def counted_while_running() -> bool:
        beat = beats.next()
        return beat["running"] == 1 and beat["cpu_s"] - before >= 0.5

    poll_until(counted_while_running, timeout_s=DEADLINE_S, what="cpu_s to grow during the job")
    beats.client.send(p.kill("child", "done"))
    beats.client.wait_state("child", p.EXITED)
    beats.client.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_adopted_job_counts_from_its_adoption_only(
    mode: str, request: pytest.FixtureRequest, start_agent: Callable[..., AgentProcess]
) -> None:
    """The agent is killed while a busy job runs; its successor adopts the job and counts
    what the job uses from then on, not what it used before (that was the first agent's)."""
    args = ["--no-cgroups"] if mode == "proc" else []
    if mode == "cgroups":
        request.getfixturevalue("host")
    first = start_agent("--heartbeat-s", "0.05", *args)
    beats = Beats(Client(first.state_dir))
    beats.client.hello()
    start = beats.cpu_s()
    beats.client.send(p.launch([p.attempt_spec("long", spin(4.0))]))
    poll_until(lambda: beats.cpu_s() - start >= 1.0, what="the first agent to count 1 s")
    beats.client.close()
    first.kill9()
    second = start_agent("--heartbeat-s", "0.05", *args, state_dir=first.state_dir)
    beats = Beats(Client(second.state_dir))
    assert {a["attempt_id"]: a["state"] for a in beats.client.hello()["attempts"]} == {
        "long": p.RUNNING
    }
    poll_until(lambda: beats.next()["running"] == 1 and beats.values[-1] > 0.2, what="growth")
    end = beats.client.wait_state("long", p.EXITED)
    assert end["exit_code"] == 0 and "cpu_s" not in end  # not seen whole: no count of its own
    total = beats.cpu_s()
    assert 0.2 < total <= 4.0 - 1.0 + 0.3, beats.values
    beats.client.close()


def test_slots_count_through_v2_cpu_stat_across_reuse(host: Cgroups, tmp_path: Path) -> None:
    """With the v2 tree kept (as for GPU eBPF filters), v2's cpu.stat counts, even on a
    hybrid host whose v2 tree has no controllers: a busy process in a slot adds its time,
    and a sleeping one in the same slot, reused, adds nearly nothing."""
    cgroups = Cgroups.detect("cpu-v2", str(tmp_path), keep_unified=True)
    if cgroups.v2_index is None:
        pytest.skip("no usable cgroup v2 tree here")
    assert cgroups.cpu_counter == (cgroups.v2_index, "cpu.stat")
    pool = SlotPool(cgroups)
    try:
        busy = _run_in_slot(pool, spin(0.5))
        assert 0.3 <= busy / 1e9 < 1.3
        asleep = _run_in_slot(pool, ["sleep", "0.5"])
        assert 0 <= asleep / 1e9 < 0.2
        assert pool._next_index == 1  # one slot, reused
    finally:
        pool.close(2.0)


def _run_in_slot(pool: SlotPool, command: list[str]) -> int:
    """Run ``command`` in a slot of the pool (joining every hierarchy through
    cgroup.procs) to its end; what ``cpu_done_ns`` gained when the slot came back."""
    slot = pool.acquire(1, 0)
    before = pool.cpu_done_ns

    def join() -> None:
        for directory in slot.dirs:
            Path(directory, "cgroup.procs").write_text("0")

    subprocess.run(command, preexec_fn=join, check=True, timeout=DEADLINE_S)
    poll_until(lambda: pool.cgroups.is_empty(slot.dirs), what="the slot to empty")
    pool.finish(slot, None, 0)
    return pool.cpu_done_ns - before


def _mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def test_stat_cpu_ticks_golden() -> None:
    # /proc/<pid>/stat after "pid (comm) ": utime 11, stime 12, cutime 13, cstime 14, start 19.
    fields = b"S 1 2 3 0 -1 0 0 0 0 0 150 20 7 3 20 0 1 0 4242 0".split()
    assert stat_cpu_ticks(fields, 4242) == 180
    assert stat_cpu_ticks(fields, None) == 180
    assert stat_cpu_ticks(fields, 4243) is None  # another process under a reused pid
    assert stat_cpu_ticks(fields[:10], None) is None


def test_heartbeat_cpu_s_is_optional_and_checked() -> None:
    p.check_agent_message(p.heartbeat(1, 0))  # an older agent's
    p.check_agent_message(p.heartbeat(1, 0, 0.0))
    p.check_agent_message(p.heartbeat(1, 0, 12.5))
    p.check_agent_message({**p.heartbeat(1, 0), "cpu_s": 3})  # JSON may spell it as an int
    for bad in (-0.5, math.nan, math.inf, "1.0", True, None, 2**70):
        message = {**p.heartbeat(1, 0), "cpu_s": bad}
        with pytest.raises(p.MessageError, match="heartbeat has a bad 'cpu_s'"):
            p.check_agent_message(message)
    beat = p.decode(p.encode(p.heartbeat(1, 2, 1.25)))
    assert beat["cpu_s"] == 1.25


def test_update_cpu_s_is_optional_and_checked() -> None:
    end = p.attempt_update("a", p.EXITED, "/l", exit_code=0, cpu_s=0.5)
    assert "cpu_s" not in p.attempt_update("a", p.EXITED, "/l", exit_code=0)
    p.check_agent_message(p.updates([end, p.attempt_update("b", p.RUNNING, "/l", pid=1)]))
    for bad in (-1, math.nan, "0.5"):
        with pytest.raises(p.MessageError, match=r"updates.updates\[1\] has a bad 'cpu_s'"):
            p.check_agent_message(p.updates([end, {**end, "cpu_s": bad}]))
    hello = p.agent_hello(
        {"name": "n", "vcpus": 1, "memory_mib": 1, "gpus": [], "cgroups": "none", "hostname": "n"},
        [{**end, "cpu_s": math.inf}],
    )
    with pytest.raises(p.MessageError, match=r"hello.attempts\[0\] has a bad 'cpu_s'"):
        p.check_agent_message(hello)
