"""The console's pure parts: the change feed, the session and CSRF tokens, the submit form's
mapping to SubmitJob and back, and the jobs table's filters."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hpcbatch.console import feed as feeds
from hpcbatch.console import jobs, session, submit
from hpcbatch.console.app import after_login
from hpcbatch.core.state import State
from hpcbatch.errors import NotFoundError, ValidationError
from hpcbatch.head.auth.identify import Admins, Principal
from hpcbatch.store import JournalEntry


def entry(subject: str) -> JournalEntry:
    return JournalEntry(0, "test", subject, "RUNNING")


def test_the_feed_counts_the_batches_that_changed_something_and_wakes_its_waiters() -> None:
    feed = feeds.ConsoleFeed()
    feed.batch_committed([entry("a"), entry("b")], None, None)
    feed.batch_committed([], None, None)  # journaled nothing: no new version
    feed.batch_committed([entry("c")], None, None)
    assert feed.version == 2

    async def waits() -> float:
        started = time.monotonic()
        asyncio.get_running_loop().call_later(0.05, feed.batch_committed, [entry("d")], None, None)
        await feed.wait(feed.version, 5.0)
        return time.monotonic() - started

    assert asyncio.run(waits()) < 4.0
    feed.close()
    asyncio.run(feed.wait(feed.version, 5.0))  # closed: returns at once


PEER = Principal("alice", False, "peer", 1000)
OTHER = Principal("bob", False, "peer", 1001)


def test_a_session_cookie_is_signed_flagged_and_ends_with_its_key() -> None:
    secret = b"s" * 32
    state = State()
    cookie = session.session_cookie(secret, "HPCBKEY", secure=True).decode()
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/console/"):
        assert flag in cookie
    assert "Secure" not in session.session_cookie(secret, "HPCBKEY", secure=False).decode()
    value = cookie.split(";")[0].split("=", 1)[1]
    admins = Admins("nogroup")
    assert session.session_principal(secret, value, state, admins) is None  # no such key
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert session.session_principal(secret, tampered, state, admins) is None
    late = time.time() + session.SESSION_S + 1
    assert session.session_principal(secret, value, state, admins, now=late) is None
    assert session.cookie_value(f"a=1; {session.COOKIE}={value}; b=2") == value


def test_csrf_tokens_are_the_callers_own() -> None:
    secret = b"t" * 32
    mine = session.csrf_token(secret, PEER)
    assert session.csrf_ok(secret, PEER, mine)
    assert not session.csrf_ok(secret, OTHER, mine)
    assert not session.csrf_ok(b"u" * 32, PEER, mine)
    assert not session.csrf_ok(secret, PEER, None)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:7650", True),
        ("127.0.0.1:7650", True),
        ("127.9.9.9", True),
        ("[::1]:7650", True),
        ("head.example:7650", False),
        ("localhost.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_only_loopback_names_are_trusted_from_loopback(host: str | None, loopback: bool) -> None:
    assert session.loopback_host(host) is loopback


def test_an_origin_must_be_the_consoles_own() -> None:
    assert session.same_origin(None, "h:1")
    assert session.same_origin("http://h:1", "h:1")
    assert not session.same_origin("http://evil:1", "h:1")


def test_the_submit_form_is_the_body_boto3_would_send() -> None:
    body, sources = submit.body_of(
        {
            "name": "n",
            "queue": "q",
            "definition": "d",
            "command": "python3 -c 'print(1)'",
            "array_size": "4",
            "depends_on": "a, b",
            "depends_type": "N_TO_N",
            "sequential": "1",
            "memory": "2048",
            "gpus": "1",
            "retries": "3",
            "timeout": "x60",
            "environment": "A=1\nB=two=2\n",
        }
    )
    assert body == {
        "jobName": "n",
        "jobQueue": "q",
        "jobDefinition": "d",
        "containerOverrides": {
            "command": ["python3", "-c", "print(1)"],
            "resourceRequirements": [
                {"type": "MEMORY", "value": "2048"},
                {"type": "GPU", "value": "1"},
            ],
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "two=2"}],
        },
        "arrayProperties": {"size": 4},
        "dependsOn": [
            {"jobId": "a", "type": "N_TO_N"},
            {"jobId": "b", "type": "N_TO_N"},
            {"type": "SEQUENTIAL"},
        ],
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": "x60"},  # not a number: the API says so
    }
    assert sources == ["memory", "gpus"]
    with pytest.raises(ValidationError, match="command: is not shell words"):
        submit.body_of({"command": "echo 'open"})
    with pytest.raises(ValidationError, match="environment: line 'NOEQUALS'"):
        submit.body_of({"environment": "NOEQUALS"})


@pytest.mark.parametrize(
    ("error", "field"),
    [
        (ValidationError("arrayProperties.size", "rule"), "array_size"),
        (ValidationError("containerOverrides.resourceRequirements[1].value", "r"), "gpus"),
        (ValidationError("containerOverrides.command[0]", "r"), "command"),
        (ValidationError("dependsOn[2].jobId", "r"), "depends_on"),
        (ValidationError("timeout.attemptDurationSeconds", "r"), "timeout"),
        (ValidationError("retryStrategy.attempts", "r"), "retries"),
        (NotFoundError("jobQueue: no queue 'x'"), "queue"),
        (ValidationError("tags", "r"), ""),
    ],
)
def test_an_api_refusal_lands_beside_the_field_that_made_it(error: Exception, field: str) -> None:
    assert submit.field_of(error, ["vcpus", "gpus"]) == field  # type: ignore[arg-type]


def test_bad_filters_are_named_and_dropped_and_the_table_still_shows() -> None:
    state = State()
    listing = jobs.Listing.of({"status": "DONE", "page": "0", "queue": "nope"}, state)
    assert set(listing.errors) == {"status", "page", "queue"}
    assert listing.status == "" and listing.page == 1
    assert jobs.page_of(state, listing, ()) == {"rows": [], "more": False, "total": 0, "pages": 1}
    assert jobs.Listing.of({"name": "x" * 300}, state).errors == {
        "name": "must be at most 256 characters"
    }


def test_the_console_secret_is_made_once_and_a_short_one_is_replaced(tmp_path: Path) -> None:
    made = session.load_secret(tmp_path)
    assert len(made) == session.SECRET_BYTES
    assert (tmp_path / "console.key").stat().st_mode & 0o777 == 0o600
    assert session.load_secret(tmp_path) == made  # kept across restarts
    (tmp_path / "console.key").write_bytes(b"short")
    assert len(session.load_secret(tmp_path)) == session.SECRET_BYTES


@pytest.mark.parametrize(
    ("wanted", "goes"),
    [
        ("/console/nodes", "/console/nodes"),
        ("/console/jobs?queue=q&status=RUNNABLE", "/console/jobs?queue=q&status=RUNNABLE"),
        ("https://evil.example/", "/console/jobs"),
        ("//evil.example/console/", "/console/jobs"),
        ("/console/login", "/console/jobs"),
        ("/console/jobs\r\nSet-Cookie: x=1", "/console/jobs"),
        ("", "/console/jobs"),
    ],
)
def test_a_login_goes_back_only_to_a_console_page(wanted: str, goes: str) -> None:
    assert after_login(wanted) == goes


def test_any_characters_in_a_login_csrf_or_cookie_are_refused_not_a_crash() -> None:
    state = State()
    assert session.check_login(state, "HPCBX", "sécret ✓") is None
    assert not session.csrf_ok(b"k" * 32, PEER, "tökén")
    assert session.session_principal(b"k" * 32, "pä.ÿ", state, Admins("nogroup")) is None
