"""A SLURM compute environment through a real head (boto3, as an AWS Batch user) onto the real
Slurm of tests/slurm: an array and its N_TO_N dependants run as Slurm jobs, a job waiting in
Slurm says why in Slurm's words, cancel takes a job out of Slurm's queue and terminate kills a
running one, a failing job is retried per evaluateOnExit, and bad input is refused naming the
field or quoted in Slurm's words."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from botocore.exceptions import ClientError
from hpcbatch_agent import slurmcli
from hpcbatch_agent.slurmbridge import POLL_VAR as SLURM_POLL_VAR
from hpcbatch_agent.slurmscript import attempt_of

from tests.head.headproc import HeadProcess, wait_for
from tests.slurm.slurmcluster import CPUS, GPUS, PARTITION, SlurmCluster
from tests.slurm.test_slurm_bridge import cancel_bridge_jobs

SLOW_S = 60.0
ARRAY_S = 300.0  # 200 tasks through Slurm's own pace
BRIDGE = "hpc-1"  # the SLURM CE's one node: its bridge


@pytest.fixture
def head(slurm: SlurmCluster, tmp_path: Path) -> Iterator[HeadProcess]:
    env = {**slurm.env, SLURM_POLL_VAR: "0.2"}  # the bridge's polls: Slurm's news in 0.2 s
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=1, memory=1024, env=env)
    try:
        yield process.start()
    finally:
        process.cleanup()
        cancel_bridge_jobs(slurm)


def slurm_ce(head: HeadProcess, name: str = "hpc", **resources: Any) -> None:
    b = head.batch()
    b.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={
            "type": "SLURM",
            "maxvCpus": 16,
            "instanceTypes": [PARTITION],
            "subnets": ["subnet-1"],  # AWS-only: kept and echoed, never checked
            **resources,
        },
    )
    b.create_job_queue(
        jobQueueName=f"{name}-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": name}],
    )
    wait_for(lambda: ce(head, name)["status"] == "VALID", 30, f"{name} to be VALID")


def ce(head: HeadProcess, name: str) -> dict[str, Any]:
    found = head.batch().describe_compute_environments(computeEnvironments=[name])
    return dict(found["computeEnvironments"][0])


def definition(head: HeadProcess, name: str, command: list[str], **extra: Any) -> None:
    head.batch().register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
        **extra,
    )


def log_text(head: HeadProcess, job_id: str) -> str:
    return str(head.get(f"/hpcbatch/v1/jobs/{quote(job_id, safe='')}/logs")["data"])


def test_an_array_and_its_n_to_n_dependants_run_as_slurm_jobs(head: HeadProcess) -> None:
    slurm_ce(head, maxvCpus=256)  # all of them in Slurm at once: Slurm paces them
    echo = ["sh", "-c", 'echo "$AWS_BATCH_JOB_ARRAY_INDEX on $SLURMD_NODENAME"']
    definition(head, "echo", echo)
    b = head.batch()
    first = b.submit_job(
        jobName="first", jobQueue="hpc-q", jobDefinition="echo", arrayProperties={"size": 100}
    )["jobId"]
    then = b.submit_job(
        jobName="then",
        jobQueue="hpc-q",
        jobDefinition="echo",
        arrayProperties={"size": 100},
        dependsOn=[{"jobId": first, "type": "N_TO_N"}],
    )["jobId"]
    # Slurm itself runs ~4 of these a second on the test cluster's 8 CPUs (its scheduling
    # ticks; bench/slurm_overhead.py: plain sbatch --array alike): ~50 s for the 200
    done = head.wait_status(then, "SUCCEEDED", "FAILED", timeout=ARRAY_S)
    assert done["status"] == "SUCCEEDED", head.story(then)
    assert head.describe(first)["status"] == "SUCCEEDED"
    for parent in (first, then):
        for index in (0, 42, 99):
            child = head.describe(f"{parent}:{index}")
            (attempt,) = child["attempts"]
            assert attempt["container"]["exitCode"] == 0
            assert attempt["startedAt"] <= attempt["stoppedAt"]
            text = log_text(head, f"{parent}:{index}")
            assert text.startswith(f"{index} on hb"), text  # ran on a Slurm node
    # N_TO_N: each dependant child started only after its own parent child ended
    for index in range(100):
        before = head.describe(f"{first}:{index}")["stoppedAt"]
        after = head.describe(f"{then}:{index}")["startedAt"]
        assert after >= before - 1000, index  # Slurm's times are whole seconds


def test_waiting_in_slurm_says_why_cancel_leaves_its_queue_terminate_kills(
    head: HeadProcess, slurm: SlurmCluster
) -> None:
    slurm_ce(head)
    definition(head, "sleepy", ["sleep", "120"])
    b = head.batch()
    hosts = len(slurm.cluster.hosts)
    whole = [{"type": "VCPU", "value": str(CPUS)}, {"type": "MEMORY", "value": "64"}]
    fill = b.submit_job(
        jobName="fill",
        jobQueue="hpc-q",
        jobDefinition="sleepy",
        arrayProperties={"size": hosts},
        containerOverrides={"resourceRequirements": whole},
    )["jobId"]
    for index in range(hosts):
        head.wait_status(f"{fill}:{index}", "RUNNING", timeout=SLOW_S)
    waits = b.submit_job(
        jobName="waits",
        jobQueue="hpc-q",
        jobDefinition="sleepy",
        containerOverrides={"resourceRequirements": whole},
    )["jobId"]

    def slurms_reason() -> str | None:
        job = head.describe(waits)
        reason = job.get("statusReason") or ""
        return reason if job["status"] == "STARTING" and ": " in reason else None

    reason = wait_for(slurms_reason, SLOW_S, "the job's reason from Slurm")
    assert reason in (
        f"waiting in Slurm partition {PARTITION}: Resources",
        f"waiting in Slurm partition {PARTITION}: Priority",
    )
    b.cancel_job(jobId=waits, reason="not needed after all")
    cancelled = head.wait_status(waits, "FAILED", timeout=SLOW_S)
    assert cancelled["statusReason"] == "not needed after all"
    b.terminate_job(jobId=f"{fill}:0", reason="stop it")
    stopped = head.wait_status(f"{fill}:0", "FAILED", timeout=SLOW_S)
    assert stopped["statusReason"] == "stop it"
    assert stopped["attempts"][0]["startedAt"] > 0
    # cancel does not touch a job that runs in Slurm (AWS's difference from terminate)
    b.cancel_job(jobId=f"{fill}:1", reason="too late")
    assert head.describe(f"{fill}:1")["status"] == "RUNNING"
    b.terminate_job(jobId=fill, reason="test over")
    head.wait_status(fill, "FAILED", timeout=SLOW_S)


def test_a_failing_job_is_retried_per_evaluate_on_exit(head: HeadProcess) -> None:
    slurm_ce(head)
    flaky = ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" -ge 2 || exit 3']
    retry = {
        "attempts": 3,
        "evaluateOnExit": [
            {"onExitCode": "3", "action": "RETRY"},
            {"onExitCode": "*", "action": "EXIT"},
        ],
    }
    definition(head, "flaky", flaky, retryStrategy=retry)
    job = head.batch().submit_job(jobName="flaky", jobQueue="hpc-q", jobDefinition="flaky")
    done = head.wait_status(job["jobId"], "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "SUCCEEDED", head.story(job["jobId"])
    codes = [attempt["container"]["exitCode"] for attempt in done["attempts"]]
    assert codes == [3, 0]


def test_bad_input_is_refused_naming_the_field_or_quoted_in_slurms_words(
    head: HeadProcess,
) -> None:
    b = head.batch()
    with pytest.raises(ClientError) as refused:
        b.create_compute_environment(
            computeEnvironmentName="bad",
            type="MANAGED",
            computeResources={"type": "SLURM", "maxvCpus": 4, "instanceTypes": ["a,b"]},
        )
    message = refused.value.response["Error"]["Message"]
    assert message.startswith("computeResources.instanceTypes[0]: must name a Slurm partition")
    # boto3 insists on maxvCpus itself; a plain HTTP client does not
    body = {
        "computeEnvironmentName": "bad",
        "type": "MANAGED",
        "computeResources": {"type": "SLURM"},
    }
    uncapped = httpx.post(f"{head.endpoint}/v1/createcomputeenvironment", json=body)
    assert uncapped.status_code == 400
    message = uncapped.json()["message"]
    assert message.startswith("computeResources.maxvCpus: is required for a SLURM compute")
    made = b.describe_compute_environments()["computeEnvironments"]
    assert [c["computeEnvironmentName"] for c in made] == ["local"]  # nothing half made
    slurm_ce(head, "wrong", instanceTypes=["nope"])
    definition(head, "true", ["true"])
    job = b.submit_job(jobName="x", jobQueue="wrong-q", jobDefinition="true")["jobId"]
    failed = head.wait_status(job, "FAILED", timeout=SLOW_S)
    assert "Invalid partition name specified" in failed["statusReason"], failed
    # the other compute environments keep working
    local = b.submit_job(jobName="y", jobQueue="default", jobDefinition="true")["jobId"]
    assert head.wait_status(local, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"


def test_a_head_killed_mid_array_finds_its_slurm_jobs_again(
    head: HeadProcess, slurm: SlurmCluster
) -> None:
    slurm_ce(head, maxvCpus=4)  # 12 children flow through Slurm 4 at a time
    definition(head, "nap", ["sh", "-c", "sleep 0.5; echo $AWS_BATCH_JOB_ARRAY_INDEX"])
    b = head.batch()
    array = b.submit_job(
        jobName="a", jobQueue="hpc-q", jobDefinition="nap", arrayProperties={"size": 12}
    )["jobId"]

    def some_done() -> bool:
        summary = head.describe(array)["arrayProperties"]["statusSummary"]
        return summary.get("SUCCEEDED", 0) >= 2

    wait_for(some_done, SLOW_S, "some children to finish")
    head.kill9()  # the bridge lives on, and goes on watching its Slurm jobs
    head.start()
    done = head.wait_status(array, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "SUCCEEDED", head.story(array)
    for index in range(12):
        child = head.describe(f"{array}:{index}")
        assert len(child["attempts"]) == 1, (index, child["attempts"])  # none run twice
        assert log_text(head, f"{array}:{index}") == f"{index}\n"
    # and Slurm ran each child once: one job or array task per child (it remembers them all)
    remembered = slurmcli.show_jobs(slurmcli.local(slurm.env))
    ours = [attempt_of(job.name, job.slurm_id) for job in remembered]
    children = sorted(aid for aid in ours if aid and aid.startswith(f"{array}:"))
    assert children == sorted(f"{array}:{index}/1" for index in range(12)), children


def test_a_slurm_node_that_dies_mid_job_is_a_host_loss_and_the_job_is_retried(
    head: HeadProcess, slurm: SlurmCluster
) -> None:
    slurm_ce(head)
    second_try_passes = ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" -ge 2 || sleep 300']
    definition(head, "doomed", second_try_passes, retryStrategy={"attempts": 2})
    job = head.batch().submit_job(jobName="d", jobQueue="hpc-q", jobDefinition="doomed")["jobId"]
    head.wait_status(job, "RUNNING", timeout=SLOW_S)
    run = slurmcli.local(slurm.env)
    (ours,) = [j for j in slurmcli.squeue(run) if j.name == f"hb-{job}/1"]
    try:
        slurm.fail_node(ours.nodes)
        done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    finally:
        slurm.start_slurmd(ours.nodes)
        wait_for(slurm.all_idle, SLOW_S, "the node back in Slurm")
    assert done["status"] == "SUCCEEDED", head.story(job)
    first, second = done["attempts"]
    assert first["statusReason"] == f"Host lost: Slurm node {ours.nodes} failed (NODE_FAIL)"
    assert second["container"]["exitCode"] == 0


def test_nodes_show_slurms_nodes_and_a_silent_controller_makes_the_ce_invalid(
    head: HeadProcess, slurm: SlurmCluster
) -> None:
    slurm_ce(head)

    def bridge() -> dict[str, Any] | None:
        nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
        found = next((n for n in nodes if n["name"] == BRIDGE and "slurm" in n), None)
        return found if found and found["slurm"]["nodes"] else None

    node = wait_for(bridge, SLOW_S, "the bridge's view of Slurm")
    seen = {n["name"]: (n["partition"], n["state"], n["vcpus"]) for n in node["slurm"]["nodes"]}
    assert seen == {h.name: (f"{PARTITION}*", "idle", CPUS) for h in slurm.cluster.hosts}
    assert node["vcpus"] == "16"  # maxvCpus: the cap on what it has in Slurm at once
    slurm.stop_controller()
    try:

        def invalid() -> str | None:
            found = ce(head, "hpc")
            return found["statusReason"] if found["status"] == "INVALID" else None

        reason = wait_for(invalid, SLOW_S, "the CE to say Slurm does not answer")
        assert reason.startswith("Slurm does not answer: "), reason
    finally:
        slurm.start_controller()
        wait_for(slurm.all_idle, SLOW_S, "Slurm back")
    wait_for(lambda: ce(head, "hpc")["status"] == "VALID", SLOW_S, "the CE VALID again")


def test_a_gpu_job_gets_its_gpus_from_slurm(head: HeadProcess, slurm: SlurmCluster) -> None:
    slurm_ce(head)

    def bridge() -> dict[str, Any] | None:
        nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
        return next((n for n in nodes if n["name"] == BRIDGE), None)

    node = wait_for(bridge, SLOW_S, "the bridge node")
    assert node["gpus"] == GPUS * len(slurm.cluster.hosts)  # the partition's gres/gpu
    head.batch().register_job_definition(
        jobDefinitionName="gpu",
        type="container",
        containerProperties={
            "command": ["sh", "-c", 'echo "gpus=$SLURM_GPUS"'],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
                {"type": "GPU", "value": "2"},
            ],
        },
    )
    job = head.batch().submit_job(jobName="g", jobQueue="hpc-q", jobDefinition="gpu")["jobId"]
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "SUCCEEDED", head.story(job)
    assert log_text(head, job) == "gpus=2\n"  # sbatch --gpus=2: Slurm allocated two


def multinode(head: HeadProcess, name: str, nodes: int, *ranges: tuple[str, list[str]]) -> None:
    head.batch().register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        nodeProperties={
            "numNodes": nodes,
            "mainNode": 0,
            "nodeRangeProperties": [
                {
                    "targetNodes": target,
                    "container": {
                        "command": command,
                        "resourceRequirements": [
                            {"type": "VCPU", "value": "1"},
                            {"type": "MEMORY", "value": "64"},
                        ],
                    },
                }
                for target, command in ranges
            ],
        },
    )


MPI_PROGRAM = """
import os
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.Get_rank())
hosts = open(os.environ["HPCBATCH_HOSTFILE_PLAIN"]).read().split()
print(world.Get_rank(), world.Get_size(), total, os.environ["AWS_BATCH_JOB_NODE_INDEX"],
      os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"], os.environ["HPCBATCH_HOSTS"],
      hosts[0], len(hosts), os.environ["SLURMD_NODENAME"])
