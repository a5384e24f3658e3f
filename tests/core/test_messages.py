"""Reasons a person reads, from the core: exact text."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import Dependency, JobStatus, Resources
from hpcbatch.errors import NotFoundError
from tests.core.sim import Sim


def test_dependent_job_failed_reads_the_same_before_and_after_submission() -> None:
    sim = Sim().cluster(nodes=1)
    first = sim.submit()
    after = sim.submit(depends_on=(Dependency(first.job_id),))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.end(launch, exit_code=3, reason=None)
    before = sim.submit(depends_on=(Dependency(first.job_id),))
    expected = f"Dependent Job failed: {first.job_id} {first.status_reason}"
    assert first.status_reason and first.status is JobStatus.FAILED
    assert (after.status_reason, before.status_reason) == (expected, expected)


def test_waiting_for_capacity_names_what_is_full() -> None:
    sim = Sim().cluster(nodes=2, vcpus=2, memory=4096)
    sim.submit(vcpus=2)
    sim.submit(vcpus=1, memory=4000)
    sim.schedule()
    job = sim.submit(vcpus=1, memory=512)
    assert explain(sim.state, job) == (
        "waiting for capacity: every node in [local] is full: local-n0 2/2 vCPUs in use, "
        "local-n1 4000/4096 MiB in use; 0 jobs ahead in queue q; needs 1 vCPU, 512 MiB"
    )
    sim.submit(vcpus=1, memory=16)
    sim.schedule()
    assert explain(sim.state, job) == (
        "waiting for capacity: every node in [local] is full: 4/4 vCPUs in use; "
        "0 jobs ahead in queue q; needs 1 vCPU, 512 MiB"
    )


def test_one_gpu_and_one_vcpu_are_singular() -> None:
    assert Resources(1000, 512, 1).describe() == "1 vCPU, 512 MiB, 1 GPU"
    assert Resources(1500, 512, 2).describe() == "1.5 vCPUs, 512 MiB, 2 GPUs"


def test_a_missing_queue_lists_the_queues_there_are() -> None:
    sim = Sim().cluster(nodes=1)
    sim.do(ev.CreateJobQueue, name="gpu", priority=5, ce_order=((1, "local"),))
    with pytest.raises(NotFoundError) as caught:
        sim.submit(queue="nope")
    assert str(caught.value) == "jobQueue: no job queue named 'nope' (queues: gpu, q)"
    assert Sim().state.queues == {}
