"""Stub ``nvidia-smi`` binaries for tests: a script on a PATH of its own that prints a golden
output, exits with a code, or hangs (recording its pid so a test can prove it was ended)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from hpcbatch_agent import protocol as p

GOLDEN = Path(__file__).parent / "golden"


def stub_nvidia_smi(directory: Path, body: str) -> Path:
    """Write ``directory/bin/nvidia-smi`` running ``body`` (sh); return the bin directory."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return bin_dir


def printing(directory: Path, golden: str, exit_code: int = 0) -> Path:
    return stub_nvidia_smi(directory, f"cat {shlex.quote(str(GOLDEN / golden))}\nexit {exit_code}")


def hanging(directory: Path, pidfile: Path) -> Path:
    # A child that outlives the shell would hold the pipe: the timeout must end the group.
    return stub_nvidia_smi(directory, f"sleep 1000 &\necho $! > {shlex.quote(str(pidfile))}\nwait")


def path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


class SwitchableStub:
    """An nvidia-smi whose behaviour a test switches while an agent polls it: each run counts
    itself in ``runs`` and then sources ``behaviour``, which is replaced whole (tmp + rename),
    so a run never sees half of it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runs_file = directory / "runs"
        self.behaviour = directory / "behaviour.sh"
        self.bin_dir = stub_nvidia_smi(
            directory,
            f"echo run >> {shlex.quote(str(self.runs_file))}\n. {shlex.quote(str(self.behaviour))}",
        )

    def _switch(self, body: str) -> None:
        tmp = self.behaviour.with_suffix(".tmp")
        tmp.write_text(body + "\n")
        os.replace(tmp, self.behaviour)

    def prints(self, golden: str, exit_code: int = 0) -> None:
        self._switch(f"cat {shlex.quote(str(GOLDEN / golden))}\nexit {exit_code}")

    def hangs(self, pidfile: Path) -> None:
        """Each run starts a child that holds the pipes, appends its pid to ``pidfile``, waits."""
        self._switch(f"sleep 1000 &\necho $! >> {shlex.quote(str(pidfile))}\nwait")

    def runs(self) -> int:
        try:
            return len(self.runs_file.read_text().splitlines())
        except FileNotFoundError:
            return 0


# --- a host's GPU device files, for the isolation tests -----------------------------------------

# A job that prints its v2 and v1-devices cgroups ("cgroup2=...", "cgroupdevices=...") and then,
# for each path given, "opened" or the errno name its open got.
OPEN_EACH_JOB = """
import errno, os, sys
for line in open("/proc/self/cgroup"):
    number, names, path = line.rstrip("\\n").split(":", 2)
    if names in ("", "devices"):
        print(f"cgroup{names or '2'}={path}")
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        print("opened")
    except OSError as error:
        print(errno.errorcode[error.errno])
"""


def fake_driver(directory: Path, boards: list[tuple[str, str, int]]) -> Path:
    """A /proc/driver/nvidia look-alike: (PCI bus id, UUID, device minor) per board."""
    driver = directory / "driver"
    for bus, uuid, minor in boards:
        (driver / "gpus" / bus).mkdir(parents=True)
        (driver / "gpus" / bus / "information").write_text(
            f"GPU UUID: \t {uuid}\nDevice Minor: \t {minor}\n"
        )
    return driver


def device_nodes(directory: Path, minors: tuple[int, ...]) -> list[Path]:
    """Character devices 195:<minor> (an NVIDIA board's, with no driver behind: an allowed open
    gets ENXIO, a denied one EPERM)."""
    nodes = [directory / f"nvidia{minor}" for minor in minors]
    for node, minor in zip(nodes, minors, strict=True):
        os.mknod(node, 0o666 | 0o020000, os.makedev(195, minor))
    return nodes


def run_open_job(client: Any, attempt_id: str, gpus: list[str], nodes: list[Path]) -> list[str]:
    """Launch OPEN_EACH_JOB on ``nodes`` through the agent of ``client``; its printed words."""
    command = [sys.executable, "-c", OPEN_EACH_JOB, *map(str, nodes)]
    client.send(p.launch([p.attempt_spec(attempt_id, command, gpus=gpus)]))
    update = client.wait_state(attempt_id, p.EXITED, p.FAILED_TO_START)
    assert (update["state"], update["exit_code"]) == (p.EXITED, 0), update
    return Path(update["log_path"]).read_text().split()
