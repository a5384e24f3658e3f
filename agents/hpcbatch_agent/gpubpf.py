"""Keeping a job off GPUs on cgroup v2: an eBPF device program attached to its slot.

Cgroup v2 has no ``devices.deny`` file. Instead the kernel runs a BPF_PROG_TYPE_CGROUP_DEVICE
program, attached to a cgroup, on every open or mknod of a device node by a process of that
cgroup (and below): the program returns 1 to allow it, 0 to deny it (EPERM).

Vocabulary:
    ctx         what the kernel hands the program: ``struct bpf_cgroup_dev_ctx { u32
                access_type; u32 major; u32 minor; }``, ``access_type`` being ``(access << 16)
                | type`` (type 1 a block, 2 a character device).
    denied      the minors of major 195 (``/dev/nvidia<minor>``, one per GPU board) a slot's
                program denies: the host's GPUs the attempt was not given. Everything else is
                allowed: other majors, block devices, nvidiactl (195:255), nvidia-uvm.
    program     the bytecode for one denied set (``device_program``, pure), loaded once
                (``BPF_PROG_LOAD``) and kept: a node sees few distinct sets, and an fd per set
                costs nothing. Loading with no log first; a refused load is retried with the
                verifier's log, which goes into the error.
    attach      ``BPF_PROG_ATTACH`` (type BPF_CGROUP_DEVICE, flags 0) to the slot's v2 dir,
                before each spawn. With flags 0 a cgroup holds one program of a type and a
                second attach replaces it: a reused slot drops its last attempt's program.
                The kernel holds its own reference to an attached program, so a program fd
                closed later (evicted from the cache) leaves the attached one in force; the
                program goes when its cgroup is removed.
    probe       at agent start: load the program that denies nothing and attach it twice
                (the second replaces the first) to a throw-away child of the node dir, which
                is then removed. A refusal (no CAP_BPF/CAP_SYS_ADMIN, seccomp, an old kernel)
                is the reason the node reports ``gpu_isolation: env``.

The system call goes through libc's ``syscall()`` (ctypes): its number is per machine
(``SYSCALL_NUMBERS``); elsewhere the probe says so. Parent cgroups' device programs still
apply (a process must pass every program on its way to the root). Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import struct
from collections.abc import Iterable

NVIDIA_MAJOR = 195
SYSCALL_NUMBERS = {"x86_64": 321, "aarch64": 280}  # SYS_bpf
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
DEV_CHAR = 2  # BPF_DEVCG_DEV_CHAR: the low 16 bits of access_type
PROGRAM_NAME = b"hpcbatch_gpus"  # shown by bpftool; at most 15 bytes
LOG_SIZE = 1 << 16
PROGRAMS_KEPT = 64  # loaded programs kept open; the oldest is closed beyond that
LOAD_HINT = "it needs CAP_BPF or CAP_SYS_ADMIN, and before Linux 5.11 RLIMIT_MEMLOCK room"
ATTACH_HINT = (
    "it needs CAP_SYS_ADMIN, and no parent cgroup may hold a device program attached "
    "without BPF_F_ALLOW_OVERRIDE or BPF_F_ALLOW_MULTI"
)

# Instructions: struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }.
LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
AND64_K = 0x57  # BPF_ALU64 | BPF_AND | BPF_K: dst &= imm
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm, pc += off
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: if dst == imm, pc += off
MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
EXIT = 0x95  # BPF_JMP | BPF_EXIT: return r0
INSN = struct.Struct("<BBhi")


# --- pure ----------------------------------------------------------------------------------


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return INSN.pack(code, (src << 4) | dst, off, imm)


def device_program(denied_minors: Iterable[int]) -> bytes:
    """The bytecode denying char devices NVIDIA_MAJOR:<minor> for each denied minor, allowing
    every other access. A jump's offset counts from the instruction after it.

        0  r2 = ctx->access_type          5  r4 = ctx->minor
        1  r2 &= 0xffff   (the type)      6+i  if r4 == denied[i] goto deny
        2  if r2 != 2 goto allow          allow: r0 = 1; exit
        3  r3 = ctx->major                deny:  r0 = 0; exit
        4  if r3 != 195 goto allow

    Denying nothing is ``r0 = 1; exit`` alone: the verifier refuses unreachable code."""
    minors = sorted(set(denied_minors))
    allow_all = insn(MOV64_K, 0, imm=1) + insn(EXIT)
    if not minors:
        return allow_all
    allow = 6 + len(minors)
    deny = allow + 2
    code = [
        insn(LDX_W, 2, 1, 0),
        insn(AND64_K, 2, imm=0xFFFF),
        insn(JNE_K, 2, off=allow - 3, imm=DEV_CHAR),
        insn(LDX_W, 3, 1, 4),
        insn(JNE_K, 3, off=allow - 5, imm=NVIDIA_MAJOR),
        insn(LDX_W, 4, 1, 8),
    ]
    code += [insn(JEQ_K, 4, off=deny - (6 + i + 1), imm=m) for i, m in enumerate(minors)]
    code += [allow_all, insn(MOV64_K, 0, imm=0), insn(EXIT)]
    return b"".join(code)


def syscall_number(machine: str) -> int | None:
    """SYS_bpf on this machine (``platform.machine()``), or None where it is not known."""
    return SYSCALL_NUMBERS.get(machine)


def describe_error(error: OSError) -> str:
    """``strerror [ENAME]`` and the rest of the message, for a node's reason."""
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    text = f"{error.strerror or os.strerror(error.errno or 0)} [{name}]"
    return text + (f": {error.filename}" if error.filename else "")


