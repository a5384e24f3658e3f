"""``GET /hpcbatch/v1/top`` is asked every second: it must never walk all the jobs the head
keeps. Its document is built here from a State holding tens of thousands of finished and waiting
jobs, counting every job it looks up."""

from __future__ import annotations

from typing import Any

from hpcbatch.core.model import Job, JobQueue, JobSpec, JobStatus
from hpcbatch.core.state import State
from hpcbatch.head.api.top import top_doc

SPEC = JobSpec(command=("true",))


class CountingJobs(dict[str, Job]):
    """``state.jobs`` that counts lookups."""

    looked_up = 0

    def __getitem__(self, key: str) -> Job:
        self.looked_up += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up += 1
        return super().get(key, default)


def add(state: State, job_id: str, status: JobStatus, **fields: Any) -> Job:
    seq = state.next_seq()
    job = Job(job_id, fields.pop("name", job_id), "q", "def", seq, seq, SPEC, status, **fields)
    state.add_job(job)
    return job


def crowded_state() -> State:
    state = State()
    state.queues["q"] = JobQueue("q", "arn:q", 1, "ENABLED", ("ce",), 1)
    state.queues["idle"] = JobQueue("idle", "arn:idle", 1, "DISABLED", ("ce",), 2)
    for i in range(20_000):
        add(state, f"done-{i}", JobStatus.SUCCEEDED, stopped_at=i)
    for i in range(5_000):
        add(state, f"old-fail-{i}", JobStatus.FAILED, stopped_at=i, status_reason=f"old {i}")
    for i in range(20_000):
        add(state, f"wait-{i}", JobStatus.RUNNABLE)
    for i in range(30):
        add(state, f"run-{i}", JobStatus.RUNNING, started_at=100_000 + i)
    add(state, "arr", JobStatus.PENDING, array_size=1000)
    for i in range(1000):
        status = JobStatus.RUNNING if i < 20 else JobStatus.RUNNABLE
        add(state, f"arr:{i}", status, parent_id="arr", array_index=i, started_at=200_000 + i)
    add(state, "arr:fail", JobStatus.FAILED, parent_id="arr", array_index=1000, stopped_at=10**6)
    return state


def test_top_counts_exactly_and_reads_only_what_it_shows() -> None:
    state = crowded_state()
    state.jobs = jobs = CountingJobs(state.jobs)
    doc = top_doc(state, [], limit=10, now=0)
    by_name = {q["name"]: q["depth"] for q in doc["queues"]}
    assert by_name["q"] == {
        "SUBMITTED": 0,
        "PENDING": 0,  # the array parent is not work: its children are
        "RUNNABLE": 20_000 + 980,
        "STARTING": 0,
        "RUNNING": 30 + 20,
    }
    assert by_name["idle"] == dict.fromkeys(by_name["q"], 0)
    assert [j["jobId"] for j in doc["running"]] == [f"arr:{i}" for i in range(19, 9, -1)]
    failed = [j["jobId"] for j in doc["failed"]]
    assert failed[0] == "arr:fail" and failed[1:] == [
        f"old-fail-{i}" for i in range(4999, 4990, -1)
    ]
    # Of 47,000 jobs it looked up the one pending parent and at most `limit` from each status
    # listing it read (a queue's and the array's, RUNNING and FAILED, FAILED twice: once to
    # find failed array parents, whose children it then reads too).
    assert jobs.looked_up <= 1 + 6 * 10
