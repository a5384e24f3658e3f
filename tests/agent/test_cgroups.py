"""cgroup enforcement: golden detection, then real limits on real processes through an agent.

The enforcement tests need root and writable cgroups (v1 or v2). Without them they skip,
saying why, unless CI is set: then they fail, so CI on a capable host always runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from agent_harness import AgentProcess, Client, cgroups_of, poll_until, process_gone
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import (
    CONTROLLERS,
    OOM_REASON,
    Cgroups,
    Hierarchy,
    Mount,
    enforced_of,
    limit_writes,
    node_dir_name,
    order_writes,
    parse_mountinfo,
    parse_oom_kills,
    parse_proc_cgroup,
    plan_cpuacct,
    plan_hierarchies,
    version_of,
)
from hpcbatch_agent.cpucounters import parse_cpu_usage_ns

from hpcbatch.head.agents import _enforcement

# --- golden samples ------------------------------------------------------------------------

HYBRID_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/679c34da
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""

# Ubuntu 22.04 / Debian 12 with systemd: one unified tree.
PURE_V2_MOUNTINFO = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
PURE_V2_CGROUP = "0::/system.slice/hpcbatch-agent.service\n"
PURE_V2_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc\n"

# CentOS 7: v1 only, cpu and cpuacct mounted together.
CENTOS7_MOUNTINFO = """\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpuacct,cpu
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
33 25 0:29 / /sys/fs/cgroup/pids rw,nosuid shared:16 - cgroup cgroup rw,pids
"""
CENTOS7_CGROUP = """\
11:pids:/system.slice/sshd.service
4:memory:/system.slice/sshd.service
3:cpuacct,cpu:/system.slice/sshd.service
1:name=systemd:/system.slice/sshd.service
"""

# A process started with `ip netns exec`: a fresh /sys with no cgroup mounts at all.
NETNS_MOUNTINFO = """\
1500 1400 0:22 / / rw,relatime - ext4 /dev/vda rw
1501 1500 0:90 / /sys rw,relatime - sysfs n1 rw
"""


def _plan(mountinfo: str, cgroup: str, controllers: str | None) -> list[Hierarchy]:
    return plan_hierarchies(parse_mountinfo(mountinfo), parse_proc_cgroup(cgroup), controllers)


def test_golden_hybrid_host_uses_v1_controllers() -> None:
    plan = _plan(HYBRID_MOUNTINFO, HYBRID_CGROUP, "")
    assert plan == [
        Hierarchy("/sys/fs/cgroup/memory", 1, ("memory",)),
        Hierarchy("/sys/fs/cgroup/cpu", 1, ("cpu",)),
        Hierarchy("/sys/fs/cgroup/pids", 1, ("pids",)),
    ]
    assert (version_of(plan), enforced_of(plan)) == ("v1", ["memory", "cpu", "pids"])


def test_golden_pure_v2_host_prefers_v2() -> None:
    plan = _plan(PURE_V2_MOUNTINFO, PURE_V2_CGROUP, PURE_V2_CONTROLLERS)
    assert plan == [Hierarchy("/sys/fs/cgroup", 2, ("memory", "cpu", "pids"))]
    assert (version_of(plan), enforced_of(plan)) == ("v2", ["memory", "cpu", "pids"])


def test_golden_v2_without_some_controllers_falls_back_per_controller() -> None:
    # memory bound to the unified tree: no v1 memory line in /proc/self/cgroup any more.
    cgroup = HYBRID_CGROUP.replace("4:memory:/process_api/679c34da\n", "")
    plan = _plan(HYBRID_MOUNTINFO, cgroup, "memory")
    assert plan[0] == Hierarchy("/sys/fs/cgroup/unified", 2, ("memory",))
    assert [h.controllers for h in plan[1:]] == [("cpu",), ("pids",)]
    assert version_of(plan) == "v2"


def test_golden_v1_only_host_with_comounted_cpu() -> None:
    mounts = parse_mountinfo(CENTOS7_MOUNTINFO)
    assert Mount("/sys/fs/cgroup/cpu,cpuacct", 1, frozenset({"cpu", "cpuacct"})) in mounts
    plan = _plan(CENTOS7_MOUNTINFO, CENTOS7_CGROUP, None)
    assert [(h.path, h.controllers) for h in plan] == [
        ("/sys/fs/cgroup/memory", ("memory",)),
        ("/sys/fs/cgroup/cpu,cpuacct", ("cpu",)),
        ("/sys/fs/cgroup/pids", ("pids",)),
    ]
    assert version_of(plan) == "v1"
    # The cpu tree counts CPU time (cpuacct.usage) too: no tree of its own for it.
    proc_cgroup = parse_proc_cgroup(CENTOS7_CGROUP)
    assert plan_cpuacct(mounts, proc_cgroup, plan) is None


def test_golden_cpu_counting_tree() -> None:
    mounts, proc_cgroup = parse_mountinfo(HYBRID_MOUNTINFO), parse_proc_cgroup(HYBRID_CGROUP)
    hybrid = plan_hierarchies(mounts, proc_cgroup, "")
    # Hybrid with cpu and cpuacct mounted apart: a cpuacct tree only to count.
    assert plan_cpuacct(mounts, proc_cgroup, hybrid) == Hierarchy(
        "/sys/fs/cgroup/cpuacct", 1, ("cpuacct",)
    )
    assert version_of([*hybrid, Hierarchy("/x", 1, ("cpuacct",))]) == "v1"
    assert enforced_of([Hierarchy("/x", 1, ("cpuacct",))]) == []
    # A v2 tree in the plan counts in every group (cpu.stat), controllers or not.
    kept = plan_hierarchies(mounts, proc_cgroup, "", keep_unified=True)
    assert plan_cpuacct(mounts, proc_cgroup, kept) is None
    without = {k: v for k, v in proc_cgroup.items() if k != "cpuacct"}
    assert plan_cpuacct(mounts, without, hybrid) is None  # not in this process's cgroups
    assert plan_cpuacct(parse_mountinfo(NETNS_MOUNTINFO), proc_cgroup, []) is None


def test_parse_cpu_usage_golden() -> None:
    v2_stat = b"usage_usec 1500123\nuser_usec 1400000\nsystem_usec 100123\nnr_periods 0\n"
    assert parse_cpu_usage_ns("cpu.stat", v2_stat) == 1_500_123_000
    assert parse_cpu_usage_ns("cpuacct.usage", b"1500123456\n") == 1_500_123_456
    assert parse_cpu_usage_ns("cpuacct.usage", b"") is None
    assert parse_cpu_usage_ns("cpu.stat", b"nr_periods 0\n") is None
    assert parse_cpu_usage_ns("cpu.stat", None) is None


def test_golden_v2_without_controllers_and_without_v1_serves_kill_only() -> None:
    plan = _plan(PURE_V2_MOUNTINFO, PURE_V2_CGROUP, "cpuset io\n")
    assert plan == [Hierarchy("/sys/fs/cgroup", 2, ())]
    assert (version_of(plan), enforced_of(plan)) == ("none", [])


def test_golden_no_cgroup_mounts_means_none() -> None:
    plan = _plan(NETNS_MOUNTINFO, HYBRID_CGROUP, None)
    assert (plan, version_of(plan), enforced_of(plan)) == ([], "none", [])
    assert _plan("", "", None) == []


def test_parse_proc_cgroup_and_escaped_mount_points() -> None:
    assert parse_proc_cgroup(CENTOS7_CGROUP)["cpu"] == "/system.slice/sshd.service"
    assert parse_proc_cgroup("0::/a\n") == {"": "/a"}
    line = "41 31 0:38 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
    assert parse_mountinfo(line) == [Mount("/sys/fs/my cgroup", 2, frozenset())]


def test_limit_writes_golden() -> None:
    memsw = frozenset({"memory.memsw.limit_in_bytes"})
    assert limit_writes(1, CONTROLLERS, 2, 64, 4096, memsw) == [
        ("memory.limit_in_bytes", "67108864"),
        ("memory.memsw.limit_in_bytes", "67108864"),
        ("cpu.cfs_quota_us", "200000"),
        ("pids.max", "4096"),
    ]
    assert limit_writes(2, CONTROLLERS, 1, 64, 20, frozenset({"memory.swap.max"})) == [
        ("memory.max", "67108864"),
        ("memory.swap.max", "0"),
        ("cpu.max", "100000 100000"),
        ("pids.max", "20"),
    ]
    # A reused slot still holds its last attempt's limits: "none" is written out.
    assert limit_writes(2, CONTROLLERS, 0, 0, 0, frozenset({"memory.swap.max"})) == [
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("cpu.max", "max 100000"),
        ("pids.max", "max"),
    ]
    assert limit_writes(1, CONTROLLERS, 0, 0, 20, memsw) == [
        ("memory.limit_in_bytes", "-1"),
        ("memory.memsw.limit_in_bytes", "-1"),
        ("cpu.cfs_quota_us", "-1"),
        ("pids.max", "20"),
    ]
    assert limit_writes(2, (), 4, 64, 20) == []  # a v2 tree kept only for cgroup.kill


def test_order_writes_skips_held_values_and_orders_memsw() -> None:
    memsw = frozenset({"memory.memsw.limit_in_bytes"})
    held = dict(limit_writes(1, CONTROLLERS, 1, 64, 20, memsw))
    assert order_writes(limit_writes(1, CONTROLLERS, 1, 64, 20, memsw), held) == []
    # Raising: memsw first, as v1 refuses memsw below the memory limit.
    assert order_writes(limit_writes(1, CONTROLLERS, 2, 128, 20, memsw), held) == [
        ("memory.memsw.limit_in_bytes", "134217728"),
        ("memory.limit_in_bytes", "134217728"),
        ("cpu.cfs_quota_us", "200000"),
    ]
    assert order_writes(limit_writes(1, CONTROLLERS, 1, 0, 20, memsw), held)[0] == (
        "memory.memsw.limit_in_bytes",
        "-1",
    )
    # Cutting: memory first.
    assert order_writes(limit_writes(1, CONTROLLERS, 1, 32, 20, memsw), held) == [
        ("memory.limit_in_bytes", "33554432"),
        ("memory.memsw.limit_in_bytes", "33554432"),
    ]


def test_parse_oom_kills_golden() -> None:
    v2_events = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n"
    v1_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
    assert (parse_oom_kills(v2_events), parse_oom_kills(v1_control)) == (1, 0)
    assert parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n") is None


def test_node_dirs_are_kept_apart_per_state_dir() -> None:
    assert node_dir_name("n/1", "/a") != node_dir_name("n/1", "/b")
    assert node_dir_name("n/1", "/a").startswith("n%2F1.")


def test_head_describes_enforcement() -> None:
    assert _enforcement("v1", ["memory", "cpu", "pids"]) == "cgroups v1 (memory, cpu, pids)"
    assert _enforcement("v2") == "cgroups v2"
    assert _enforcement("none").startswith("none: no writable cgroups")


# --- real enforcement ------------------------------------------------------------------------


def node_cgroups(host: Cgroups, agent: AgentProcess) -> Cgroups:
    """The cgroups of an agent started with node name n1."""
    return Cgroups(host.plan, node_dir_name("n1", str(agent.state_dir.resolve())), 0)


def slot_of(host: Cgroups, agent: AgentProcess, name: str = "s0") -> dict[str, str]:
    """{controller or "kill": dir} of one slot of an agent started with node name n1."""
    dirs = node_cgroups(host, agent).child_dirs(name)
    return {c: d for h, d in zip(host.plan, dirs, strict=True) for c in h.controllers or ("kill",)}


def _empty(dirs: Iterable[str]) -> bool:
    return all(not Path(d, "cgroup.procs").read_text().split() for d in dirs)


def _all_gone(paths: Iterable[str]) -> bool:
    return not any(os.path.exists(path) for path in paths)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


ALLOCATE_200_MIB = "b = b'x' * (200 << 20); print(len(b))"  # bytes * n writes every page


def test_hello_reports_what_is_enforced(host: Cgroups, client: Client) -> None:
    node = client.hello()["node"]
    assert (node["cgroups"], node["enforced"]) == (host.version, ["memory", "cpu", "pids"])
    mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    if "/sys/fs/cgroup/unified" in [m.path for m in mounts]:
        assert node["cgroups"] == "v1"  # hybrid: the unified tree has no controllers


def test_memory_limit_oom_kill_is_reported(host: Cgroups, client: Client, agent) -> None:
    client.send(p.launch([p.attempt_spec("oom", _python(ALLOCATE_200_MIB), memory_mib=64)]))
    result = client.wait_state("oom", p.EXITED, timeout_s=60)
    assert (result["exit_code"], result["signal"], result["reason"]) == (None, 9, OOM_REASON)
    poll_until(lambda: _empty(slot_of(host, agent).values()), what="slot emptied")
    # The next attempt gets the same slot, whose oom_kill count is not zero any more: it
    # fails on its own, which is no OOM.
    job = ["sh", "-c", "cat /proc/self/cgroup; exit 3"]
    client.send(p.launch([p.attempt_spec("after-oom", job, memory_mib=64)]))
    result = client.wait_state("after-oom", p.EXITED)
    assert (result["exit_code"], result["reason"]) == (3, None)
    mount = next(h.path for h in host.plan if "memory" in h.controllers)
    assert slot_of(host, agent)["memory"][len(mount) :] in Path(result["log_path"]).read_text()


def test_without_a_memory_limit_the_same_job_succeeds(host: Cgroups, client: Client) -> None:
    client.send(p.launch([p.attempt_spec("big", _python(ALLOCATE_200_MIB), memory_mib=0)]))
    result = client.wait_state("big", p.EXITED, timeout_s=60)
    assert (result["exit_code"], result["reason"]) == (0, None)
    assert Path(result["log_path"]).read_text() == f"{200 << 20}\n"


def test_pids_max_caps_forks(host: Cgroups, start_agent) -> None:
    agent = start_agent("--pids-max", "20")
    client = Client(agent.state_dir)
    client.hello()
    script = "i=0; while [ $i -lt 50 ]; do sleep 60 & i=$((i+1)); done; echo all-started"
    client.send(p.launch([p.attempt_spec("forks", ["sh", "-c", script])]))
    result = client.wait_state("forks", p.EXITED, timeout_s=30)
    log = Path(result["log_path"]).read_text()
    assert result["exit_code"] not in (0, None) and "all-started" not in log, log
    assert "fork" in log.lower(), log
    poll_until(lambda: _empty(slot_of(host, agent).values()), what="slot emptied")
    client.close()


# Two busy processes for 1.5 s of wall time; prints the CPU-seconds they got per second.
BUSY_TWO_CPUS = """
import os, time
start = time.monotonic()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() - start < 1.5:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
times = os.times()
print(round((times.children_user + times.children_system) / (time.monotonic() - start), 3))
"""


def test_cpu_quota_is_written_and_throttles(host: Cgroups, client: Client, agent) -> None:
    client.send(p.launch([p.attempt_spec("cpu", _python(BUSY_TWO_CPUS), vcpus=1)]))
    pid = client.wait_state("cpu", p.RUNNING)["pid"]
    cpu_dir = cgroups_of(host, pid)["cpu"]
    cpu_hierarchy = next(h for h in host.plan if "cpu" in h.controllers)
    if cpu_hierarchy.version == 2:
        assert Path(cpu_dir, "cpu.max").read_text().split() == ["100000", "100000"]
    else:
        assert Path(cpu_dir, "cpu.cfs_quota_us").read_text().strip() == "100000"
        assert Path(cpu_dir, "cpu.cfs_period_us").read_text().strip() == "100000"
    result = client.wait_state("cpu", p.EXITED, timeout_s=30)
    assert result["exit_code"] == 0
    # Unthrottled, two busy processes would get up to 2 CPU-seconds per second; a loaded
    # machine only lowers the figure, so the bound holds however busy the host is.
    assert float(Path(result["log_path"]).read_text()) <= 1.2


def test_a_batch_starts_each_job_in_its_own_slot_and_the_agent_goes_home(
    host: Cgroups, client: Client, agent
) -> None:
    # One launch message: the agent's thread steps from slot to slot between the spawns,
    # also past a job whose spawn fails inside one (an argument list over the kernel's
    # limit), and home once at the end.
    home = Path(f"/proc/{agent.pid}/cgroup").read_text()
    too_long = ["true", "x" * (4 << 20)]
    client.send(
        p.launch(
            [
                p.attempt_spec("small", ["sleep", "300"], memory_mib=64),
                p.attempt_spec("e2big", too_long, memory_mib=96),
                p.attempt_spec("large", ["sleep", "300"], memory_mib=128),
                p.attempt_spec("unlimited", ["sleep", "300"], memory_mib=0),
            ]
        )
    )
    failed = client.wait_state("e2big", p.FAILED_TO_START)
    assert "Argument list too long" in failed["reason"]
    slots = {
        name: cgroups_of(host, client.wait_state(name, p.RUNNING)["pid"])
        for name in ("small", "large", "unlimited")
    }
    assert len({tuple(sorted(found.items())) for found in slots.values()}) == 3
    memory = next(h for h in host.plan if "memory" in h.controllers)
    limit = "memory.max" if memory.version == 2 else "memory.limit_in_bytes"
    limits = {
        name: Path(found["memory"], limit).read_text().strip() for name, found in slots.items()
    }
    assert limits["small"] == str(64 << 20) and limits["large"] == str(128 << 20)
    assert limits["unlimited"] not in (str(64 << 20), str(96 << 20), str(128 << 20))
    for task in Path(f"/proc/{agent.pid}/task").iterdir():  # every thread of the agent
        assert (task / "cgroup").read_text() == home
    for name in slots:
        client.send(p.kill(name, "enough"))
    for name in slots:
        assert client.wait_state(name, p.EXITED)["signal"] == signal.SIGTERM


def test_escaped_processes_die_and_dirs_go_when_the_job_ends(
    host: Cgroups, client: Client, agent, tmp_path: Path
) -> None:
    pid_file, gate = tmp_path / "escaped.pid", tmp_path / "gate"
    # setsid leaves the job's process group: only the cgroup still holds it.
    script = (
        f"setsid sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; "
        f"while [ ! -e {gate} ]; do sleep 0.02; done"
    )
    client.send(p.launch([p.attempt_spec("escape", ["sh", "-c", script])]))
    pid = client.wait_state("escape", p.RUNNING)["pid"]
    escaped = int(poll_until(lambda: pid_file.exists() and pid_file.read_text(), what="pid"))
    dirs = cgroups_of(host, pid)
    procs = Path(dirs["pids"], "cgroup.procs").read_text().split()
    assert str(escaped) in procs
    gate.touch()
    assert client.wait_state("escape", p.EXITED)["exit_code"] == 0
    poll_until(lambda: process_gone(escaped), what="escaped process killed")
    poll_until(lambda: _empty(dirs.values()), what="slot emptied")


def test_kill_reaches_escaped_processes(host: Cgroups, client: Client, agent, tmp_path) -> None:
    pid_file = tmp_path / "escaped.pid"
    script = f"setsid sh -c 'trap \"\" TERM; sleep 300' & echo $! > {pid_file}; wait"
    client.send(p.launch([p.attempt_spec("victim", ["sh", "-c", script])]))
    client.wait_state("victim", p.RUNNING)
    escaped = int(poll_until(lambda: pid_file.exists() and pid_file.read_text(), what="pid"))
    client.send(p.kill("victim", "Terminated by user"))
    result = client.wait_state("victim", p.EXITED)
    assert result["reason"] == "Terminated by user"
    poll_until(lambda: process_gone(escaped), what="escaped process killed")
    poll_until(lambda: _empty(slot_of(host, agent).values()), what="slot emptied")


def test_running_job_keeps_its_cgroup_across_an_agent_restart(
    host: Cgroups, start_agent, tmp_path: Path
) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    gate = tmp_path / "gate"
    job = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"]
    client.send(p.launch([p.attempt_spec("long", job, memory_mib=32)]))
    pid = client.wait_state("long", p.RUNNING)["pid"]
    client.close()
    dirs = cgroups_of(host, pid)
    agent.kill9()
    again = start_agent(state_dir=agent.state_dir)
    client = Client(again.state_dir)
    assert {u["attempt_id"]: u["state"] for u in client.hello()["attempts"]} == {"long": p.RUNNING}
    assert str(pid) in Path(dirs["memory"], "cgroup.procs").read_text().split()
    gate.touch()
    assert client.wait_state("long", p.EXITED)["exit_code"] == 0
    # Its limits unknown to the new agent, the re-adopted slot is removed, not reused.
    poll_until(lambda: _all_gone(dirs.values()), what="adopted slot removed")
    client.close()


def test_stale_cgroups_are_killed_and_removed_at_start(
    host: Cgroups, start_agent, tmp_path: Path
) -> None:
    state_dir = (tmp_path / "agent").resolve()
    stale = Cgroups(host.plan, node_dir_name("n1", str(state_dir)), 0)
    stale_dirs = stale.child_dirs("gone%3A1") + stale.child_dirs("s0")
    for directory in stale_dirs:
        os.makedirs(directory)
    leftover = subprocess.Popen(["sleep", "300"])
    try:
        Path(stale_dirs[0], "cgroup.procs").write_text(str(leftover.pid))
        start_agent(state_dir=state_dir)
        poll_until(lambda: leftover.poll() is not None, what="stale process killed")
        assert leftover.returncode == -signal.SIGKILL
        poll_until(lambda: _all_gone(stale_dirs), what="stale cgroups removed")
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
        stale.remove(stale_dirs)


def test_no_cgroups_flag_runs_jobs_unenforced(host: Cgroups, start_agent) -> None:
    agent = start_agent("--no-cgroups")
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert (node["cgroups"], node["enforced"]) == ("none", [])
    client.send(p.launch([p.attempt_spec("free", _python(ALLOCATE_200_MIB), memory_mib=64)]))
    assert client.wait_state("free", p.EXITED, timeout_s=60)["exit_code"] == 0
    assert _all_gone(node_cgroups(host, agent).node_dirs)
    client.close()


def test_agent_exit_removes_its_node_dirs(host: Cgroups, start_agent) -> None:
    agent = start_agent()
    client = Client(agent.state_dir)
    client.hello()
    client.send(p.launch([p.attempt_spec("quick", ["true"])]))
    client.wait_state("quick", p.EXITED)
    node_dirs = node_cgroups(host, agent).node_dirs
    assert all(os.path.isdir(d) for d in node_dirs)
    client.close()
    agent.stop()
    assert _all_gone(node_dirs)


def test_jobs_can_join_through_the_shim_as_on_v2(
    host: Cgroups, start_agent, tmp_path: Path
) -> None:
    # --cgroup-join shim: the job's first process (a /bin/sh shim) joins its slot through
    # cgroup.procs and execs the command, the path every v2 host takes.
    for thread_join in (True, False):
        probed = Cgroups.detect("n1", str(tmp_path / f"probe-{thread_join}"), 0, thread_join)
        enter, joins = probed.join_files(probed.child_dirs("s0"))
        probed.remove_node_dirs()
        v1 = [h for h in probed.plan if h.version == 1]
        assert len(enter) == (len(v1) if thread_join else 0)
        assert all(f.endswith("/tasks") for f in enter)
        assert all(f.endswith("/cgroup.procs") for f in joins)
    agent = start_agent("--cgroup-join", "shim")
    client = Client(agent.state_dir)
    client.hello()
    client.send(
        p.launch(
            [
                p.attempt_spec("held", ["sleep", "300"], memory_mib=64),
                p.attempt_spec("code", ["sh", "-c", "exit 7"], memory_mib=64),
            ]
        )
    )
    pid = client.wait_state("held", p.RUNNING)["pid"]
    joined = cgroups_of(host, pid)
    assert joined in (slot_of(host, agent, "s0"), slot_of(host, agent, "s1"))
    memory = next(h for h in host.plan if "memory" in h.controllers)
    limit = "memory.max" if memory.version == 2 else "memory.limit_in_bytes"
    assert Path(joined["memory"], limit).read_text().strip() == str(64 << 20)
    exec_done = b"sleep\x00300\x00"  # the shim has exec'd the command: same pid
    poll_until(lambda: Path(f"/proc/{pid}/cmdline").read_bytes() == exec_done, what="exec")
    assert client.wait_state("code", p.EXITED)["exit_code"] == 7
    client.send(p.kill("held", "enough"))
    assert client.wait_state("held", p.EXITED)["signal"] == 15
    client.close()
