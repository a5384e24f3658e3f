"""Start a real head in a subprocess for a benchmark, with a given local capacity; stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from hpcbatch.transport.local import stop_local_agent


def free_port() -> int:
    """A loopback TCP port free now (for a head's ``--listen``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchHead:
    def __init__(
        self,
        nodes: int = 1,
        vcpus: int = 32,
        memory_mib: int = 65536,
        extra_config: str = "",
        src: str | None = None,
    ) -> None:
        """``src``: run the head from that source tree instead (another build, to compare)."""
        self.src = src
        self.dir = Path(tempfile.mkdtemp(prefix="hpcbatch-bench-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        (self.dir / "head.toml").write_text(
            f"min_timeout_seconds = 1\n[local]\nnodes = {nodes}\nvcpus = {vcpus}\n"
            f"memory_mib = {memory_mib}\n" + extra_config
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchHead:
        cmd = [
            sys.executable,
            "-m",
            "hpcbatch.cli.main",
            "head",
            "--data-dir",
            str(self.dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--config",
            str(self.dir / "head.toml"),
            "--log-level",
            "warning",
        ]
        # no Unix socket: a benchmark's head must not take /run/hpcbatch/head.sock from a real one
        env = {**os.environ, "HPCBATCH_SOCKET": ""}
        if self.src is not None:
            env["PYTHONPATH"] = self.src
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.src)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.endpoint}/hpcbatch/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("head did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        for state_dir in (self.dir / "agents").glob("*"):
            stop_local_agent(state_dir, kill_jobs=True)
