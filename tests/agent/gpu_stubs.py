"""Stub ``nvidia-smi`` binaries for tests: a script on a PATH of its own that prints a golden
output, exits with a code, or hangs (recording its pid so a test can prove it was ended)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

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
