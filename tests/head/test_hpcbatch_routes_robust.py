"""hpcbatch's own routes against bad input and slow parts, through the real Head, ApiApp and
SqliteStore, with an in-package mock agent: every malformed parameter is a 400 with the exact
text, an agent silent on a log read is a 504 naming the node, and a history read waiting for
the store (as it does behind a big write) leaves the event loop free to answer /health."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbatch.head.api.app import ApiApp
from hpcbatch.head.api.parse import SURROGATE_RULE
from hpcbatch.head.auth.identify import head_principal
from hpcbatch.head.config import load_config
from hpcbatch.head.loop import INLINE_WRITE_ROWS
from hpcbatch.head.service import Head
from hpcbatch.head.supervisor import NodeSpec
from hpcbatch.store import JournalEntry, WriteBatch
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.mock import MockAgentLink

DEADLINE_S = 10.0
Scenario = Callable[[Head, httpx.AsyncClient, str], Awaitable[None]]


class SilentLogs(MockAgentLink):
    """An agent that never answers a read_log."""

    def _answer_read_log(self, message: dict[str, object]) -> None:
        del message


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def run(tmp_path: Path, scenario: Scenario, link: MockAgentLink | None = None) -> None:
    """A head with no local nodes and one mock node ``n1`` running one job, then ``scenario``."""

    async def main() -> None:
        config = load_config(None, data_dir=tmp_path, listen="127.0.0.1:0")
        config = type(config)(**{**config.__dict__, "local": type(config.local)(nodes=0)})
        head = Head(config)
        await head.start()
        agent = link or MockAgentLink("n1")

        async def connect() -> AgentLink:
            return agent

        head.nodes.start([NodeSpec("n1", "local", connect)])
        try:
            transport = httpx.ASGITransport(app=ApiApp(head, anonymous=head_principal()))
            async with httpx.AsyncClient(transport=transport, base_url="http://head") as client:
                await until(lambda: "n1" in head.dispatcher.sessions, "n1 to connect")
                body = {"jobName": "j", "jobQueue": "default", "jobDefinition": "default"}
                job_id = (await client.post("/v1/submitjob", json=body)).json()["jobId"]
                job = head.state.jobs[job_id]
                await until(lambda: job.attempts, "the job to start")
                await scenario(head, client, job_id)
        finally:
            await head.stop()

    asyncio.run(main())


def expect_400(response: httpx.Response, message: str) -> None:
    assert (response.status_code, response.json()) == (
        400,
        {"__type": "ClientException", "message": message},
    )
    assert response.headers["x-amzn-errortype"] == "ClientException"


OFFSET_RULE = "offset: must be an integer from 0 to 2**62"
ATTEMPT_RULE = "attempt: must be an integer from 1 to 1"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("offset=%C2%B2", f"{OFFSET_RULE} (got '²')"),  # str.isdigit says yes, int() says no
        ("offset=-1", f"{OFFSET_RULE} (got '-1')"),
        ("offset=1e3", f"{OFFSET_RULE} (got '1e3')"),
        ("offset=4611686018427387905", f"{OFFSET_RULE} (got '4611686018427387905')"),
        ("offset=99999999999999999999", f"{OFFSET_RULE} (got '99999999999999999999')"),
        ("offset=%EF%BC%91", f"{OFFSET_RULE} (got '１')"),  # a full-width digit one
        ("offset=1&offset=2", f"{OFFSET_RULE}, given once (got 2 values)"),
        ("attempt=%C2%B2", f"{ATTEMPT_RULE} (got '²')"),
        ("attempt=0", f"{ATTEMPT_RULE} (got '0')"),
        ("attempt=2", f"{ATTEMPT_RULE} (got '2')"),
        ("attempt=%20", f"{ATTEMPT_RULE} (got ' ')"),
        ("attempt=", f"{ATTEMPT_RULE} (got '')"),  # blank is given, not absent
        ("offset=", f"{OFFSET_RULE} (got '')"),
    ],
)
def test_a_malformed_log_parameter_is_a_400_naming_it(
    tmp_path: Path, query: str, message: str
) -> None:
    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        expect_400(await client.get(f"/hpcbatch/v1/jobs/{job_id}/logs?{query}"), message)

    run(tmp_path, scenario)


REASON_RULE = "reason: must be a string of 0-1,024 characters without a NUL"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "request body is not a JSON object"),
        (b'"drain"', "request body is not a JSON object"),
        (b"{", "request body is not a JSON object"),
        (b"\xff", "request body is not a JSON object"),
        (b"[" * 100_000, "request body is not a JSON object"),  # json.loads: RecursionError
        (b'{"reason": 5}', REASON_RULE),
        (b'{"reason": ["x"]}', REASON_RULE),
        (b'{"reason": "a\\u0000b"}', REASON_RULE),
        (b'{"reason": "' + b"x" * 1025 + b'"}', REASON_RULE),
        # legal JSON, but no character: the store could not write it and the head stopped
        (b'{"reason": "a\\ud800"}', f"reason: {SURROGATE_RULE}"),
    ],
)
def test_a_malformed_drain_body_is_a_400(tmp_path: Path, body: bytes, message: str) -> None:
    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        expect_400(await client.post("/hpcbatch/v1/nodes/n1/drain", content=body), message)
        assert head.state.nodes["n1"].state.value == "ONLINE"

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    "path", ["/hpcbatch/v1/users", "/hpcbatch/v1/users/u/keys", "/hpcbatch/v1/nodes/n1/drain"]
)
def test_a_body_nested_100_000_deep_is_a_400(tmp_path: Path, path: str) -> None:
    """json.loads raises RecursionError, which is no ValueError: it was a 500."""

    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        response = await client.post(path, content=b'{"name": ' + b"[" * 100_000)
        expect_400(response, "request body is not a JSON object")

    run(tmp_path, scenario)


def test_drain_names_an_unknown_node_and_keeps_a_good_reason(tmp_path: Path) -> None:
    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        response = await client.post("/hpcbatch/v1/nodes/n9/drain", json={})
        expect_400(response, "node: no node named 'n9'")
        reason = "x" * 1024
        response = await client.post("/hpcbatch/v1/nodes/n1/drain", json={"reason": reason})
        assert response.status_code == 200
        assert response.json()["node"]["stateReason"] == reason

    run(tmp_path, scenario)


def test_a_log_read_the_agent_never_answers_is_a_504_naming_the_node(tmp_path: Path) -> None:
    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        head.dispatcher.sessions["n1"].log_timeout_s = 0.05
        response = await client.get(f"/hpcbatch/v1/jobs/{job_id}/logs")
        assert (response.status_code, response.json()) == (
            504,
            {
                "__type": "ServerException",
                "message": f"node n1 did not answer for the logs of {job_id}/1 within 0.05 s;"
                " try again",
            },
        )

    run(tmp_path, scenario, SilentLogs("n1"))


def test_logs_of_a_node_not_connected_are_a_503_naming_it(tmp_path: Path) -> None:
    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        head.dispatcher.sessions.pop("n1")  # as the supervisor does when the link drops
        response = await client.get(f"/hpcbatch/v1/jobs/{job_id}/logs")
        assert (response.status_code, response.json()) == (
            503,
            {
                "__type": "ServerException",
                "message": "node n1 is not connected; its logs are unreachable until it is",
            },
        )

    run(tmp_path, scenario)


def test_health_answers_while_a_history_read_waits_behind_a_big_write(tmp_path: Path) -> None:
    """The loop sends a big write (a 1,000-child array waiting on a job) to a thread, held here inside the
    store's lock as a slow disk would hold it; a history read asked for meanwhile waits for the
    store, and /health must complete before that read does."""

    async def scenario(head: Head, client: httpx.AsyncClient, job_id: str) -> None:
        writing, entered, release = threading.Event(), threading.Event(), threading.Event()
        store = head.store
        write, read = store.write, store.history

        def slow_write(batch: WriteBatch) -> None:
            if len(batch.upserts) + len(batch.journal) > INLINE_WRITE_ROWS:
                with store._lock:  # what SqliteStore.write holds for a whole transaction
                    writing.set()
                    release.wait(DEADLINE_S)  # only a safety net: the test releases it
            write(batch)

        def history(subject: str, limit: int = 1000) -> list[JournalEntry]:
            entered.set()
            return read(subject, limit)

        store.write = slow_write  # type: ignore[method-assign]
        store.history = history  # type: ignore[method-assign]
        body = {"jobName": "a", "jobQueue": "default", "jobDefinition": "default"}
        body["arrayProperties"] = {"size": 1000}  # type: ignore[assignment]
        # children waiting on a job are stored one by one (children born RUNNABLE are not)
        body["dependsOn"] = [{"jobId": job_id}]  # type: ignore[assignment]
        submit = asyncio.create_task(client.post("/v1/submitjob", json=body))
        try:
            await until(writing.is_set, "the loop's big write")
            slow = asyncio.create_task(client.get(f"/hpcbatch/v1/jobs/{job_id}/history"))
            await until(entered.is_set, "the history read to reach the store")
            health = await client.get("/hpcbatch/v1/health")
            assert health.status_code == 200
            assert not slow.done(), "the history read ran on the event loop and blocked it"
        finally:
            release.set()
        answer: Any = (await slow).json()
        assert (await submit).status_code == 200
        assert answer["jobId"] == job_id
        assert [e["event"] for e in answer["events"]][0] == "SUBMITTED"

    run(tmp_path, scenario)
