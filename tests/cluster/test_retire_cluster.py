"""A host removed from the head's config retires: drained, its running job finishes (one attempt,
output intact), then it leaves the node list and its CE and its agent stops (issue 13)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpcbatch.devcluster import DevCluster
from hpcbatch.transport.local import read_pid
from tests.cluster.conftest import cluster_queue, dev_cluster, ssh_config
from tests.cluster.test_ssh_cluster import _alive, submit
from tests.head.headproc import HeadProcess, wait_for

WHY = "removed from the head's config"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path, 2) as built:
        yield built


def _nodes(head: HeadProcess) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in head.get("/hpcbatch/v1/nodes")["nodes"]}


def _gated(out: Path, gates: Path) -> list[str]:
    """A job that writes a first line, waits for its gate file, then writes a second."""
    me = "$AWS_BATCH_JOB_ID"
    script = (
        f"echo started on $(hostname) > {out}/{me}; "
        f"while [ ! -e {gates}/{me} ]; do sleep 0.05; done; echo finished >> {out}/{me}"
    )
    return ["sh", "-c", script]


def _run_until_one_is_on(
    head: HeadProcess, host: str, out: Path, gates: Path
) -> tuple[str, list[str]]:
    """Gated jobs until one runs on ``host`` (placement picks the freest node, so the second
    at the latest); the others are let go. The job on ``host``, and every job started."""
    started: list[str] = []
    for _ in range(2):
        job_id = submit(head, _gated(out, gates))
        started.append(job_id)
        head.wait_status(job_id, "RUNNING")
        if head.raw_describe(job_id)["hpcbatch"]["node"] == host:
            for other in started[:-1]:
                (gates / other).touch()
            return job_id, started
    raise AssertionError(f"no job was placed on {host}")


def test_a_host_removed_from_the_config_drains_finishes_its_job_and_leaves(
    tmp_path: Path, pair: DevCluster
) -> None:
    out, gates = tmp_path / "out", tmp_path / "gates"
    out.mkdir()
    gates.mkdir()
    kept, leaving = pair.hosts
    data = tmp_path / "head"
    head = HeadProcess(data, nodes=0, extra_config=ssh_config(pair))
    try:
        head.start()
        cluster_queue(head, pair)
        long_job, started = _run_until_one_is_on(head, leaving.name, out, gates)
        agent = read_pid(Path(leaving.agent_state_dir))
        assert agent is not None and _alive(agent)
        key = head.credentials()
        head.stop()

        # Ansible removed the host from the inventory and restarted the head.
        head = HeadProcess(data, nodes=0, extra_config=ssh_config(pair, hosts=[kept]))
        head._key = key  # the same data directory: the user made before is still there
        head.start()
        node = _nodes(head)[leaving.name]
        assert (node["state"], node["stateReason"], node["retiring"]) == ("DRAINING", WHY, WHY)
        wait_for(lambda: _nodes(head)[kept.name]["state"] == "ONLINE", 30, f"{kept.name} back")
        wait_for(
            lambda: "agentVersion" in _nodes(head)[leaving.name], 30, f"{leaving.name} connected"
        )

        # Nothing new lands on the retiring host, though it has a free vCPU.
        quick = [submit(head, ["true"]) for _ in range(4)]
        for job_id in quick:
            assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
            assert head.raw_describe(job_id)["hpcbatch"]["node"] == kept.name
        assert _nodes(head)[leaving.name]["runningJobs"] == 1

        (gates / long_job).touch()
        job = head.wait_status(long_job, "SUCCEEDED", "FAILED", timeout=60)
        assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 1
        lines = (out / long_job).read_text().splitlines()
        assert lines == [f"started on {leaving.name}", "finished"]

        wait_for(lambda: leaving.name not in _nodes(head), 30, f"{leaving.name} removed")
        in_ce = {n["name"] for n in _nodes(head).values() if n["computeEnvironment"] == "cluster"}
        assert in_ce == {kept.name}
        wait_for(lambda: not _alive(agent), 30, f"the agent of {leaving.name} stopped")
        for job_id in started:
            head.wait_status(job_id, "SUCCEEDED")
    finally:
        head.cleanup()
    with sqlite3.connect(data / "state.db") as db:
        (text,) = db.execute("SELECT value FROM meta WHERE key = 'ssh_hosts'").fetchone()
    assert set(json.loads(text)) == {kept.name}  # the head forgot the retired host
