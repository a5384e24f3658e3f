"""pyslurm, the optional extra (agents/hpcbatch_agent/slurmlib.py): where it imports and matches
this Slurm, the bridge reads Slurm's queue through it, with the same answers as squeue. Skipped where pyslurm is not installed (PyPI's builds track only the newest
Slurm; one built from pyslurm's v22.5.3 tag matches Debian's 22.05: docs/slurm.md).

pyslurm is never imported by this test process: libslurm ends a process that cannot read its
configuration, so every read through it runs in a child that has ``SLURM_CONF``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hpcbatch_agent import protocol as p
from hpcbatch_agent import slurmcli
from hpcbatch_agent.slurmlib import API_VAR

from tests.agent.agent_harness import AgentProcess
from tests.head.headproc import wait_for
from tests.slurm.slurmcluster import CPUS, SlurmCluster
from tests.slurm.test_slurm_bridge import SLOW_S, bridges_of, connect, spec

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyslurm") is None, reason="pyslurm is not installed"
)

# In a child: what the pyslurm Reader reads, as JSON (SlurmJob fields), next to how it loaded
READ = """
import dataclasses, json, sys
from hpcbatch_agent import slurmcli, slurmlib
reader, how = slurmlib.load(slurmcli.local(), "auto")
jobs = lambda found: sorted((dataclasses.asdict(j) for j in found), key=json.dumps)
print(json.dumps({"how": how, "queue": jobs(reader.queue()) if reader else None}))
"""


def read_through_pyslurm(slurm: SlurmCluster) -> dict[str, Any]:
    agents = Path(__file__).resolve().parents[2] / "agents"
    env = {**slurm.env, "PYTHONPATH": str(agents)}
    env.pop(API_VAR)
    done = subprocess.run(
        [sys.executable, "-c", READ], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def as_dicts(jobs: list[slurmcli.SlurmJob]) -> list[dict[str, Any]]:
    return sorted((dataclasses.asdict(j) for j in jobs), key=canonical)


def canonical(job: dict[str, Any]) -> str:
    return json.dumps(job, sort_keys=True)


@pytest.fixture
def submitted(slurm: SlurmCluster) -> Iterator[list[str]]:
    run = slurmcli.local(slurm.env)
    ids: list[str] = []
    yield ids
    for slurm_id in ids:
        slurmcli.scancel(run, slurm_id)


def test_pyslurm_reads_the_queue_as_squeue_does(slurm: SlurmCluster, submitted: list[str]) -> None:
    run = slurmcli.local(slurm.env)
    quiet = ["--no-requeue", "-o", "/dev/null"]
    ended = slurmcli.sbatch(run, "#!/bin/sh\nexit 3\n", [*quiet, "-J", "hb-ended/1"])
    submitted.append(ended)
    running = slurmcli.sbatch(run, "#!/bin/sh\nsleep 60\n", [*quiet, "-J", "hb-runs/1"])
    held = slurmcli.sbatch(
        run, "#!/bin/sh\ntrue\n", [*quiet, "-J", "hb-held/1", "--hold", "--array=0-3,7"]
    )
    submitted += [running, held]

    def settled() -> bool:
        states = {j.slurm_id: j.state for j in slurmcli.show_jobs(run)}
        return states.get(ended) == "FAILED" and states.get(running) == "RUNNING"

    wait_for(settled, SLOW_S, "the test jobs to settle in Slurm")
    theirs = read_through_pyslurm(slurm)
    assert theirs["how"].startswith("pyslurm (Slurm "), theirs["how"]
    ours = [j for j in slurmcli.squeue(run) if j.name.startswith("hb-")]
    queue = [d for d in theirs["queue"] if d["name"].startswith("hb-")]
    assert sorted(queue, key=canonical) == as_dicts(ours)
    # the held array: five tasks, one job each, as squeue -r lists them; the ended one gone
    ids = {d["slurm_id"] for d in queue}
    assert ids >= {running} | {f"{held}_{i}" for i in (0, 1, 2, 3, 7)}, ids
    assert ended not in ids


# an squeue that fails: only a bridge reading the queue through pyslurm sees its job run and end
BROKEN_SQUEUE = "#!/bin/sh\necho 'squeue: error: not this way' >&2\nexit 1\n"


def test_a_bridge_reads_slurm_through_pyslurm_and_runs_a_job_to_its_end(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "squeue").write_text(BROKEN_SQUEUE)
    (broken / "squeue").chmod(0o755)
    env = {**slurm.env, "PATH": f"{broken}:{slurm.env.get('PATH', os.defpath)}"}
    env.pop(API_VAR)
    state_dir = tmp_path / "bridge"
    with bridges_of(slurm) as started:
        args = ["--node-name", "slurm-1", "--slurm", "--slurm-poll-s", "0.2", "--vcpus", "8"]
        started.append(AgentProcess(state_dir, args, env))
        client = connect(state_dir)
        client.send(p.launch([spec("py#1", "sh", "-c", "echo via pyslurm; exit 2", vcpus=CPUS)]))
        ended = client.wait_state("py#1", p.EXITED, timeout_s=SLOW_S)
        assert (ended["exit_code"], ended["reason"]) == (2, None)  # seen without squeue
        assert ended["started_at_ms"] is not None
        assert Path(ended["log_path"]).read_text() == "via pyslurm\n"
        client.close()
