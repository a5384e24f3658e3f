"""Who the console acts as, and the rules on every change, through HTTP to a real head.

A browser off the head's machine logs in with an access key; one on it (loopback) is the
Unix user the kernel names, but only when it asks for a loopback name (a page of another
site that rebinds its name to 127.0.0.1 is not trusted). Every change needs the page's CSRF
token and the console's own origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.head.headproc import HeadProcess

FOREIGN = "head.example"  # what a browser on another machine calls the head by


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@pytest.fixture(scope="module")
def nobody_key(head: HeadProcess) -> tuple[str, str]:
    """An access key for the Unix user ``nobody`` (not an admin), issued by root on loopback."""
    made = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/users",
        json={"name": "console-nobody", "unixUser": "nobody"},
        timeout=10,
    )
    made.raise_for_status()
    return made.json()["accessKeyId"], made.json()["secretAccessKey"]


@pytest.fixture
def remote(head: HeadProcess) -> Iterator[httpx.Client]:
    """A browser on another machine: its requests name the head by a non-loopback name."""
    with httpx.Client(base_url=head.endpoint, headers={"host": f"{FOREIGN}:{head.port}"}) as c:
        yield c


def log_in(client: httpx.Client, key: tuple[str, str]) -> httpx.Response:
    return client.post(
        "/console/login",
        data={"access_key_id": key[0], "secret_access_key": key[1], "next": "/console/nodes"},
    )


def test_off_loopback_the_console_asks_for_an_access_key(
    head: HeadProcess, remote: httpx.Client
) -> None:
    asked = remote.get("/console/jobs")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/console/login?next=/console/jobs"
    assert remote.get("/console/live/jobs").status_code == 401  # no stream for a stranger
    wrong = log_in(remote, (head.credentials()[0], "not-the-secret"))
    assert wrong.status_code == 403
    assert "do not match an active key" in wrong.text
    assert "hpcbatch_console" not in wrong.headers.get("set-cookie", "")
    done = log_in(remote, head.credentials())
    assert done.status_code == 303 and done.headers["location"] == "/console/nodes"
    cookie = done.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/console/"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS it is (tests/console/unit)
    page = remote.get("/console/nodes")
    assert page.status_code == 200 and "root (admin)" in page.text and "Log out" in page.text
    out = remote.post("/console/login", data={"logout": "1", "csrf": token(page.text)})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert remote.get("/console/jobs").status_code == 303


def test_a_change_needs_the_pages_token_and_the_consoles_origin(head: HeadProcess) -> None:
    gate_job = head.batch().submit_job(
        jobName="gate",
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": ["sleep", "30"]},
    )["jobId"]
    job = head.batch().submit_job(
        jobName="csrf",
        jobQueue="default",
        jobDefinition="default",
        dependsOn=[{"jobId": gate_job}],
    )["jobId"]
    url = f"{head.endpoint}/console/jobs/{job}/cancel"
    page = httpx.get(url)
    assert page.status_code == 200
    missing = httpx.post(url, data={"reason": "x"})
    assert missing.status_code == 403 and "CSRF token does not match" in missing.text
    forged = httpx.post(url, data={"reason": "x", "csrf": "A" * 32})
    assert forged.status_code == 403
    cross = httpx.post(
        url,
        data={"reason": "x", "csrf": token(page.text)},
        headers={"origin": "http://evil.example"},
    )
    assert cross.status_code == 403 and "another site" in cross.text
    assert head.describe(job)["status"] == "PENDING"  # none of those changed anything
    done = httpx.post(
        url,
        data={"reason": "x", "csrf": token(page.text)},
        headers={"origin": f"http://127.0.0.1:{head.port}"},
    )
    assert done.status_code == 303
    head.wait_status(job, "FAILED")
    head.batch().terminate_job(jobId=gate_job, reason="test over")


def test_a_user_acts_on_their_own_jobs_and_only_admins_on_nodes(
    head: HeadProcess, remote: httpx.Client, nobody_key: tuple[str, str], tmp_path: Path
) -> None:
    batch = head.batch()
    blocker = batch.submit_job(
        jobName="blocker",
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": ["sleep", "60"]},
    )["jobId"]
    roots = batch.submit_job(
        jobName="roots",
        jobQueue="default",
        jobDefinition="default",
        dependsOn=[{"jobId": blocker}],
    )["jobId"]
    assert log_in(remote, nobody_key).status_code == 303
    nodes = remote.get("/console/nodes")
    assert "nobody" in nodes.text and "(admin)" not in nodes.text
    assert "/drain" not in nodes.text  # no drain for a user
    csrf = token(nodes.text)
    drained = remote.post("/console/nodes/local-1/drain", data={"csrf": csrf})
    assert drained.status_code == 403 and "only an admin may" in drained.text
    refused = remote.post(f"/console/jobs/{roots}/cancel", data={"csrf": csrf, "reason": "no"})
    assert refused.status_code == 403
    assert "only its owner or an admin may cancel it" in refused.text
    assert head.describe(roots)["status"] == "PENDING"
    assert remote.get(f"/console/jobs/{blocker}/log").status_code == 403
    page = remote.get(f"/console/jobs/{roots}")
    assert "/cancel" not in page.text and "Only the job's owner and admins" in page.text
    form = {"csrf": csrf, "name": "mine", "queue": "default", "definition": "default"}
    submitted = remote.post("/console/submit", data={**form, "depends_on": blocker})
    assert submitted.status_code == 303
    mine = submitted.headers["location"].split("/")[-1].split("?")[0]
    assert head.raw_describe(mine)["hpcbatch"]["owner"] == "nobody"
    cancelled = remote.post(f"/console/jobs/{mine}/cancel", data={"csrf": csrf, "reason": "mine"})
    assert cancelled.status_code == 303
    head.wait_status(mine, "FAILED")
    batch.terminate_job(jobId=blocker, reason="test over")


def test_a_disabled_key_ends_its_session_at_once(
    head: HeadProcess, remote: httpx.Client, nobody_key: tuple[str, str]
) -> None:
    assert log_in(remote, nobody_key).status_code == 303
    assert remote.get("/console/jobs").status_code == 200
    disabled = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/users/console-nobody/keys/{nobody_key[0]}/disable",
        timeout=10,
    )
    disabled.raise_for_status()
    assert remote.get("/console/jobs").status_code == 303  # back to the login
    enabled = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/users/console-nobody/keys/{nobody_key[0]}/enable",
        timeout=10,
    )
    enabled.raise_for_status()


def test_every_page_forbids_scripts_and_styles_from_anywhere_else(head: HeadProcess) -> None:
    page = httpx.get(f"{head.endpoint}/console/jobs")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from elsewhere
