"""The hpcbatch command against a real head: what a user types, what they see, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.head.headproc import HeadProcess, stop_agent_and_jobs

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


def cli(head: HeadProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    return subprocess.run([HPCBATCH, *args], capture_output=True, text=True, env=env, timeout=60)


def test_submit_wait_logs_and_describe(head: HeadProcess) -> None:
    done = cli(head, "submit", "--name", "greet", "--wait", "--", "sh", "-c", "echo hi there")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert cli(head, "logs", job_id).stdout == "hi there\n"
    described = cli(head, "describe", job_id)
    assert "SUCCEEDED" in described.stdout and "greet" in described.stdout
    listed = json.loads(cli(head, "jobs", "--all", "-o", "json").stdout)
    assert [j["jobId"] for j in listed["jobSummaryList"]] == [job_id]


def test_failed_job_with_wait_exits_1_and_says_why(head: HeadProcess) -> None:
    failed = cli(head, "submit", "--wait", "--", "sh", "-c", "exit 4")
    assert failed.returncode == 1
    assert "FAILED" in failed.stderr + failed.stdout


def test_refused_request_exits_3_with_the_rule(head: HeadProcess) -> None:
    refused = cli(head, "submit", "--queue", "nope", "--", "true")
    assert refused.returncode == 3
    assert "jobQueue: no job queue named 'nope'" in refused.stderr


def test_unreachable_head_exits_4(head: HeadProcess) -> None:
    env = {**os.environ, "HPCBATCH_ENDPOINT": "http://127.0.0.1:9"}
    gone = subprocess.run([HPCBATCH, "jobs"], capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 4
    assert "127.0.0.1:9" in gone.stderr


def test_array_with_wait_and_listing_children(head: HeadProcess) -> None:
    done = cli(
        head,
        "submit",
        "--array-size",
        "4",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo $AWS_BATCH_JOB_ARRAY_INDEX",
    )
    assert done.returncode == 0, done.stderr
    parent = done.stdout.strip()
    assert cli(head, "logs", f"{parent}:2").stdout == "2\n"
    children = cli(head, "jobs", "--array", parent, "--state", "SUCCEEDED", "-o", "json")
    assert len(json.loads(children.stdout)["jobSummaryList"]) == 4


def test_nodes_queues_and_definitions_tables(head: HeadProcess) -> None:
    nodes = cli(head, "nodes")
    assert nodes.returncode == 0 and "local-1" in nodes.stdout and "ONLINE" in nodes.stdout
    assert cli(head, "nodes", "drain", "local-2", "--reason", "fan").returncode == 0
    assert "DRAINED" in cli(head, "nodes").stdout
    assert "default" in cli(head, "queues").stdout
    registered = cli(
        head, "job-definitions", "register", "hello", "--vcpus", "1", "--", "echo", "hi"
    )
    assert registered.returncode == 0, registered.stderr
    assert "hello" in cli(head, "job-definitions").stdout
    ran = cli(head, "submit", "--definition", "hello", "--wait")
    assert ran.returncode == 0, ran.stderr
    assert cli(head, "logs", ran.stdout.strip()).stdout == "hi\n"


def test_logs_follow_streams_until_the_job_ends(head: HeadProcess, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second"
    job_id = cli(head, "submit", "--", "sh", "-c", script).stdout.strip()
    head.wait_status(job_id, "RUNNING")
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    follow = subprocess.Popen(
        [HPCBATCH, "logs", "--follow", job_id], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "first\n"
        gate.touch()
        assert follow.stdout.readline() == "second\n"
        assert follow.wait(timeout=30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_head_serves_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "head.sock"
    data = tmp_path / "data"
    head = subprocess.Popen(
        [
            HPCBATCH,
            "head",
            "--data-dir",
            str(data),
            "--listen",
            f"unix:{sock}",
            "--log-level",
            "warning",
        ],
    )
    env = {**os.environ, "HPCBATCH_ENDPOINT": f"unix://{sock}"}
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([HPCBATCH, "health"], env=env, capture_output=True).returncode:
            assert time.monotonic() < deadline, "head on a unix socket did not answer"
            assert head.poll() is None, "head exited"
        done = subprocess.run(
            [HPCBATCH, "submit", "--wait", "--", "true"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    finally:
        head.terminate()
        head.wait(timeout=30)
        for state_dir in (data / "agents").glob("*"):
            stop_agent_and_jobs(state_dir)
