"""A head upgrade reaches SSH hosts: an agent of another build still listening on a host when
the head starts is replaced over SSH, and the job it ran keeps running and ends SUCCEEDED."""

from __future__ import annotations

from pathlib import Path

from hpcbatch_agent.bootstrap import BOOT
from hpcbatch_agent.build import build_id

from hpcbatch.devcluster import DevCluster
from hpcbatch.transport.local import agent_running, read_pid, stop_local_agent
from tests.cluster.test_ssh_cluster import submit
from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_agent_upgrade import stale_agent_package


def test_a_stale_host_agent_is_replaced_over_ssh_and_its_job_kept(
    head: HeadProcess, cluster: DevCluster, tmp_path: Path
) -> None:
    runs, gate = tmp_path / "runs", tmp_path / "gate"
    script = f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done"
    job_id = submit(head, ["sh", "-c", script])
    head.wait_status(job_id, "RUNNING")
    host = cluster.host(head.raw_describe(job_id)["hpcbatch"]["node"])
    state_dir = Path(host.agent_state_dir)
    # The head goes away for its upgrade; on the host an agent of an older build listens.
    head.kill9()
    stop_local_agent(state_dir, kill_jobs=False)  # the hosts share this machine's filesystem
    old = stale_agent_package(tmp_path / "old")
    argv = ["/usr/bin/python3", "-I", "-c", BOOT, str(old), "serve", "--detach"]
    argv += ["--state-dir", str(state_dir), "--node-name", host.name]
    started = cluster.run(host.name, [*argv, "--vcpus", "2", "--memory-mib", "4096"], timeout=60)
    assert started.returncode == 0, started.stderr
    stale_pid = read_pid(state_dir)
    assert stale_pid is not None and agent_running(state_dir)

    head.start()
    wait_for(lambda: read_pid(state_dir) not in (None, stale_pid), 60, "the agent to be replaced")

    def agent_of_host() -> str | None:
        nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
        return next((n.get("agentVersion") for n in nodes if n["name"] == host.name), None)

    assert wait_for(agent_of_host, 30, "the host to report its agent") == build_id()
    pid = read_pid(state_dir)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert f"hpcbatch-agent-{build_id()}.pyz".encode() in cmdline
    assert head.describe(job_id)["status"] == "RUNNING"
    gate.touch()
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=60)
    assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 1
    assert runs.read_text() == "run\n"  # kept, not run again
