"""The real Slurm the SLURM compute environment is tested against does what the driver relies
on (../shared/reference/testbed.md, "Driving Slurm from another program"): four idle nodes of
2 CPUs, ``sbatch --parsable`` printing the id, arrays with their task ids, a multi-node job's
batch script on the first node with ``srun`` reaching every node, ``--no-requeue``,
``scancel`` of a pending job, and ``squeue -O`` / ``scontrol show job -o`` to read them back.
"""

from __future__ import annotations

from pathlib import Path

from tests.head.headproc import wait_for
from tests.slurm.slurmcluster import CPUS, PARTITION, SlurmCluster


def submit(slurm: SlurmCluster, *options: str, script: str) -> str:
    out = slurm.run("sbatch", "--parsable", "--no-requeue", *options, "--wrap", script)
    return out.stdout.strip().split(";")[0]


def job_fields(slurm: SlurmCluster, job_id: str) -> dict[str, str]:
    line = slurm.run("scontrol", "show", "job", "-o", job_id).stdout.strip()
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def finished(slurm: SlurmCluster, job_id: str) -> dict[str, str] | None:
    fields = job_fields(slurm, job_id)
    return fields if fields["JobState"] not in ("PENDING", "RUNNING", "COMPLETING") else None


def test_four_idle_nodes_in_one_partition(slurm: SlurmCluster) -> None:
    out = slurm.run("sinfo", "-h", "-N", "-o", "%N %P %c %T").stdout.split("\n")
    rows = [line.split() for line in out if line]
    assert sorted(r[0] for r in rows) == sorted(h.name for h in slurm.cluster.hosts)
    assert {(r[1], r[2]) for r in rows} == {(f"{PARTITION}*", str(CPUS))}


def test_a_multi_node_job_reaches_every_node_through_srun(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    job = submit(
        slurm, "-N", "4", "-o", str(out),
        script="srun --ntasks-per-node=1 sh -c 'echo node $SLURM_NODEID'; "
        'scontrol show hostnames "$SLURM_JOB_NODELIST"',
    )  # fmt: skip
    fields = wait_for(lambda: finished(slurm, job), 30, f"job {job} to finish")
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0")
    lines = out.read_text().split()
    assert sorted(x for x in lines if x.isdigit()) == ["0", "1", "2", "3"]
    assert sorted(x for x in lines if x.startswith(slurm.cluster.prefix)) == sorted(
        h.name for h in slurm.cluster.hosts
    )


def test_an_array_task_sees_its_index_and_a_failure_keeps_its_exit_code(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    job = submit(
        slurm, "--array=0-3", "-o", str(tmp_path / "%a.txt"),
        script='echo "$SLURM_ARRAY_TASK_ID"; exit $((SLURM_ARRAY_TASK_ID == 2 ? 7 : 0))',
    )  # fmt: skip
    tasks = [f"{job}_{i}" for i in range(4)]
    ends = [wait_for(lambda t=t: finished(slurm, t), 30, f"task {t}") for t in tasks]  # type: ignore[misc]
    assert [e["ExitCode"] for e in ends] == ["0:0", "0:0", "7:0", "0:0"]
    assert [e["JobState"] for e in ends] == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]
    assert [(tmp_path / f"{i}.txt").read_text() for i in range(4)] == ["0\n", "1\n", "2\n", "3\n"]


def test_a_pending_job_shows_its_reason_and_cancels(slurm: SlurmCluster) -> None:
    too_big = submit(slurm, "-N", "4", "--hold", script="true")
    columns = "JobID:20,Name:40,State:20,Reason:40"
    row = slurm.run("squeue", "-h", "-r", "-j", too_big, "-O", columns).stdout.split()
    assert row[0] == too_big and row[2] == "PENDING" and row[3] == "JobHeldUser"
    slurm.run("scancel", too_big)
    fields = wait_for(lambda: finished(slurm, too_big), 30, f"job {too_big} cancelled")
    assert fields["JobState"] == "CANCELLED"
