"""GPU isolation on cgroup v2: the eBPF device program (gpubpf.py), run by a small interpreter
of its opcodes and by the kernel, and real jobs of a root agent whose v2 slots carry it.

The bytecode's test interprets it on every kind of device access, for many denied sets, and
shows that a jump off by one either way would be caught. The kernel tests load and attach
programs in the v2 tree (on a hybrid host, its unified tree: the agent's test switch
HPCBATCH_AGENT_GPU_FILTER=bpf keeps it for the slots). They skip without root; as root,
without a v2 tree or where the kernel refuses eBPF, they skip too, except under CI, where
they fail (CI is root on a host that allows it).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import DEADLINE_S, AgentProcess, Client, poll_until
from gpu_stubs import device_nodes, fake_driver, path_with, printing, run_open_job
from hpcbatch_agent import gpubpf
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import (
    Hierarchy,
    node_dir_name,
    parse_mountinfo,
    parse_proc_cgroup,
    plan_hierarchies,
    read_mounts,
    v2_mount,
)
from hpcbatch_agent.gpubpf import (
    AND64_K,
    EXIT,
    INSN,
    JEQ_K,
    JNE_K,
    LDX_W,
    MOV64_K,
    DevicePrograms,
    device_program,
    syscall_number,
)
from hpcbatch_agent.gpudevices import DRIVER_DIR_VAR, FILTER_VAR

GPU0 = "GPU-3f1c9a2e-7b4d-4e8a-9c6f-1a2b3c4d5e6f"  # the 2x H100 golden's index 0
GPU1 = "GPU-8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d"  # index 1
MASK64 = (1 << 64) - 1
BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4

# --- the bytecode, interpreted ---------------------------------------------------------------


class Refused(Exception):
    """What the verifier would refuse: an unknown opcode, a jump out of the program, a read
    of a register never written, a load from anything but the ctx's three fields."""


