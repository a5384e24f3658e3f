"""A real head process and a fleet of simulated agents beside it (bench/simhead.py,
bench/simnodes.py), each started, stopped and killed by PID: the harness that scale benchmarks
and tests share (issue 15).

    with SimCluster(nodes=1000, run_ms=500) as cluster:
        httpx.post(cluster.endpoint + "/v1/submitjob", json={"jobQueue": "sim", ...})
        cluster.stop_fleet()          # the hosts go away: the head sees its nodes go silent
        cluster.flood({"sim-1"})      # sim-1's agent sends heartbeats in a tight loop
        cluster.launched()            # {attempt id: times a node ran it}, job by job
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from bench.headproc import free_port


def _stop(proc: subprocess.Popen[bytes] | None, signum: int, timeout_s: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)  # a paused fleet would keep SIGTERM pending
        os.kill(proc.pid, signum)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SimCluster:
    def __init__(
        self,
        nodes: int = 4,
        vcpus: int = 8,
        memory_mib: int = 32768,
        run_ms: int = 200,
        spread_ms: int = 0,
        heartbeat_s: float = 1.0,
        head_config: str = "",
        prefix: str = "sim",
        keep: bool = False,
        head_args: tuple[str, ...] = (),
    ) -> None:
        self.nodes, self.prefix, self.keep = nodes, prefix, keep
        self.head_args = head_args  # more bench/simhead.py flags (``--profile FILE``)
        self.dir = Path(tempfile.mkdtemp(prefix="hpcbatch-sim-"))
        self.fleet_dir = self.dir / "fleet"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        (self.dir / "head.toml").write_text(head_config + "\n[local]\nnodes = 0\n")
        self.fleet_args = [
            "--dir", str(self.fleet_dir), "--nodes", str(nodes), "--prefix", prefix,
            "--vcpus", str(vcpus), "--memory-mib", str(memory_mib), "--run-ms", str(run_ms), "--spread-ms", str(spread_ms),
            "--heartbeat-s", str(heartbeat_s),
        ]  # fmt: skip
        self.fleet: subprocess.Popen[bytes] | None = None
        self.head: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SimCluster:
        try:
            self.start_fleet()
            self.start_head()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start_fleet(self) -> None:
        ready = self.fleet_dir / "ready"
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        self.fleet = self._spawn("bench.simnodes", self.fleet_args, "fleet.out")
        self._wait(ready.exists, 60, "the fleet to listen", self.fleet)

    def start_head(self, wait: bool = True) -> None:
        """Start the head; with ``wait``, return once it serves with every node ONLINE."""
        args = [
            "--data-dir", str(self.dir / "data"), "--listen", f"127.0.0.1:{self.port}",
            "--fleet", str(self.fleet_dir), "--nodes", str(self.nodes), "--prefix", self.prefix,
            "--config", str(self.dir / "head.toml"), *self.head_args,
        ]  # fmt: skip
        self.head = self._spawn("bench.simhead", args, "head.out")
        if wait:
            self._wait(self.serving, 180, "the head to serve with every node", self.head)

    def _spawn(self, module: str, args: list[str], out: str) -> subprocess.Popen[bytes]:
        """``python -m module args`` from the repository, its output appended to ``out``."""
        with open(self.dir / out, "ab") as log:  # the child keeps its own copy of the fd
            return subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[1],
            )

    def serving(self) -> bool:
        """The head answers and every simulated node is ONLINE."""
        try:
            nodes = httpx.get(self.endpoint + "/hpcbatch/v1/nodes", timeout=5).json()["nodes"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        online = [n for n in nodes if n["computeEnvironment"] == "sim" and n["state"] == "ONLINE"]
        return len(online) == self.nodes

    def _wait(
        self,
        check: Callable[[], bool],
        timeout_s: float,
        what: str,
        proc: subprocess.Popen[bytes] | None,
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"waiting for {what}: it exited: {self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {what}: {self.output()}")
            time.sleep(0.1)  # polling another process, bounded by the deadline

    def output(self) -> str:
        parts = []
        for name in ("head.out", "fleet.out"):
            with contextlib.suppress(OSError):
                parts.append(f"{name}: {(self.dir / name).read_text()[-2000:]}")
        return "\n".join(parts)

    def stop_fleet(self) -> None:
        """SIGTERM: the fleet closes its sockets and links; its logs are flushed."""
        _stop(self.fleet, signal.SIGTERM)

    def pause_fleet(self) -> None:
        """SIGSTOP: every node falls silent with its link open (a hung host)."""
        assert self.fleet is not None
        os.kill(self.fleet.pid, signal.SIGSTOP)

    def resume_fleet(self) -> None:
        assert self.fleet is not None
        os.kill(self.fleet.pid, signal.SIGCONT)

    def flood(self, names: set[str]) -> None:
        """Make these nodes (and only these) flood the head, within a heartbeat interval:
        the fleet's control file, replaced whole so it is never read half written."""
        path = self.fleet_dir / "flood"
        path.with_suffix(".new").write_text("".join(f"{name}\n" for name in sorted(names)))
        path.with_suffix(".new").replace(path)

    def kill_head(self) -> None:
        _stop(self.head, signal.SIGKILL)

    def stop_head(self) -> None:
        _stop(self.head, signal.SIGTERM)

    def launched(self) -> Counter[str]:
        """Attempt id -> how many times a node ran it (started it from nothing)."""
        return self._ids("launches.log")

    def relaunch_requests(self) -> Counter[str]:
        """Attempt id -> launches of it a node already had (answered, never run again)."""
        return self._ids("relaunched.log")

    def _ids(self, name: str) -> Counter[str]:
        try:
            return Counter((self.fleet_dir / name).read_text().split())
        except FileNotFoundError:
            return Counter()

    def close(self) -> None:
        """Stop both by PID, and remove the cluster's directory unless ``keep`` is set (or
        ``HPCBATCH_SIM_KEEP`` is, to read the logs after a failure)."""
        self.stop_head()
        self.stop_fleet()
        if not (self.keep or os.environ.get("HPCBATCH_SIM_KEEP")):
            shutil.rmtree(self.dir, ignore_errors=True)
