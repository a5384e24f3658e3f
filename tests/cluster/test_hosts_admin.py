"""``hpcbatch hosts``: admin commands fanned out over SSH to the 4 dev-cluster hosts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hpcbatch.devcluster import DevCluster
from hpcbatch.transport.local import read_pid
from hpcbatch.transport.zipapp import agent_file_name, build_agent_zipapp
from tests.cluster.conftest import ssh_config, start_head
from tests.cluster.test_ssh_cluster import _alive, submit
from tests.head.headproc import wait_for


def hosts_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpcbatch.cli.main", "hosts", *args[:1], "--config", str(config)]
        + list(args[1:]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_exec_runs_on_every_host_and_names_the_one_it_could_not_reach(
    cluster: DevCluster, tmp_path: Path
) -> None:
    config = tmp_path / "head.toml"
    config.write_text(ssh_config(cluster))
    # sshd's SSH_CONNECTION names the address it answered on: each host's own.
    done = hosts_cli(config, "exec", "--", "echo", "$SSH_CONNECTION")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert {host.name: lines[host.name].split()[2] for host in cluster.hosts} == {
        host.name: host.address for host in cluster.hosts
    }
    assert "ok on 4 of 4 hosts" in done.stderr

    cut = cluster.hosts[1]
    cluster.link_down(cut.name)
    try:
        done = hosts_cli(config, "exec", "--output", "json", "--", "exit 3")
    finally:
        cluster.link_up(cut.name)
    assert done.returncode == 1
    outcomes = {o["host"]: o for o in json.loads(done.stdout)["hosts"]}
    assert outcomes[cut.name]["exitCode"] is None
    assert outcomes[cut.name]["error"].startswith("unreachable")
    assert {o["exitCode"] for name, o in outcomes.items() if name != cut.name} == {3}


def test_exec_refuses_a_host_whose_key_is_not_known(cluster: DevCluster, tmp_path: Path) -> None:
    host = cluster.hosts[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "head.toml"
    config.write_text(ssh_config(cluster).replace(str(host.known_hosts_path), str(empty), 1))
    done = hosts_cli(config, "exec", "--host", host.name, "--", "true")
    assert done.returncode == 1
    assert f"{host.name}: FAILED: unknown host key (not in {empty})" in done.stderr


def test_stop_agents_stops_every_agent_and_leaves_or_kills_their_jobs(
    cluster: DevCluster, tmp_path: Path
) -> None:
    config = tmp_path / "head.toml"
    config.write_text(ssh_config(cluster))
    pid_file = tmp_path / "job.pid"
    head = start_head(tmp_path, cluster)
    try:
        submit(head, ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"])
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="pid"))
    finally:
        head.stop()  # a head leaves its SSH hosts' agents (and jobs) running
    agents = {h.name: read_pid(Path(h.agent_state_dir)) for h in cluster.hosts}
    assert all(agent is not None and _alive(agent) for agent in agents.values())

    done = hosts_cli(config, "stop-agents")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not any(_alive(a) for a in agents.values() if a), what="agents stopped")
    assert _alive(pid), "the job must outlive its agent"

    # Agents started again by hand (no head) re-adopt the job; --kill-jobs then ends it.
    version, _ = build_agent_zipapp()
    for host in cluster.hosts:
        pyz = f"{host.agent_state_dir}/bin/{agent_file_name(version)}"
        argv = ["python3", pyz, "serve", "--detach", "--state-dir", host.agent_state_dir]
        started = cluster.run(host.name, [*argv, "--node-name", host.name])
        assert started.returncode == 0, started.stderr
    done = hosts_cli(config, "stop-agents", "--kill-jobs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("with its jobs") == 4
    wait_for(lambda: not _alive(pid), what="the job killed with its agent")
