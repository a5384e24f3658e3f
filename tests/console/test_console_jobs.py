"""The console's job pages in a real browser, against a real head running jobs on LOCAL nodes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import expect

from tests.console.browser import serious_violations
from tests.head.headproc import HeadProcess

pytestmark = pytest.mark.slow


def submit(head: HeadProcess, name: str, command: list[str], **extra: Any) -> str:
    done = head.batch().submit_job(
        jobName=name,
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": command, **extra.pop("overrides", {})},
        **extra,
    )
    return str(done["jobId"])


def gated(gate: Path, before: str = "", after: str = "") -> list[str]:
    """A command that prints ``before``, waits for ``gate`` to exist, then prints ``after``."""
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    return ["sh", "-c", f"echo {before}; {wait}; echo {after}"]


def pending_behind(head: HeadProcess, gate: Path, name: str) -> tuple[str, str]:
    """A running job held by ``gate``, and a job ``name`` PENDING on it: (running, pending)."""
    first = submit(head, f"before-{name}", gated(gate))
    waiting = submit(head, name, ["true"], dependsOn=[{"jobId": first}])
    head.wait_status(waiting, "PENDING")
    return first, waiting


def stays(page: Any) -> None:
    """Mark the page: ``still_same`` proves no reload or navigation happened since."""
    page.evaluate("window.sameDocument = true")


def still_same(page: Any) -> bool:
    return page.evaluate("window.sameDocument === true") is True


def row(page: Any, job_id: str) -> Any:
    return page.locator(f'[id="job-{job_id}"]')


def test_the_jobs_table_shows_an_arrays_progress_live(
    head: HeadProcess, page: Any, shots: Path
) -> None:
    page.goto(f"{head.endpoint}/console/jobs")
    stays(page)
    # two nodes of 4 vCPUs, 4 vCPUs a child: two children at a time, three rounds
    array = submit(
        head,
        "sweep",
        ["sleep", "1"],
        arrayProperties={"size": 6},
        overrides={"resourceRequirements": [{"type": "VCPU", "value": "4"}]},
    )
    expect(row(page, array)).to_be_visible(timeout=5_000)
    expect(row(page, array)).to_contain_text(re.compile(r"[1-5] of 6 done"), timeout=20_000)
    expect(row(page, array)).to_contain_text("6 of 6 done", timeout=30_000)
    expect(row(page, array).locator(".status")).to_have_text("SUCCEEDED", timeout=5_000)
    assert still_same(page), "the page reloaded: updates must arrive live"
    page.screenshot(path=str(shots / "console-jobs.png"))
    assert serious_violations(page) == []


def test_a_jobs_log_streams_into_its_page_and_its_status_follows(
    head: HeadProcess, page: Any, tmp_path: Path, shots: Path
) -> None:
    gate = tmp_path / "gate"
    job = submit(head, "hello", gated(gate, "first-part", "second-part"))
    head.wait_status(job, "RUNNING")
    page.goto(f"{head.endpoint}/console/jobs/{job}")
    stays(page)
    expect(page.locator("#log")).to_contain_text("first-part", timeout=10_000)
    expect(page.locator("#log")).not_to_contain_text("second-part")
    gate.touch()
    expect(page.locator("#log")).to_contain_text("second-part", timeout=10_000)
    expect(page.locator("h1 .status")).to_have_text("SUCCEEDED", timeout=10_000)
    expect(page.locator("#log-state")).to_contain_text("ended", timeout=10_000)
    assert still_same(page)
    page.screenshot(path=str(shots / "console-job.png"), full_page=True)
    assert serious_violations(page) == []


def test_a_waiting_jobs_reason_appears_and_cancel_from_the_page_cancels_it(
    head: HeadProcess, page: Any, tmp_path: Path, shots: Path
) -> None:
    gate = tmp_path / "gate"
    first, waiting = pending_behind(head, gate, "after-first")
    page.goto(f"{head.endpoint}/console/jobs/{waiting}")
    reason = head.describe(waiting)["statusReason"]
    assert first in reason
    expect(page.locator("#status-reason")).to_contain_text(reason)
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("h1")).to_contain_text("Cancel job after-first")
    assert serious_violations(page) == []
    page.screenshot(path=str(shots / "console-confirm.png"))
    page.get_by_label("Reason").fill("not needed after all")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".note")).to_contain_text("Cancel requested")
    expect(page.locator("h1 .status")).to_have_text("FAILED", timeout=10_000)
    described = head.describe(waiting)
    assert described["isCancelled"] and described["statusReason"] == "not needed after all"
    gate.touch()
    head.wait_status(first, "SUCCEEDED")


def test_terminate_from_the_page_stops_a_running_job(
    head: HeadProcess, page: Any, tmp_path: Path
) -> None:
    job = submit(head, "forever", gated(tmp_path / "never"))
    head.wait_status(job, "RUNNING")
    page.goto(f"{head.endpoint}/console/jobs/{job}")
    expect(page.get_by_role("link", name="Cancel")).to_have_count(0)  # it runs: cancel can't
    page.get_by_role("link", name="Terminate").click()
    page.get_by_role("button", name="Terminate").click()
    expect(page.locator("h1 .status")).to_have_text("FAILED", timeout=15_000)
    assert head.describe(job)["isTerminated"]


def test_the_submit_form_shows_the_apis_message_beside_the_field(
    head: HeadProcess, page: Any, shots: Path
) -> None:
    with pytest.raises(ClientError) as refused:
        head.batch().submit_job(
            jobName="tiny", jobQueue="default", jobDefinition="default", arrayProperties={"size": 1}
        )
    api_message = refused.value.response["Error"]["Message"]
    page.goto(f"{head.endpoint}/console/submit")
    page.get_by_label("Name", exact=True).fill("tiny")
    page.get_by_label("Command").fill("echo 'hello there'")
    page.get_by_label("Array size").fill("1")
    page.get_by_role("button", name="Submit").click()
    field = page.get_by_label("Array size")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-array_size")).to_have_text(api_message)
    expect(page.get_by_label("Command")).to_have_value("echo 'hello there'")  # kept
    page.screenshot(path=str(shots / "console-submit.png"), full_page=True)
    assert serious_violations(page) == []
    field.fill("3")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".note")).to_have_text("Submitted.")
    job_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    described = head.describe(job_id)
    assert described["arrayProperties"]["size"] == 3
    assert described["container"]["command"] == ["echo", "hello there"]
    expect(page.locator("h1 .status")).to_have_text("SUCCEEDED", timeout=20_000)


def test_a_job_that_does_not_exist_is_a_clear_page(head: HeadProcess, page: Any) -> None:
    response = page.goto(f"{head.endpoint}/console/jobs/no-such-job")
    assert response is not None and response.status == 404
    expect(page.locator(".problem")).to_contain_text("There is no job 'no-such-job'")
    assert "Traceback" not in page.content()
    assert serious_violations(page) == []


def test_a_log_of_megabytes_streams_in_chunks(head: HeadProcess, page: Any) -> None:
    lines = 40_000  # 100 characters and a newline each: ~4 MB
    job = submit(head, "chatty", ["sh", "-c", f"yes {'x' * 99} | head -n {lines}"])
    head.wait_status(job, "SUCCEEDED")
    chunks = 0
    size = 0
    with httpx.stream("GET", f"{head.endpoint}/console/jobs/{job}/log", timeout=30) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not built whole
        for chunk in response.iter_raw():
            chunks += 1
            size += len(chunk)
    assert size == lines * 100
    assert chunks > 4
    page.goto(f"{head.endpoint}/console/jobs/{job}")
    expect(page.locator("#log-state")).to_contain_text("ended", timeout=20_000)
    kept = page.evaluate("document.getElementById('log').textContent.length")
    assert 1_000_000 < kept <= 2 * 1024 * 1024 + 100 * 1024  # the end of it, bounded


def test_pages_reconnect_and_catch_up_after_a_head_restart(
    head: HeadProcess, page: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    first, waiting = pending_behind(head, gate, "after-restart")
    page.goto(f"{head.endpoint}/console/jobs/{waiting}")
    stays(page)
    expect(page.locator("h1 .status")).to_have_text("PENDING")
    head.stop()
    expect(page.locator("#connection")).to_contain_text("reconnecting", timeout=10_000)
    head.start()
    head.wait_status(first, "RUNNING")  # kept running across the restart
    gate.touch()
    expect(page.locator("h1 .status")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("#connection")).to_be_hidden()
    assert still_same(page)


def test_every_action_is_reached_and_done_by_keyboard(
    head: HeadProcess, page: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    first, waiting = pending_behind(head, gate, "keyboard")
    for path in (f"/console/jobs/{waiting}", "/console/jobs", "/console/nodes", "/console/submit"):
        page.goto(f"{head.endpoint}{path}")
        assert _tab_order_reaches_everything(page), path
    page.goto(f"{head.endpoint}/console/jobs/{waiting}")
    _tab_to(page, "a", "Cancel")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Cancel job keyboard")
    _tab_to(page, "input", "reason")
    page.keyboard.type("by keyboard")
    _tab_to(page, "button", "Cancel")
    page.keyboard.press("Enter")
    expect(page.locator("h1 .status")).to_have_text("FAILED", timeout=10_000)
    assert head.describe(waiting)["statusReason"] == "by keyboard"
    gate.touch()
    head.wait_status(first, "SUCCEEDED")


FOCUSABLE = (
    "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])"
)


def _describe_focus(page: Any) -> str:
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement; if (!e || e === document.body) return '';"
            " return e.tagName + '|' + (e.id || e.getAttribute('href') || e.name || e.textContent"
            ".trim()); })()"
        )
    )


def _tab_order_reaches_everything(page: Any) -> bool:
    wanted = set(
        page.eval_on_selector_all(
            FOCUSABLE,
            "els => els.filter(e => e.offsetParent !== null).map(e => e.tagName + '|' + "
            "(e.id || e.getAttribute('href') || e.name || e.textContent.trim()))",
        )
    )
    seen: set[str] = set()
    for _ in range(len(wanted) + 10):
        page.keyboard.press("Tab")
        seen.add(_describe_focus(page))
    missing = wanted - seen
    assert not missing, f"not reached by Tab: {sorted(missing)}"
    return True


def _tab_to(page: Any, tag: str, text: str) -> None:
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = _describe_focus(page)
        if focus.startswith(tag.upper() + "|") and text.lower() in focus.lower():
            return
    raise AssertionError(f"Tab never reached the {tag} {text!r}")


def test_pages_fit_a_phone(head: HeadProcess, browser: Any, shots: Path) -> None:
    """At a phone's width nothing pushes the page sideways: wide tables scroll in place."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = context.new_page()
        for path in ("/console/jobs", "/console/nodes", "/console/queues", "/console/submit"):
            phone.goto(f"{head.endpoint}{path}")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
        phone.goto(f"{head.endpoint}/console/jobs")
        phone.screenshot(path=str(shots / "console-jobs-phone.png"))
    finally:
        context.close()


