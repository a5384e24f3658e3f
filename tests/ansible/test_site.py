"""ansible/site.yml for real: a head and compute hosts on dev-cluster hosts over their sshd.

One cluster for the module (installing the head's venv is the slow part, ~30 s), taken
through what an admin does: a first run with four broken hosts among three good ones, jobs on
the cluster it made, a second run and a --check run that change nothing, a host removed from
the inventory while a job runs on it, and an upgrade to a new build while another one runs. The tests of a module build on each other
in file order (each phase is a module fixture the next one asks for).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.devcluster import DevHost
from tests.ansible.provision import ANSIBLE_DIR, REPO, Site, build_wheels, recap
from tests.head.headproc import wait_for

pytestmark = pytest.mark.slow


def cli(site: Site, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The hpcbatch CLI the playbook installed on the head, on the head's Unix socket."""
    env = {**os.environ, "HPCBATCH_ENDPOINT": f"unix://{site.socket}"}
    done = subprocess.run(
        [str(site.head_dir / "opt" / "venv" / "bin" / "hpcbatch"), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd="/",
    )
    if check:
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done


def online(site: Site) -> set[str]:
    nodes = json.loads(cli(site, "-o", "json", "nodes").stdout)["nodes"]
    return {node["name"] for node in nodes if node["state"] == "ONLINE"}


def node_of(site: Site, job_id: str) -> str:
    (job,) = json.loads(cli(site, "-o", "json", "describe", job_id).stdout)["jobs"]
    return str(job["hpcbatch"]["node"])


def names(hosts: list[DevHost]) -> set[str]:
    return {host.name for host in hosts}


def good(site: Site) -> list[DevHost]:
    return list(site.cluster.hosts[1:4])


def broken_inventory(site: Site) -> dict[str, Any]:
    """h2-h4 good; h5 without its host key, h6 without python3 (the inventory names a Python
    that is not there), h7 unreachable (its cable pulled), h8 with another host's key, h9
    with the head's key put where its sshd does not look, h10 with its state dir's filesystem
    (ext4 here) in the list of shared ones, as NFS is by default."""
    h2, h5, h6, h7, h8, h9, h10 = (site.cluster.hosts[i] for i in (1, 4, 5, 6, 7, 8, 9))
    return site.inventory(
        [*good(site), h5, h6, h7, h8, h9, h10],
        changed={
            h6.name: {"agent_python": "/nonexistent/python3"},
            h8.name: {"agent_host_key": site.host_vars(h2)["agent_host_key"]},
            h9.name: {"agent_authorized_keys": str(h9.host_dir / "authorized_keys.unread")},
            h10.name: {"agent_shared_filesystems": ["nfs", "ext2/ext3"]},
        },
        dropped={h5.name: ["agent_host_key"]},
    )


def test_a_check_run_on_fresh_hosts_says_what_it_would_do_and_does_nothing(site: Site) -> None:
    """--check before anything was installed: it runs through, reports changes, makes nothing."""
    done = site.run_playbook(site.inventory(good(site)), "--check")
    assert done.returncode == 0, done.stdout[-3000:]
    counts = recap(done.stdout)
    assert counts[site.head_host.name]["changed"] > 0 and counts[site.head_host.name]["failed"] == 0
    assert not site.head_dir.exists()  # no venv, no key, no config, no head
    assert all(not (h.host_dir / "authorized_keys").read_text() for h in good(site))


@pytest.fixture(scope="module")
def first_run(site: Site) -> subprocess.CompletedProcess[str]:
    site.cluster.link_down(site.cluster.hosts[6].name)
    try:
        done = site.run_playbook(broken_inventory(site))
    finally:
        site.cluster.link_up(site.cluster.hosts[6].name)
    cli(site, "queues", "create", "cluster", "--ce", "cluster")
    return done


def test_broken_hosts_fail_each_with_its_reason_and_the_others_join(
    site: Site, first_run: subprocess.CompletedProcess[str]
) -> None:
    out = first_run.stdout
    assert first_run.returncode != 0, out[-3000:]
    h5, h6, h7, h8, h9, h10 = (site.cluster.hosts[i].name for i in (4, 5, 6, 7, 8, 9))
    counts = recap(out)
    for host in good(site):
        assert counts[host.name]["failed"] == 0 and counts[host.name]["unreachable"] == 0, out
    for host in (h5, h6, h8, h9, h10):
        assert counts[host]["failed"] == 1, (host, out[-3000:])
    assert counts[h7]["unreachable"] == 1, out[-3000:]
    assert f"{h5}: agent_host_key is missing" in out
    assert f"{h6}: /nonexistent/python3 is not there" in out
    assert f"{h8}: its SSH host key is not the inventory's agent_host_key" in out
    assert f"fatal: [{h7}]: UNREACHABLE!" in out
    assert f"{h9}: the head cannot log in as root with its key: " in out
    assert "Permission denied (publickey)" in out
    assert f"{h10}: agent_state_dir" in out and "is on a ext2/ext3 filesystem" in out
    left_out = ", ".join(sorted((h5, h6, h7, h8, h9, h10)))
    assert f"(failed or unreachable above; fix and re-run): {left_out}" in out
    # the head the playbook started manages exactly the good hosts
    wait_for(lambda: online(site) == names(good(site)), 60, "the good hosts ONLINE")
    config = (site.etc / "head.toml").read_text()
    assert all(f'name = "{h}"' not in config for h in (h5, h6, h7, h8, h9, h10))


def test_an_array_and_a_multi_node_job_run_across_every_host_it_installed(
    site: Site, first_run: subprocess.CompletedProcess[str]
) -> None:
    array = cli(
        site,
        "submit",
        "-q",
        "cluster",
        "--array-size",
        "3",
        "--vcpus",
        "2",
        "--wait",
        "--",
        "hostname",
    ).stdout.split()[-1]
    assert {node_of(site, f"{array}:{i}") for i in range(3)} == names(good(site))
    gang = cli(
        site, "submit", "-q", "cluster", "--nodes", "3", "--every-node", "--wait", "--", "hostname"
    ).stdout.split()[-1]
    assert {node_of(site, f"{gang}#{i}") for i in range(3)} == names(good(site))
    hosts = {cli(site, "logs", f"{gang}#{i}").stdout.strip() for i in range(3)}
    assert hosts == names(good(site))  # each node's own hostname: it ran there


@pytest.fixture(scope="module")
def settled(site: Site, first_run: subprocess.CompletedProcess[str]) -> list[DevHost]:
    """The broken hosts left out of the inventory: what the admin runs next."""
    return good(site)


def test_a_second_run_and_a_check_run_change_nothing(site: Site, settled: list[DevHost]) -> None:
    pid = site.head_pid()
    for extra in ((), ("--check", "--diff")):
        done = site.run_playbook(site.inventory(settled), *extra)
        assert done.returncode == 0, done.stdout[-3000:]
        changed = {host: count["changed"] for host, count in recap(done.stdout).items()}
        assert set(changed.values()) == {0}, (extra, changed, done.stdout[-4000:])
    assert site.head_pid() == pid  # not restarted


def test_a_host_removed_from_the_inventory_drains_and_leaves_without_losing_its_job(
    site: Site, settled: list[DevHost]
) -> None:
    gate = site.base / "gate"
    gated = "while [ ! -e " + str(gate) + " ]; do sleep 0.05; done; hostname"
    jobs = [
        cli(
            site, "submit", "-q", "cluster", "--vcpus", "2", "--", "sh", "-c", gated
        ).stdout.split()[-1]
        for _ in settled
    ]
    wait_for(lambda: all(_status(site, j) == "RUNNING" for j in jobs), 60, "the jobs RUNNING")
    leaving = settled[-1]
    (on_leaving,) = [j for j in jobs if node_of(site, j) == leaving.name]
    done = site.run_playbook(site.inventory(settled[:-1]))
    assert done.returncode == 0, done.stdout[-3000:]
    assert f'name = "{leaving.name}"' not in (site.etc / "head.toml").read_text()
    node = wait_for(lambda: _node(site, leaving.name), 60, "the retiring node listed")
    assert (
        node["state"] in ("DRAINING", "DRAINED")
        and "removed from the head's config" in node["stateReason"]
    ), node
    gate.touch()
    wait_for(lambda: _status(site, on_leaving) == "SUCCEEDED", 60, "its job SUCCEEDED")
    (job,) = json.loads(cli(site, "-o", "json", "describe", on_leaving).stdout)["jobs"]
    assert len(job["attempts"]) == 1, job["attempts"]  # finished where it ran, not retried
    assert job["hpcbatch"]["node"] == leaving.name
    wait_for(lambda: _node(site, leaving.name) is None, 60, "the node gone")
    assert online(site) == names(settled[:-1])


def _status(site: Site, job_id: str) -> str:
    (job,) = json.loads(cli(site, "-o", "json", "describe", job_id).stdout)["jobs"]
    return str(job["status"])


def _node(site: Site, name: str) -> dict[str, Any] | None:
    nodes = json.loads(cli(site, "-o", "json", "nodes").stdout)["nodes"]
    return next((n for n in nodes if n["name"] == name), None)


def test_ansible_lint_passes_the_production_profile(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path), "NO_COLOR": "1"}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-lint"),
            "--offline",
            "--profile",
            "production",
        ],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def agent_versions(site: Site) -> dict[str, str]:
    nodes = json.loads(cli(site, "-o", "json", "nodes").stdout)["nodes"]
    return {node["name"]: node.get("agentVersion") for node in nodes}  # absent: not connected