def interpret(code: bytes, access_type: int, major: int, minor: int) -> int:
    """r0 at exit of ``code`` run on one bpf_cgroup_dev_ctx (r1 points at it)."""
    ctx = struct.pack("<III", access_type, major, minor)
    registers: dict[int, int | str] = {1: "ctx"}
    count = len(code) // INSN.size

    def value(register: int) -> int:
        found = registers.get(register)
        if not isinstance(found, int):
            raise Refused(f"r{register} read before it holds a number")
        return found

    pc = 0
    for _ in range(10_000):
        if not 0 <= pc < count:
            raise Refused(f"jumped to {pc}, outside 0..{count - 1}")
        code_, registers_, off, imm = INSN.unpack_from(code, pc * INSN.size)
        dst, src = registers_ & 0xF, registers_ >> 4
        pc += 1
        if code_ == LDX_W:
            if registers.get(src) != "ctx" or off not in (0, 4, 8):
                raise Refused(f"load from r{src}+{off}")
            registers[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code_ == AND64_K:
            registers[dst] = value(dst) & (imm & MASK64)
        elif code_ == MOV64_K:
            registers[dst] = imm & MASK64  # sign-extended, as the kernel does
        elif code_ in (JNE_K, JEQ_K):
            equal = value(dst) == imm & MASK64
            if equal == (code_ == JEQ_K):
                pc += off
        elif code_ == EXIT:
            return value(0)
        else:
            raise Refused(f"opcode {code_:#x}")
    raise Refused("no exit")


DENIED_SETS = [[], [0], [1], [0, 1], [200, 201], [5, 200], [255], [7, 1, 7], list(range(64))]
MINORS = [0, 1, 2, 5, 7, 62, 63, 64, 199, 200, 201, 202, 254, 255, 1 << 19, (1 << 20) - 1]


def contexts(denied: list[int]) -> Iterator[tuple[int, int, int]]:
    for access in (MKNOD, READ, WRITE, READ | WRITE, MKNOD | READ | WRITE):
        for kind in (BLOCK, CHAR):
            for major in (195, 1, 0, 194, 196, 195 + (1 << 16)):
                for minor in sorted({*MINORS, *denied}):
                    yield (access << 16) | kind, major, minor


def expected(denied: list[int], access_type: int, major: int, minor: int) -> int:
    return 0 if access_type & 0xFFFF == CHAR and major == 195 and minor in denied else 1


def disagreements(code: bytes, denied: list[int]) -> int:
    """How many ctx values ``code`` answers wrongly (a refusal counts as one)."""
    wrong = 0
    for ctx in contexts(denied):
        try:
            wrong += interpret(code, *ctx) != expected(denied, *ctx)
        except Refused:
            return wrong + 1
    return wrong


@pytest.mark.parametrize("denied", DENIED_SETS, ids=str)
def test_the_program_denies_exactly_the_char_195_minors_it_lists(denied: list[int]) -> None:
    code = device_program(denied)
    assert len(code) % INSN.size == 0
    assert disagreements(code, denied) == 0
    assert device_program(reversed(denied)) == code  # one program per set, however given


def test_denying_nothing_is_two_instructions_with_no_unreachable_code() -> None:
    assert device_program([]) == INSN.pack(MOV64_K, 0, 0, 1) + INSN.pack(EXIT, 0, 0, 0)
    assert len(device_program(range(64))) == (6 + 64 + 4) * INSN.size


@pytest.mark.parametrize("denied", [[0], [0, 1], [5, 200], list(range(64))], ids=str)
def test_a_jump_off_by_one_is_caught(denied: list[int]) -> None:
    code = device_program(denied)
    jumps = [i for i in range(len(code) // 8) if code[i * 8] in (JNE_K, JEQ_K)]
    assert len(jumps) == 2 + len(set(denied))
    for index in jumps:
        op, registers_, off, imm = INSN.unpack_from(code, index * 8)
        for wrong in (off - 1, off + 1):
            mutant = bytearray(code)
            INSN.pack_into(mutant, index * 8, op, registers_, wrong, imm)
            assert disagreements(bytes(mutant), denied) > 0, (index, wrong)


def test_the_bpf_system_call_number_is_known_per_machine() -> None:
    assert (syscall_number("x86_64"), syscall_number("aarch64")) == (321, 280)
    assert syscall_number("riscv64") is None


def test_a_hybrid_host_keeps_its_unified_tree_only_when_asked() -> None:
    mounts = parse_mountinfo(
        "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    own = parse_proc_cgroup("4:memory:/\n0::/\n")
    v1 = Hierarchy("/sys/fs/cgroup/memory", 1, ("memory",))
    assert plan_hierarchies(mounts, own, "") == [v1]
    kept = [Hierarchy("/sys/fs/cgroup/unified", 2, ()), v1]
    assert plan_hierarchies(mounts, own, "", keep_unified=True) == kept


# --- the kernel ----------------------------------------------------------------------------------

OPEN_EACH = """
import errno, os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as procs:
    procs.write(str(os.getpid()))
for path in sys.argv[2:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        print("opened")
    except OSError as error:
        print(errno.errorcode[error.errno])
"""


def bpf_refusal() -> str | None:
    """Why this host cannot run the kernel tests, or None. Not root: a skip, always."""
    if os.geteuid() != 0:
        pytest.skip("eBPF device programs need root")
    unified = v2_mount(*read_mounts())
    if unified is None:
        return "no cgroup v2 tree here"
    programs = DevicePrograms()
    try:
        return programs.probe(unified.path)
    finally:
        programs.close()


@pytest.fixture
def v2_root() -> str:
    """The v2 tree's mount point, on a host that loads and attaches device programs."""
    why = bpf_refusal()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    unified = v2_mount(*read_mounts())
    assert unified is not None
    return unified.path


@pytest.fixture
def cgroup(v2_root: str) -> Iterator[str]:
    directory = f"{v2_root}/hpcbatch-test-bpf.{os.getpid()}"
    os.mkdir(directory)
    yield directory
    poll_until(lambda: _removed(directory), what=f"{directory} to be removed")


def _removed(directory: str) -> bool:
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(directory)
    return not os.path.exists(directory)


def opened_in(cgroup: str, nodes: list[Path]) -> list[str]:
    """Each node's errno name (or "opened") for a process of ``cgroup``."""
    run = subprocess.run(
        [sys.executable, "-c", OPEN_EACH, cgroup, *map(str, nodes)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=True,
    )
    return run.stdout.split()


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def test_a_second_attach_replaces_the_first(cgroup: str, tmp_path: Path) -> None:
    nodes = device_nodes(tmp_path, (200, 201, 255))
    before = open_fds()
    programs = DevicePrograms()
    assert opened_in(cgroup, nodes) == ["ENXIO"] * 3  # allowed, but no driver behind them
    programs.attach(cgroup, {200})
    assert opened_in(cgroup, nodes) == ["EPERM", "ENXIO", "ENXIO"]
    programs.attach(cgroup, {201})  # a reused slot: the deny of 200 is lifted
    assert opened_in(cgroup, nodes) == ["ENXIO", "EPERM", "ENXIO"]
    programs.attach(cgroup, {200, 201})
    assert opened_in(cgroup, nodes) == ["EPERM", "EPERM", "ENXIO"]  # nvidiactl stays open
    programs.attach(cgroup, set())
    assert opened_in(cgroup, nodes) == ["ENXIO"] * 3
    assert len(programs) == 4  # one program per denied set, loaded once
    programs.close()
    assert open_fds() == before
    assert opened_in(cgroup, nodes) == ["ENXIO"] * 3  # the kernel keeps what is attached


def test_an_evicted_program_stays_in_force_where_it_is_attached(
    cgroup: str, tmp_path: Path
) -> None:
    nodes = device_nodes(tmp_path, (200, 201))
    before = open_fds()
    programs = DevicePrograms(kept=2)
    programs.attach(cgroup, {200})
    programs.program(frozenset({201}))
    programs.program(frozenset())  # evicts (closes) the {200} program's fd
    assert len(programs) == 2 and len(open_fds() - before) == 2
    assert opened_in(cgroup, nodes) == ["EPERM", "ENXIO"]
    programs.close()
    assert open_fds() == before


def test_a_refused_load_carries_the_verifiers_log() -> None:
    if os.geteuid() != 0:
        pytest.skip("loading needs root")
    unreachable = INSN.pack(MOV64_K, 0, 0, 1) + INSN.pack(EXIT, 0, 0, 0) * 2
    with pytest.raises(OSError, match="verifier: .*unreachable insn") as raised:
        gpubpf.load(unreachable)
    assert raised.value.errno == 22


def test_a_probe_that_cannot_attach_says_why(v2_root: str) -> None:
    programs = DevicePrograms()
    reason = programs.probe(f"{v2_root}/no-such-dir.{os.getpid()}")
    programs.close()
    assert reason is not None
    assert reason.startswith("cgroup v2: cannot make a cgroup to probe in: ")
    assert "[ENOENT]" in reason


def test_attaching_costs_microseconds(cgroup: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The per-launch cost: DevicePrograms.attach (cache lookup, open, BPF_PROG_ATTACH
    replacing the slot's last program, close), alternating two sets like reused slots."""
    programs = DevicePrograms()
    sets = [{200}, {201}]
    for denied in sets:
        programs.attach(cgroup, denied)
    rounds = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for i in range(400):
            programs.attach(cgroup, sets[i % 2])
        rounds.append((time.perf_counter_ns() - start) / 400 / 1000)
    programs.close()
    median = statistics.median(rounds)
    with capsys.disabled():
        print(f"\n  eBPF attach per launch: {median:.1f} us (median of 5 x 400)")
    assert median < 1000


# --- real jobs through a root agent ---------------------------------------------------------------


def test_jobs_open_only_their_own_gpus_through_the_ebpf_program(
    v2_root: str, start_agent, tmp_path: Path
) -> None:
    # Two boards with minors 200 and 201 in a fake driver dir: no real GPU's.
    driver = fake_driver(tmp_path, [("0000:18:00.0", GPU0, 200), ("0000:2a:00.0", GPU1, 201)])
    nodes = device_nodes(tmp_path, (200, 201, 255))  # 255: nvidiactl
    env = {
        "PATH": path_with(printing(tmp_path, "nvidia_smi_2x_h100.csv")),
        DRIVER_DIR_VAR: str(driver),
        FILTER_VAR: "bpf",
    }
    agent: AgentProcess = start_agent(env_extra=env)
    client = Client(agent.state_dir)
    node = client.hello()["node"]
    assert (node["gpu_isolation"], "gpu_isolation_reason" in node) == ("devices", False)

    seen: dict[str, dict[str, str]] = {}
    opened: dict[str, list[str]] = {}
    for attempt, gpus in (("gpu0", [GPU0]), ("none", []), ("gpu1", ["1"]), ("both", [GPU0, GPU1])):
        words = run_open_job(client, attempt, gpus, nodes)  # one after the other: one slot for all
        seen[attempt] = dict(w.split("=", 1) for w in words if "=" in w)
        opened[attempt] = [w for w in words if "=" not in w]
    assert {attempt: [e == "EPERM" for e in errors] for attempt, errors in opened.items()} == {
        "gpu0": [False, True, False],
        "none": [True, True, False],
        "gpu1": [True, False, False],
        "both": [False, False, False],
    }
    if not os.path.exists("/proc/driver/nvidia"):  # no driver: an allowed node has no device
        assert {e for errors in opened.values() for e in errors} == {"EPERM", "ENXIO"}
    node_dir = f"/hpcbatch/{node_dir_name('n1', str(agent.state_dir.resolve()))}"
    slots = {where["cgroup2"] for where in seen.values()}
    assert len(slots) == 1 and slots.pop().startswith(f"{node_dir}/s")  # reused v2 slot
    # The v1 devices controller, mounted here too, was not what denied: jobs are not in it.
    assert all(node_dir not in where.get("cgroupdevices", "") for where in seen.values())
    # A parent holding a program attached with flags 0 forbids any below it: the next
    # attach fails, and the attempt must not start.
    v2_dir = Path(v2_root + node_dir)
    programs = DevicePrograms()
    gpubpf.attach(programs.program(frozenset()), str(v2_dir))
    programs.close()
    spec = p.attempt_spec("refused", ["true"], gpus=[GPU0])
    client.send(p.launch([spec]))
    update = client.wait_state("refused", p.EXITED, p.FAILED_TO_START)
    assert update["state"] == p.FAILED_TO_START
    assert "cannot deny the job the GPUs it was not given: " in update["reason"]
    assert "Operation not permitted" in update["reason"]
    client.close()

    assert v2_dir.is_dir()
    agent.stop()
    poll_until(lambda: not v2_dir.exists(), what=f"{v2_dir} to be removed")
    _, stderr = agent.popen.communicate(timeout=DEADLINE_S)
    assert b"GPUs kept apart by an eBPF device program (cgroup v2" in stderr


def test_a_node_whose_probe_is_refused_reports_env_with_the_kernels_error(
    v2_root: str, start_agent, tmp_path: Path
) -> None:
    state_dir = tmp_path / "agent"
    node_dir = f"{v2_root}/hpcbatch/{node_dir_name('n1', str(state_dir.resolve()))}"
    os.makedirs(node_dir)
    try:
        programs = DevicePrograms()
        gpubpf.attach(programs.program(frozenset()), node_dir)  # flags 0: nothing below
        programs.close()
        env = {"PATH": path_with(printing(tmp_path, "nvidia_smi_2x_h100.csv")), FILTER_VAR: "bpf"}
        agent = start_agent(state_dir=state_dir, env_extra=env)
        client = Client(agent.state_dir)
        node = client.hello()["node"]
        client.close()
        assert node["gpu_isolation"] == "env"
        assert node["gpu_isolation_reason"].startswith(
            "cgroup v2: cannot attach an eBPF device program: Operation not permitted [EPERM]: "
        )
        agent.stop()
    finally:
        poll_until(lambda: _removed(node_dir), what=f"{node_dir} to be removed")
