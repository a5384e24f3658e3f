"""GPU isolation by device: the driver's minors, the rules, the plan (v1 devices, else eBPF on
v2, else why neither), and real jobs that open GPU device nodes through a root agent whose
slots carry cgroup v1 ``devices`` rules (the eBPF path's real jobs: test_gpu_bpf.py).

The device test needs root and the v1 devices controller; it skips without them, saying why,
unless CI is set: then it fails, so CI (root, hybrid cgroups) always runs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client, poll_until
from gpu_stubs import GOLDEN, device_nodes, fake_driver, path_with, printing, run_open_job
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import Cgroups, Hierarchy, node_dir_name, parse_mountinfo, read_mounts
from hpcbatch_agent.gpudevices import (
    DRIVER_DIR_VAR,
    NO_CGROUPS_REASON,
    NO_CONTROLLER_REASON,
    NO_MINORS_REASON,
    NO_V2_REASON,
    GpuIsolation,
    V2Filter,
    device_rules,
    isolation_of,
    known_minors,
    parse_gpu_information,
    plan_devices,
    read_driver_minors,
)
from hpcbatch_agent.gpus import parse_nvidia_smi

DRIVER = GOLDEN / "proc_driver_nvidia"
GPU0 = "GPU-3f1c9a2e-7b4d-4e8a-9c6f-1a2b3c4d5e6f"  # index 0; the golden driver's minor 4
GPU1 = "GPU-8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d"  # index 1; minor 5

HYBRID = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PURE_V2 = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def two_gpus() -> list[p.GpuInfo]:
    return parse_nvidia_smi((GOLDEN / "nvidia_smi_2x_h100.csv").read_text())


# --- pure ----------------------------------------------------------------------------------


def test_the_drivers_information_file_gives_uuid_and_minor() -> None:
    text = (DRIVER / "gpus" / "0000:18:00.0" / "information").read_text()
    assert parse_gpu_information(text) == (GPU0, 4)
    assert parse_gpu_information("Model: x\n") == (None, None)
    assert read_driver_minors(str(DRIVER)) == {GPU0: 4, GPU1: 5}
    assert read_driver_minors("/nonexistent") == {}


def test_minors_come_from_the_driver_else_from_nvidia_smis_index() -> None:
    assert known_minors(two_gpus(), {}, None) == {GPU0: 0, "0": 0, GPU1: 1, "1": 1}
    from_driver = known_minors(two_gpus(), {GPU0: 4, GPU1: 5}, None)
    assert from_driver == {GPU0: 4, "0": 4, GPU1: 5, "1": 5}
    # Without an inventory: the driver's boards, and a configured index taken as its minor.
    assert known_minors([], {GPU0: 4}, [2, "GPU-x"]) == {"2": 2, GPU0: 4}
    no_uuid: p.GpuInfo = {"index": 3, "uuid": None, "name": None, "memory_mib": None}
    assert known_minors([no_uuid], {}, None) == {"3": 3}


def test_rules_deny_every_minor_but_the_given_ones_and_allow_those() -> None:
    assert device_rules({5, 4, 9}, {5}) == [
        ("devices.deny", b"c 195:4 rwm"),
        ("devices.allow", b"c 195:5 rwm"),
        ("devices.deny", b"c 195:9 rwm"),
    ]
    assert device_rules(set(), set()) == []


def test_plan_v1_devices_else_ebpf_on_the_v2_tree_or_say_why_neither() -> None:
    hybrid = parse_mountinfo(HYBRID)
    v1 = Hierarchy("/sys/fs/cgroup/devices", 1, ("devices",))
    assert plan_devices(hybrid, {"devices": "/", "": "/"}) == v1
    pure_v2 = parse_mountinfo(PURE_V2)
    assert plan_devices(pure_v2, {"": "/"}) == V2Filter("/sys/fs/cgroup")
    assert plan_devices(hybrid, {"": "/"}) == V2Filter("/sys/fs/cgroup/unified")  # v1 unjoined
    assert plan_devices(hybrid[:2], {"devices": "/"}, prefer_filter=True) == NO_V2_REASON
    # The test switch: eBPF in the hybrid host's unified tree though v1 devices exist.
    preferred = plan_devices(hybrid, {"devices": "/", "": "/"}, prefer_filter=True)
    assert preferred == V2Filter("/sys/fs/cgroup/unified")
    assert plan_devices([], {}) == NO_CONTROLLER_REASON
    assert plan_devices(hybrid[:2], {"devices": "/"}) == v1


def test_isolation_is_devices_only_where_slots_carry_the_rules() -> None:
    none = Cgroups.disabled()
    planned = Hierarchy("/sys/fs/cgroup/devices", 1, ("devices",))
    known = {GPU0: 0}
    assert isolation_of(False, {}, None, none) == GpuIsolation("env")  # no GPUs: nothing to say
    assert isolation_of(True, {}, None, none) == GpuIsolation("env", NO_MINORS_REASON)
    assert isolation_of(True, known, None, none) == GpuIsolation("env", NO_CGROUPS_REASON)
    assert isolation_of(True, known, NO_CONTROLLER_REASON, none).reason == NO_CONTROLLER_REASON
    reason = isolation_of(True, known, planned, none).reason
    assert reason is not None and "/sys/fs/cgroup/devices is not usable" in reason
    with_devices = Cgroups([planned], "n.0", 0)
    assert isolation_of(True, known, planned, with_devices) == GpuIsolation("devices")


def test_isolation_on_v2_is_devices_once_the_ebpf_probe_passed() -> None:
    v2 = V2Filter("/sys/fs/cgroup")
    known = {GPU0: 0}
    slots_in_v2 = Cgroups([Hierarchy("/sys/fs/cgroup", 2, ("memory",))], "n.0", 0)
    assert isolation_of(True, known, v2, slots_in_v2) == GpuIsolation("devices")
    refused = "cgroup v2: cannot load an eBPF device program: Operation not permitted [EPERM]"
    assert isolation_of(True, known, v2, slots_in_v2, refused) == GpuIsolation("env", refused)
    reason = isolation_of(True, known, v2, Cgroups.disabled()).reason  # no v2 slots (not root)
    assert reason is not None and "cgroup v2 tree at /sys/fs/cgroup is not usable" in reason
    v1_only = Cgroups([Hierarchy("/sys/fs/cgroup/memory", 1, ("memory",))], "n.0", 0)
    assert isolation_of(True, known, v2, v1_only).mode == "env"


# --- real jobs on device nodes -----------------------------------------------------------------


@pytest.fixture
def devices_host() -> None:
    why = None
    if os.geteuid() != 0:
        why = "GPU device isolation needs a root agent"
    elif not isinstance(plan_devices(*read_mounts()), Hierarchy):
        why = f"no cgroup v1 devices controller here: {plan_devices(*read_mounts())}"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def test_a_job_opens_only_its_own_gpus_device(
    devices_host: None, start_agent, tmp_path: Path
) -> None:
    # The stub's two boards have minors 200 and 201 in a fake driver dir: no real GPU's.
    driver = fake_driver(tmp_path, [("0000:18:00.0", GPU0, 200), ("0000:2a:00.0", GPU1, 201)])
    nodes = device_nodes(tmp_path, (200, 201, 255))  # 255: nvidiactl
    env = {
        "PATH": path_with(printing(tmp_path, "nvidia_smi_2x_h100.csv")),
        DRIVER_DIR_VAR: str(driver),
    }
    agent: AgentProcess = start_agent(env_extra=env)
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert (node["gpu_isolation"], "gpu_isolation_reason" in node) == ("devices", False)
    assert [p.gpu_id(g) for g in node["gpus"]] == [GPU0, GPU1]

    opened = {
        attempt: [w for w in run_open_job(client, attempt, gpus, nodes) if "=" not in w]
        for attempt, gpus in (
            ("gpu0", [GPU0]),
            ("none", []),
            ("gpu1", ["1"]),
            ("both", [GPU0, GPU1]),
        )
    }  # one after the other: "gpu1" reuses the slot "gpu0" denied minor 201 in
    assert {attempt: [e == "EPERM" for e in errors] for attempt, errors in opened.items()} == {
        "gpu0": [False, True, False],
        "none": [True, True, False],
        "gpu1": [True, False, False],
        "both": [False, False, False],
    }
    if not os.path.exists("/proc/driver/nvidia"):  # no driver: an allowed node has no device
        assert {e for errors in opened.values() for e in errors} == {"EPERM", "ENXIO"}
    client.close()

    node_dir = node_dir_name("n1", str(agent.state_dir.resolve()))
    devices_dir = Path(plan_devices(*read_mounts()).path) / "hpcbatch" / node_dir  # type: ignore[union-attr]
    assert devices_dir.is_dir()
    agent.stop()
    poll_until(lambda: not devices_dir.exists(), what=f"{devices_dir} to be removed")


def test_without_cgroups_the_node_says_why_gpus_are_kept_apart_by_env_only(
    start_agent, tmp_path: Path
) -> None:
    env = {"PATH": path_with(printing(tmp_path, "nvidia_smi_2x_h100.csv"))}
    agent = start_agent("--no-cgroups", env_extra=env)
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert (node["gpu_isolation"], node["gpu_isolation_reason"]) == ("env", NO_CGROUPS_REASON)
    client.close()


def test_a_cpu_only_host_gets_no_devices_cgroup(devices_host: None, start_agent, tmp_path) -> None:
    agent = start_agent(env_extra={"PATH": str(tmp_path)})  # no nvidia-smi
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert (node["gpus"], node["gpu_isolation"], "gpu_isolation_reason" in node) == (
        [],
        "env",
        False,
    )
    job = p.attempt_spec("cpu", ["cat", "/proc/self/cgroup"], env={"PATH": os.defpath})
    client.send(p.launch([job]))
    update = client.wait_state("cpu", p.EXITED)
    lines = Path(update["log_path"]).read_text().splitlines()
    devices_line = next(line for line in lines if ":devices:" in line)
    assert "/hpcbatch/" not in devices_line
    client.close()