def test_a_new_wheel_upgrades_the_head_and_every_agent_while_a_job_runs(
    site: Site, settled: list[DevHost], tmp_path: Path
) -> None:
    """The admin's upgrade: build wheels of the new tree, point the inventory at them, re-run.
    The head is reinstalled and restarted; it replaces each agent whose build differs, and a
    job running through all of it finishes where it ran, once."""
    tree = tmp_path / "tree"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tree / name)
    build = tree / "agents" / "hpcbatch_agent" / "build.py"
    build.write_text(build.read_text() + "# a new agent build, for the upgrade test\n")
    new_wheel, _ = build_wheels(tmp_path / "wheels", tree)
    hosts = settled[:-1]  # the removal test took the last one out
    before = wait_for(
        lambda: (v := agent_versions(site)) and all(v.get(h.name) for h in hosts) and v,
        60,
        "every agent connected (the last run restarted the head)",
    )
    head_pid = site.head_pid()
    gate = site.base / "upgrade-gate"
    gated = "while [ ! -e " + str(gate) + " ]; do sleep 0.05; done; hostname"
    job = cli(site, "submit", "-q", "cluster", "--", "sh", "-c", gated).stdout.split()[-1]
    wait_for(lambda: _status(site, job) == "RUNNING", 60, "the job RUNNING")

    site.wheel = new_wheel
    done = site.run_playbook(site.inventory(hosts))
    assert done.returncode == 0, done.stdout[-3000:]
    assert site.head_pid() not in (None, head_pid)  # reinstalled, restarted
    after = wait_for(
        lambda: (
            (v := agent_versions(site))
            and all(v.get(h.name) not in (None, before.get(h.name)) for h in hosts)
            and v
        ),
        90,
        "every agent on the new build",
    )
    assert len({after[h.name] for h in hosts}) == 1
    gate.touch()
    wait_for(lambda: _status(site, job) == "SUCCEEDED", 60, "the job SUCCEEDED")
    (described,) = json.loads(cli(site, "-o", "json", "describe", job).stdout)["jobs"]
    assert len(described["attempts"]) == 1, described["attempts"]
