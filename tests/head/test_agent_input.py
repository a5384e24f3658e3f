"""The head against agents that say what they should not: the loop with real sessions and the
in-package MockAgentLink. Ids that name nothing, and reports on another node's attempts, are
dropped with a logged reason; the head keeps running and no job changes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, JobStatus
from hpcbatch.core.state import State
from hpcbatch.errors import ValidationError
from hpcbatch.head.agents import AgentSession
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.loop import HeadLoop
from hpcbatch.store import MemoryStore
from hpcbatch.transport.mock import MockAgentLink

FORGED = ["garbage", "x/notanumber", "nosuchjob/0", "../../etc/passwd/1"]
DEADLINE_S = 10.0


@dataclass
class Head:
    loop: HeadLoop
    dispatcher: Dispatcher
    stopped: list[bool]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.loop.state

    def connect(self, link: MockAgentLink) -> AgentSession:
        name = link.hello["node"]["name"]
        session = AgentSession(name, "ce", link, self.loop)
        self.dispatcher.sessions[name] = session
        self.tasks.append(asyncio.get_running_loop().create_task(session.run()))
        return session

    async def settle(self, *links: MockAgentLink) -> None:
        """Wait until every queued agent message is handled and its events are stepped."""
        await until(lambda: all(link._inbox.empty() for link in links))
        heartbeat = ev.NodeHeartbeat(cause="settle", now=1, node="none")
        await asyncio.wait_for(self.loop.call(heartbeat), DEADLINE_S)  # a stopped loop: fail

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.loop.stop()


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def _head() -> Head:
    dispatcher = Dispatcher()
    stopped: list[bool] = []
    loop = HeadLoop(State(), MemoryStore(), dispatcher, on_fatal=lambda: stopped.append(True))
    loop.start()
    for event in (
        ev.CreateComputeEnvironment(cause="c", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"),
        ev.CreateJobQueue(cause="c", now=1, name="q", priority=1, ce_order=((1, "ce"),)),
        ev.RegisterJobDefinition(
            cause="c", now=1, name="d", def_type="container", spec=JobSpec(command=("true",))
        ),
    ):
        await loop.call(event)
    return Head(loop, dispatcher, stopped)


async def _running_on(head: Head, link: MockAgentLink) -> str:
    head.connect(link)
    await until(lambda: link.hello["node"]["name"] in head.state.nodes)
    await head.loop.call(
        ev.SubmitJob(cause="s", now=1, job_id="job-b", name="j", queue="q", definition="d")
    )
    job = head.state.jobs["job-b"]
    await until(lambda: job.status is JobStatus.RUNNING)
    return "job-b/1"


def _update(aid: str, state: str = protocol.EXITED) -> protocol.AttemptUpdate:
    running = state == protocol.RUNNING
    return protocol.attempt_update(
        aid,
        state,
        "/x.log",
        pid=4242,
        started_at_ms=5,
        stopped_at_ms=None if running else 9,
        exit_code=None if running else 1,
    )


def test_forged_ids_and_foreign_reports_are_dropped_and_the_head_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="hpcbatch.agents")

    async def scenario() -> None:
        head = await _head()
        b = MockAgentLink("node-b")
        aid = await _running_on(head, b)
        # Node A says hello knowing B's attempt and a planted one, both "running", then reports
        # them and more forged ids as failed.
        a = MockAgentLink(
            "node-a", attempts=[_update(aid, protocol.RUNNING), _update("garbage", "RUNNING")]
        )
        head.connect(a)
        a.push(protocol.updates([_update(x) for x in [*FORGED, aid]]))
        await head.settle(a)
        job = head.state.jobs["job-b"]
        assert head.stopped == [] and head.loop._task is not None and not head.loop._task.done()
        assert job.status is JobStatus.RUNNING and job.attempts[-1].node == "node-b"
        assert head.state.nodes["node-b"].attempts == {aid}
        assert head.state.nodes["node-b"].allocated.cpu_milli > 0
        assert a.acked == [] and a.kills == []
        b.finish(aid, 0)  # the node that holds it still reports it
        await until(lambda: job.status is JobStatus.SUCCEEDED)
        await head.close()

    asyncio.run(scenario())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for aid in [*FORGED, "job-b/1"]:
        assert any(m.startswith("agent node-a:") and repr(aid) in m for m in warned), aid
    assert any("placed on node node-b, not node-a" in m for m in warned)


class SilentLogs(MockAgentLink):
    """An agent that never answers a read_log."""

    def _answer_read_log(self, message: dict[str, object]) -> None:
        del message


def test_a_read_log_that_times_out_leaves_no_pending_request() -> None:
    async def scenario() -> None:
        head = await _head()
        session = head.connect(SilentLogs("n"))
        session.log_timeout_s = 0.05
        with pytest.raises(TimeoutError):
            await session.read_log("job/1", 0, 100)
        assert session._pending == {}
        await head.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("offset", "size", "field"),
    [(-1, 10, "offset"), (2**63, 10, "offset"), (2**62 + 1, 10, "offset"), (0, 0, "max_bytes")],
)
def test_a_log_window_out_of_bounds_never_reaches_the_agent(
    offset: int, size: int, field: str
) -> None:
    async def scenario() -> None:
        head = await _head()
        link = MockAgentLink("n")
        session = head.connect(link)
        with pytest.raises(ValidationError) as caught:
            await session.read_log("job/1", offset, size)
        assert caught.value.field == field and "from" in caught.value.rule
        assert [m for m in link.sent if m["type"] == "read_log"] == []
        assert session._pending == {}
        await head.close()

    asyncio.run(scenario())
