"""A head upgrade reaches the agents: a LOCAL agent of another build still listening when the
head starts is replaced, and the job it ran keeps running and ends SUCCEEDED, run once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from hpcbatch_agent.bootstrap import BOOT, package_root
from hpcbatch_agent.build import build_id

from hpcbatch.transport.local import agent_running, read_pid, stop_local_agent
from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_jobs_e2e import submit


def stale_agent_package(root: Path) -> Path:
    """A copy of the agent package whose source differs by a comment: another build."""
    copy = root / "hpcbatch_agent"
    shutil.copytree(Path(package_root()) / "hpcbatch_agent", copy)
    with open(copy / "__init__.py", "a") as source:
        source.write("# an older build\n")
    assert build_id(str(copy)) != build_id()
    return root


def start_stale_agent(root: Path, state_dir: Path, node: str) -> int:
    """Start the agent from ``root`` on ``state_dir`` as a head would (detached); its pid."""
    argv = [sys.executable, "-I", "-c", BOOT, str(root), "serve", "--detach"]
    argv += ["--state-dir", str(state_dir), "--node-name", node, "--vcpus", "2"]
    subprocess.run([*argv, "--memory-mib", "4096"], check=True, timeout=60, cwd=state_dir)
    pid = read_pid(state_dir)
    assert pid is not None and agent_running(state_dir)
    return pid


def test_a_stale_local_agent_is_replaced_and_its_running_job_kept(tmp_path: Path) -> None:
    head = HeadProcess(tmp_path / "head", nodes=1, vcpus=2, memory=4096)
    try:
        head.start()
        runs, gate = tmp_path / "runs", tmp_path / "gate"
        script = f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done"
        job_id = submit(head, ["sh", "-c", script])
        head.wait_status(job_id, "RUNNING")
        # The head goes away for its upgrade, its agent stays (kill -9: no goodbye), and
        # that agent is an older build than the head that comes back.
        head.kill9()
        state_dir = head.data_dir / "agents" / "local-1"
        stop_local_agent(state_dir, kill_jobs=False)
        stale_pid = start_stale_agent(stale_agent_package(tmp_path / "old"), state_dir, "local-1")

        head.start()
        wait_for(
            lambda: read_pid(state_dir) not in (None, stale_pid), what="the agent to be replaced"
        )
        nodes = wait_for(
            lambda: [n for n in head.get("/hpcbatch/v1/nodes")["nodes"] if n.get("agentVersion")],
            what="the node to report its agent",
        )
        assert [n["agentVersion"] for n in nodes] == [build_id()]
        assert head.describe(job_id)["status"] == "RUNNING"
        gate.touch()
        job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
        assert job["status"] == "SUCCEEDED"
        assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 0
        assert runs.read_text() == "run\n"  # kept, not run again
        cli = subprocess.run(
            [sys.executable, "-m", "hpcbatch.cli.main", "nodes", "--endpoint", head.endpoint],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert cli.returncode == 0, cli.stderr
        header, row = cli.stdout.splitlines()[:2]
        assert "AGENT" in header.split() and build_id() in row.split()
    finally:
        head.cleanup()
