"""The head runs jobs across 4 SSH-managed hosts (namespaces + real sshd) as it does locally."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from hpcbatch.devcluster import DevCluster
from tests.cluster.conftest import HOST_VCPUS
from tests.head.headproc import HeadProcess, wait_for


def submit(head: HeadProcess, command: list[str], **fields: object) -> str:
    return str(
        head.batch().submit_job(
            jobName="c",
            jobQueue="cluster",
            jobDefinition="default",
            containerOverrides={"command": command},
            **fields,
        )["jobId"]
    )


def test_jobs_spread_over_hosts_and_never_exceed_a_host(head: HeadProcess, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    trail.mkdir()
    script = (
        f'f={trail}/$AWS_BATCH_JOB_ID; echo "$(hostname) $(date +%s%N)" > $f; '
        f'sleep 0.4; echo "$(date +%s%N)" >> $f'
    )
    ids = [submit(head, ["sh", "-c", script]) for _ in range(16)]
    for job_id in ids:
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for job_id in ids:
        (first, end) = (trail / job_id).read_text().splitlines()
        host, start = first.split()
        spans[host].append((int(start), int(end)))
    assert len(spans) == 4, f"jobs ran on {sorted(spans)}"
    for host, intervals in spans.items():
        edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
        running = peak = 0
        for _, delta in edges:
            running += delta
            peak = max(peak, running)
        assert peak <= HOST_VCPUS, f"{host} ran {peak} jobs at once"


def test_an_array_of_1000_runs_every_index_exactly_once(head: HeadProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    job_id = submit(
        head,
        ["sh", "-c", f"echo $(hostname) >> {out}/$AWS_BATCH_JOB_ARRAY_INDEX"],
        arrayProperties={"size": 1000},
    )
    parent = head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=120)
    assert parent["status"] == "SUCCEEDED"
    assert sorted(int(p) for p in os.listdir(out)) == list(range(1000))
    assert all(len((out / p).read_text().splitlines()) == 1 for p in os.listdir(out))
    hosts = {(out / p).read_text().strip() for p in os.listdir(out)}
    assert len(hosts) == 4


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_terminate_and_timeout_kill_the_remote_process_tree(
    head: HeadProcess, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    tree = f"sleep 300 & echo $! > {pids}/$AWS_BATCH_JOB_ID.child; echo $$ > {pids}/$AWS_BATCH_JOB_ID; wait"
    stopped = submit(head, ["sh", "-c", tree])
    timed = submit(head, ["sh", "-c", tree], timeout={"attemptDurationSeconds": 1})
    head.wait_status(stopped, "RUNNING")
    wait_for(lambda: (pids / f"{stopped}.child").exists(), what="the job's child")
    head.batch().terminate_job(jobId=stopped, reason="enough")
    assert head.wait_status(stopped, "FAILED")["statusReason"] == "enough"
    timed_job = head.wait_status(timed, "FAILED")
    assert timed_job["statusReason"] == "Job attempt duration exceeded timeout"
    for job_id in (stopped, timed):
        for name in (job_id, f"{job_id}.child"):
            pid = int((pids / name).read_text())
            wait_for(lambda pid=pid: not _alive(pid), what=f"pid {pid} of {name} gone")


def test_a_host_cut_off_goes_down_and_its_results_are_collected_on_return(
    tmp_path: Path, cluster: DevCluster
) -> None:
    from tests.cluster.conftest import start_head

    head = start_head(tmp_path, cluster, heartbeat=3.0, lost=600.0)
    try:
        gate = tmp_path / "gate"
        job_id = submit(head, ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 6"])
        head.wait_status(job_id, "RUNNING")
        node = head.raw_describe(job_id)["hpcbatch"]["node"]
        cluster.link_down(node)

        def state_of(name: str) -> str:
            return next(n for n in head.get("/hpcbatch/v1/nodes")["nodes"] if n["name"] == name)[
                "state"
            ]

        wait_for(lambda: state_of(node) == "DOWN", 30, f"{node} DOWN")
        assert head.describe(job_id)["status"] == "RUNNING"  # held, not failed
        gate.touch()  # the job finishes while its host is cut off
        cluster.link_up(node)
        job = head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=60)
        assert job["status"] == "FAILED" and len(job["attempts"]) == 1
        assert job["attempts"][0]["container"]["exitCode"] == 6
        wait_for(lambda: state_of(node) == "ONLINE", 30, f"{node} ONLINE again")
    finally:
        head.cleanup()


def test_head_kill_9_with_jobs_on_hosts_loses_nothing_and_runs_nothing_twice(
    head: HeadProcess, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    gate = tmp_path / "gate"
    script = f"echo run >> {runs}/$AWS_BATCH_JOB_ID; while [ ! -e {gate} ]; do sleep 0.05; done"
    ids = [submit(head, ["sh", "-c", script]) for _ in range(6)]
    for job_id in ids:
        head.wait_status(job_id, "RUNNING")
    head.kill9()
    gate.touch()
    head.start()
    for job_id in ids:
        job = head.wait_status(job_id, "SUCCEEDED", "FAILED", timeout=60)
        assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 1
        assert (runs / job_id).read_text() == "run\n"


def test_kill_9_of_a_host_agent_keeps_its_jobs_and_true_results(
    head: HeadProcess, cluster: DevCluster, tmp_path: Path
) -> None:
    from hpcbatch.transport.local import read_pid

    gate = tmp_path / "gate"
    job_id = submit(head, ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 4"])
    head.wait_status(job_id, "RUNNING")
    host = cluster.host(head.raw_describe(job_id)["hpcbatch"]["node"])
    old = read_pid(Path(host.agent_state_dir))
    assert old is not None
    os.kill(old, 9)
    wait_for(
        lambda: read_pid(Path(host.agent_state_dir)) not in (None, old),
        30,
        "the head to bring the host's agent back over SSH",
    )
    gate.touch()
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 4


def test_a_host_that_stays_unreachable_is_lost_and_its_jobs_retried_elsewhere(
    tmp_path: Path, cluster: DevCluster
) -> None:
    from tests.cluster.conftest import start_head

    head = start_head(tmp_path, cluster, heartbeat=2.0, lost=3.0)
    try:
        job_id = submit(head, ["sleep", "300"], retryStrategy={"attempts": 2})
        head.wait_status(job_id, "RUNNING")
        node = head.raw_describe(job_id)["hpcbatch"]["node"]
        cluster.link_down(node)  # and it never comes back
        wait_for(
            lambda: "stoppedAt" in (head.describe(job_id)["attempts"] or [{}])[0],
            60,
            "the first attempt to end as Host lost",
        )
        job = head.describe(job_id)
        assert job["attempts"][0]["statusReason"] == f"Host lost: {node}"
        head.wait_status(job_id, "RUNNING", timeout=30)
        assert head.raw_describe(job_id)["hpcbatch"]["node"] != node
        nodes = {n["name"]: n for n in head.get("/hpcbatch/v1/nodes")["nodes"]}
        assert nodes[node]["state"] == "DOWN"
        head.batch().terminate_job(jobId=job_id, reason="done")
        head.wait_status(job_id, "FAILED")
    finally:
        head.cleanup()


def test_every_agent_killed_mid_array_loses_no_child_and_runs_none_twice(
    head: HeadProcess, cluster: DevCluster, tmp_path: Path
) -> None:
    from hpcbatch_agent.runner import INTERRUPTED_START_REASON

    from hpcbatch.transport.local import read_pid

    size = 600
    out = tmp_path / "out"
    out.mkdir()
    parent = submit(
        head,
        ["sh", "-c", f"echo ran >> {out}/$AWS_BATCH_JOB_ARRAY_INDEX"],
        arrayProperties={"size": size},
        retryStrategy={"attempts": 2},
    )

    def succeeded() -> int:
        summary = head.describe(parent)["arrayProperties"].get("statusSummary", {})
        return int(summary.get("SUCCEEDED", 0))

    wait_for(lambda: succeeded() >= size // 6, 60, "the array to be under way")
    for host in cluster.hosts:  # every agent, while its jobs come and go
        pid = read_pid(Path(host.agent_state_dir))
        assert pid is not None
        os.kill(pid, 9)
    assert succeeded() < size, "the array must still be running when its agents die"
    assert head.wait_status(parent, "SUCCEEDED", "FAILED", timeout=120)["status"] == "SUCCEEDED"
    children = head.batch().list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED", maxResults=1000)
    ids = [job["jobId"] for job in children["jobSummaryList"]]
    assert len(ids) == size
    batch = head.batch()
    described = [
        job
        for i in range(0, size, 100)
        for job in batch.describe_jobs(jobs=ids[i : i + 100])["jobs"]
    ]
    assert sorted(int(name) for name in os.listdir(out)) == list(range(size))
    runs = {int(name): (out / name).read_text().count("ran") for name in os.listdir(out)}
    for job in described:
        index = job["arrayProperties"]["index"]
        attempts = job["attempts"]
        if len(attempts) == 1:  # every result kept: it ran exactly once
            assert runs[index] == 1, (index, attempts)
        else:  # killed mid-spawn: that attempt is lost, never restarted; the retry ran it
            assert [a["statusReason"] for a in attempts[:-1]] == [INTERRUPTED_START_REASON]
            assert runs[index] in (1, 2)
    # Only what an agent was spawning when it died is lost: its last launch message, whose jobs
    # are spawned back to back and journaled as started together (at most a host's vCPUs).
    assert sum(len(job["attempts"]) > 1 for job in described) <= len(cluster.hosts) * HOST_VCPUS
