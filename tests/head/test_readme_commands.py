"""The README's boto3 and aws CLI examples work verbatim against a real head (issue 10 item 8).

Each example is read from README.md itself (so the file cannot rot) and run with nothing from
the developer's own setup: a fresh HOME (no ~/.aws), no AWS_* variables, only what the README
says to export. The one change is the endpoint's port, which is the test head's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.head.headproc import HeadProcess

README = Path(__file__).resolve().parents[2] / "README.md"
README_ENDPOINT = "http://127.0.0.1:7650"


def readme_block(language: str, containing: str) -> str:
    """The README's one fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"README.md has {len(found)} {language} blocks with {containing!r}"
    return found[0]


def clean_env(home: Path) -> dict[str, str]:
    """No AWS_* variable and no ~/.aws: the README's own lines must supply what is needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    return env


def test_readme_aws_cli_lines_work_verbatim(head: HeadProcess, tmp_path: Path) -> None:
    script = readme_block("sh", "aws batch describe-job-queues")
    assert README_ENDPOINT in script
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(README_ENDPOINT, head.endpoint)],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    queues = json.loads(out.stdout)["jobQueues"]
    assert [q["jobQueueName"] for q in queues] == ["default"]
    assert queues[0]["state"] == "ENABLED"


def test_readme_aws_cli_line_alone_says_what_is_missing(head: HeadProcess, tmp_path: Path) -> None:
    """Why the README shows the export: without it the aws CLI refuses before any request."""
    line = next(
        x for x in readme_block("sh", "aws batch").splitlines() if x.startswith("aws batch")
    )
    out = subprocess.run(
        ["bash", "-c", line.replace(README_ENDPOINT, head.endpoint)],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert out.returncode != 0
    assert "You must specify a region" in out.stderr


def test_readme_boto3_example_works_verbatim(head: HeadProcess, tmp_path: Path) -> None:
    code = readme_block("python", "import boto3")
    assert README_ENDPOINT in code
    out = subprocess.run(
        [sys.executable, "-c", code.replace(README_ENDPOINT, head.endpoint)],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    statuses = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED")
    assert out.stdout.strip() in statuses
    jobs = head.batch().list_jobs(
        jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["hello"]}]
    )
    assert len(jobs["jobSummaryList"]) == 1
