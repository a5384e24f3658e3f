"""The console's cluster pages in a real browser: queues, compute environments, nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.browser import serious_violations
from tests.head.headproc import HeadProcess, wait_for

pytestmark = pytest.mark.slow


def node_state(head: HeadProcess, name: str) -> dict[str, Any]:
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    return next(n for n in nodes if n["name"] == name)


def test_drain_and_resume_from_the_nodes_page(head: HeadProcess, page: Any, shots: Path) -> None:
    page.goto(f"{head.endpoint}/console/nodes")
    line = page.locator('[id="node-local-2"]')
    expect(line).to_contain_text("ONLINE")
    page.screenshot(path=str(shots / "console-nodes.png"))
    assert serious_violations(page) == []
    line.get_by_role("link", name="Drain").click()
    expect(page.locator("h1")).to_contain_text("Drain node local-2")
    page.get_by_label("Reason").fill("new disks")
    page.get_by_role("button", name="Drain").click()
    expect(page.locator(".note")).to_contain_text("draining")
    wait_for(lambda: node_state(head, "local-2")["state"] in ("DRAINING", "DRAINED"), 10, "drain")
    assert node_state(head, "local-2")["stateReason"] == "new disks"
    expect(line).to_contain_text("new disks")
    line.get_by_role("link", name="Resume").click()
    page.get_by_role("button", name="Resume").click()
    wait_for(lambda: node_state(head, "local-2")["state"] == "ONLINE", 10, "resume")
    expect(page.locator('[id="node-local-2"]')).to_contain_text("ONLINE", timeout=10_000)


def test_queues_show_depth_and_why_jobs_wait(
    head: HeadProcess, page: Any, shots: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    batch = head.batch()
    big = [{"type": "VCPU", "value": "4"}]
    ids = [
        batch.submit_job(
            jobName=f"filler-{i}",
            jobQueue="default",
            jobDefinition="default",
            containerOverrides={"command": ["sh", "-c", wait], "resourceRequirements": big},
        )["jobId"]
        for i in range(3)  # two run (4 vCPUs on each node), one waits for room
    ]
    try:
        waiting = wait_for(
            lambda: [j for j in ids if head.describe(j)["status"] == "RUNNABLE"], 20, "one waits"
        )
        reason = head.describe(waiting[0])["statusReason"]
        page.goto(f"{head.endpoint}/console/queues")
        queue = page.locator('[id="queue-default"]')
        expect(queue).to_contain_text(reason)
        expect(queue.get_by_role("link", name="2", exact=True)).to_have_count(1)  # RUNNING
        page.screenshot(path=str(shots / "console-queues.png"))
        assert serious_violations(page) == []
        page.goto(f"{head.endpoint}/console/environments")
        expect(page.locator('[id="ce-local"]')).to_contain_text("2 of 2")
        page.screenshot(path=str(shots / "console-environments.png"))
        assert serious_violations(page) == []
    finally:
        gate.touch()
        for job in ids:
            head.wait_status(job, "SUCCEEDED")