def test_a_multi_node_jobs_page_lists_its_nodes_and_each_nodes_log(
    head: HeadProcess, page: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wait = f"echo node $AWS_BATCH_JOB_NODE_INDEX; while [ ! -e {gate} ]; do sleep 0.05; done"
    overrides = {
        "numNodes": 2,
        "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": {"command": ["sh", "-c", wait]}}
        ],
    }
    parent = head.batch().submit_job(
        jobName="gang",
        jobQueue="default",
        jobDefinition="default-multinode",
        nodeOverrides=overrides,
    )["jobId"]
    head.wait_status(f"{parent}#1", "RUNNING")
    page.goto(f"{head.endpoint}/console/jobs/{parent}")
    nodes = page.locator("#h-nodes + table")
    expect(nodes.locator("tbody tr")).to_have_count(2)
    expect(nodes).to_contain_text("(main)")
    expect(nodes).to_contain_text("RUNNING")
    assert serious_violations(page) == []
    nodes.get_by_role("link", name="1", exact=True).click()
    expect(page.locator("#log")).to_contain_text("node 1", timeout=10_000)
    page.goto(f"{head.endpoint}/console/jobs?multinode={parent}")
    expect(page.locator(f'[id="job-{parent}#0"]')).to_be_visible()
    expect(page.locator(f'[id="job-{parent}#1"]')).to_be_visible()
    gate.touch()
    head.wait_status(parent, "SUCCEEDED")