# --- I/O -----------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def bpf(command: int, attr: bytes) -> int:
    """One bpf(2) call with ``attr`` (a union bpf_attr prefix); its result, or OSError."""
    number = syscall_number(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"no bpf system call number known for {platform.machine()}")
    buffer = ctypes.create_string_buffer(attr, len(attr))
    result = _syscall(
        ctypes.c_long(number), ctypes.c_long(command), buffer, ctypes.c_long(len(attr))
    )
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def load(code: bytes) -> int:
    """Load ``code`` as a cgroup device program; its fd (close-on-exec). A refusal is
    retried once with the verifier's log, which the OSError's text then carries."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        attr = struct.pack(
            "<IIQQIIQII16s",
            BPF_PROG_TYPE_CGROUP_DEVICE,
            len(code) // INSN.size,
            ctypes.addressof(insns),
            ctypes.addressof(license_),
            1 if log is not None else 0,  # log_level
            len(log) if log is not None else 0,
            ctypes.addressof(log) if log is not None else 0,
            0,  # kern_version
            0,  # prog_flags
            PROGRAM_NAME,
        )
        return bpf(BPF_PROG_LOAD, attr)

    try:
        return attempt(None)
    except OSError as first:
        log = ctypes.create_string_buffer(LOG_SIZE)
        try:
            return attempt(log)
        except OSError:
            lines = log.value.decode("ascii", "replace").splitlines()
            verifier = " | ".join(line.strip() for line in lines if line.strip())
            detail = f"; verifier: {verifier}" if verifier else ""
            raise OSError(first.errno, f"{first.strerror}{detail}") from None


def attach(program_fd: int, directory: str) -> None:
    """Attach a loaded program to the cgroup ``directory`` (flags 0: it replaces the one
    there). OSError naming the directory if the open or the attach fails."""
    cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        bpf(BPF_PROG_ATTACH, struct.pack("<IIII", cgroup_fd, program_fd, BPF_CGROUP_DEVICE, 0))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, directory) from None
    finally:
        os.close(cgroup_fd)


class DevicePrograms:
    """The loaded programs of one agent, one per denied set (fds kept open, the oldest
    closed beyond PROGRAMS_KEPT: attached copies live on in their cgroups)."""

    def __init__(self, kept: int = PROGRAMS_KEPT) -> None:
        self._fds: dict[frozenset[int], int] = {}
        self._kept = kept

    def program(self, denied: frozenset[int]) -> int:
        fd = self._fds.get(denied)
        if fd is None:
            fd = load(device_program(denied))
            if len(self._fds) >= self._kept:
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[denied] = fd
        return fd

    def attach(self, directory: str, denied: Iterable[int]) -> None:
        """Give the cgroup ``directory`` the program denying ``denied``; OSError if the load
        or the attach fails (the attempt must not start)."""
        attach(self.program(frozenset(denied)), directory)

    def probe(self, parent: str) -> str | None:
        """None if a program loads and attaches (twice: the second replaces the first) in a
        throw-away child of ``parent``; else why not, for the node's reason."""
        directory = f"{parent}/.bpf-probe-{os.getpid()}"  # slot names never start with "."
        step, hint = "load an eBPF device program", LOAD_HINT
        try:
            fd = self.program(frozenset())
            step, hint = "make a cgroup to probe in", ""
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)
            step, hint = "attach an eBPF device program", ATTACH_HINT
            attach(fd, directory)
            attach(fd, directory)
        except OSError as exc:
            why = f" ({hint})" if hint and exc.errno == errno.EPERM else ""
            return f"cgroup v2: cannot {step}: {describe_error(exc)}{why}"
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        return None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __len__(self) -> int:
        return len(self._fds)