"""


def test_a_four_node_mpi4py_job_runs_as_one_slurm_job_through_srun(
    head: HeadProcess, slurm: SlurmCluster
) -> None:
    slurm_ce(head)
    multinode(head, "mpi", 4, ("0:", [sys.executable, "-c", MPI_PROGRAM]))
    job = head.batch().submit_job(jobName="m", jobQueue="hpc-q", jobDefinition="mpi")["jobId"]
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "SUCCEEDED", head.story(job)
    addresses = {h.address for h in slurm.cluster.hosts}
    seen: set[str] = set()
    for index in range(4):
        node = head.describe(f"{job}#{index}")
        assert node["status"] == "SUCCEEDED", head.story(f"{job}#{index}")
        words = log_text(head, f"{job}#{index}").split()
        rank, size, total, node_index, main, hosts, first, count, slurm_node = words[:9]
        # one MPI_COMM_WORLD of 4 ranks (srun --mpi=pmix), rank i on node i
        assert (rank, size, total, node_index) == (str(index), "4", "6", str(index))
        assert main in addresses and first == main and count == "4"
        assert [h.rpartition(":")[0] for h in hosts.split(",")][0] == main
        assert set(h.rpartition(":")[0] for h in hosts.split(",")) == addresses
        seen.add(slurm_node)
    assert len(seen) == 4  # four Slurm nodes, one task each
    story = head.story(job)
    assert "as one Slurm job of 4 nodes via hpc-1" in story, story


def test_the_main_node_ending_stops_the_other_slurm_nodes(head: HeadProcess) -> None:
    slurm_ce(head)
    multinode(
        head,
        "lead",
        3,
        ("0", ["sh", "-c", "echo main done"]),
        ("1:", ["sleep", "600"]),  # they would hold Slurm's nodes for ten minutes
    )
    job = head.batch().submit_job(jobName="l", jobQueue="hpc-q", jobDefinition="lead")["jobId"]
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "SUCCEEDED", head.story(job)
    assert log_text(head, f"{job}#0").startswith("main done\n")
    for index in (1, 2):
        node = head.wait_status(f"{job}#{index}", "SUCCEEDED", "FAILED", timeout=SLOW_S)
        assert node["status"] == "SUCCEEDED"
        assert node["statusReason"] == "stopped: the main node exited"
    # then srun's own words on the others' end, once the head's scancel reached it (on a
    # loaded machine, a while after the main node's end was reported)
    wait_for(
        lambda: "task 1: Terminated" in log_text(head, f"{job}#0"),
        SLOW_S,
        "srun to say the other nodes were stopped",
    )

    multinode(head, "broken", 2, ("0", ["sleep", "600"]), ("1", ["sh", "-c", "exit 3"]))
    job = head.batch().submit_job(jobName="b", jobQueue="hpc-q", jobDefinition="broken")["jobId"]
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=SLOW_S)
    assert done["status"] == "FAILED", head.story(job)
    assert done["statusReason"] == "node 1 (hpc-1) exited 3", head.story(job)

    run = slurmcli.local(head.env)
    wait_for(
        lambda: not [j for j in slurmcli.squeue(run) if attempt_of(j.name)], SLOW_S, "Slurm empty"
    )
