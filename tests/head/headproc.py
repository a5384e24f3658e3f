"""A real head daemon in a subprocess, for tests: start, stop, kill -9, restart; boto3 client.

Every test that uses it stops it by PID, and stops the local agents it left (a head killed with
-9 leaves them running on purpose) through their pidfiles.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from hpcbatch_agent.jobs import find_jobs

from hpcbatch.transport.local import stop_local_agent

CONFIG = """
min_timeout_seconds = 1
heartbeat_timeout_s = {heartbeat}
node_lost_timeout_s = {lost}
[local]
nodes = {nodes}
vcpus = {vcpus}
memory_mib = {memory}
"""


def stop_agent_and_jobs(state_dir: Path) -> None:
    """Stop a node's agent and every job it left: a head that stops lets its agents go but
    keeps their jobs running on purpose, so a test must end those itself."""
    stop_local_agent(state_dir, kill_jobs=True)
    for pid in find_jobs(str(Path(state_dir).resolve())).values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class HeadProcess:
    def __init__(
        self,
        data_dir: Path,
        nodes: int = 1,
        vcpus: int = 4,
        memory: int = 8192,
        heartbeat: float = 30.0,
        extra_config: str = "",
        lost: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env  # the head's environment (its LOCAL agents inherit it); None: ours
        self.data_dir = data_dir
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"  # a subclass may serve elsewhere (and HTTPS)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.verify: Any = True  # httpx's and boto3's: a CA bundle for a test certificate
        self.config = data_dir / "head.toml"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            CONFIG.format(nodes=nodes, vcpus=vcpus, memory=memory, heartbeat=heartbeat, lost=lost)
            + extra_config
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "head.log"
        self._key: tuple[str, str] | None = None

    def start(self) -> HeadProcess:
        cmd = [
            sys.executable,
            "-m",
            "hpcbatch.cli.main",
            "head",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.listen,
            "--config",
            str(self.config),
            "--log-level",
            "warning",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        wait_for(self._healthy, 30, f"head to answer (log: {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"head exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            health = f"{self.endpoint}/hpcbatch/v1/health"
            verify = self.verify
            if isinstance(verify, str):  # httpx wants a context, boto3 the path
                verify = ssl.create_default_context(cafile=verify)
            return httpx.get(health, timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        agents = self.data_dir / "agents"
        if agents.is_dir():
            for state_dir in agents.iterdir():
                stop_agent_and_jobs(state_dir)

    def credentials(self) -> tuple[str, str]:
        """An access key for root (an admin), issued once per data directory over loopback,
        where the kernel names this test (root) as the caller; kept across restarts, as the
        head keeps it."""
        if self._key is None:
            response = httpx.post(
                f"{self.endpoint}/hpcbatch/v1/users",
                json={"name": f"test-{os.getpid()}", "unixUser": "root"},
                timeout=10,
            )
            response.raise_for_status()
            self._key = (response.json()["accessKeyId"], response.json()["secretAccessKey"])
        return self._key

    def batch(
        self, key: tuple[str, str] | None = None, region: str = "local", **config: Any
    ) -> Any:
        """boto3 as a remote user calls the head: every request signed with an issued key
        (root's unless ``key`` is given) for ``region``; ``config``: more botocore Config
        settings."""
        key_id, secret = key or self.credentials()
        return boto3.client(
            "batch",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, **config),
            verify=self.verify,
        )

    def aws(self, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``aws batch ARGS --endpoint-url`` this head, signed with root's key; ``home`` keeps
        the CLI away from the developer's own ~/.aws."""
        key_id, secret = self.credentials()
        env = {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "local",
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
        }
        aws = Path(sys.executable).with_name("aws")
        command = [str(aws), "batch", *args, "--endpoint-url", self.endpoint]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.endpoint}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def describe(self, job_id: str) -> dict[str, Any]:
        jobs = self.batch().describe_jobs(jobs=[job_id])["jobs"]
        assert jobs, f"no job {job_id}"
        return dict(jobs[0])

    def raw_describe(self, job_id: str) -> dict[str, Any]:
        """DescribeJobs over plain HTTP: keeps hpcbatch's extra members that boto3 drops."""
        response = httpx.post(f"{self.endpoint}/v1/describejobs", json={"jobs": [job_id]})
        response.raise_for_status()
        return dict(response.json()["jobs"][0])

    def story(self, parent: str, nodes: int = 0) -> str:
        """What a failed test needs to say where a job stood: the job (and its ``nodes`` node
        jobs), the head's log tail and each LOCAL agent's log tail."""
        ids = [parent] + [f"{parent}#{index}" for index in range(nodes)]
        lines = []
        for job_id in ids:
            job = self.raw_describe(job_id)
            lines.append(
                f"{job_id}: {job['status']} {job.get('statusReason')} {job.get('hpcbatch')}"
            )
        lines.append("head.log:\n" + "\n".join(self.log.read_text().splitlines()[-30:]))
        for log in sorted((self.data_dir / "agents").glob("*/agent.log")):
            lines.append(f"{log}:\n" + "\n".join(log.read_text().splitlines()[-20:]))
        return "\n".join(lines)

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.describe(job_id)
            return job if job["status"] in statuses else None

        return dict(wait_for(reached, timeout, f"{job_id} to reach {statuses}"))
