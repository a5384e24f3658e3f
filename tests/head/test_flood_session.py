"""A flooding agent against the head's own parts in one process — the loop, real sessions, the
node supervisor and the in-package MockAgentLink: the session stops reading at the message
that spent its budget (the backlog never reaches the loop), the node goes DOWN with the
reason, its running job is held, and the supervisor reconnects only after its backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, JobStatus, NodeState
from hpcbatch.core.state import State
from hpcbatch.head import supervisor as supervisor_module
from hpcbatch.head.agents import LOGGED_COMPLAINTS, AgentSession
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.flood import FloodLimit
from hpcbatch.head.loop import HeadLoop
from hpcbatch.head.supervisor import NodeSpec, NodeSupervisor
from hpcbatch.store import MemoryStore
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.mock import MockAgentLink

DEADLINE_S = 10.0
LIMIT = FloodLimit(rate=10, burst=100)
REASON = "agent sent 101 messages in 0.00 s (limit: 10/s, bursts of 100): disconnected"
LIMIT_TEXT = "(limit: 10/s, bursts of 100): disconnected"


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def started_loop(dispatcher: Dispatcher | None = None) -> HeadLoop:
    loop = HeadLoop(State(), MemoryStore(), dispatcher or Dispatcher())
    loop.start()
    for event in (
        ev.CreateComputeEnvironment(cause="c", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"),
        ev.CreateJobQueue(cause="c", now=1, name="q", priority=1, ce_order=((1, "ce"),)),
        ev.RegisterJobDefinition(
            cause="c", now=1, name="d", def_type="container", spec=JobSpec(command=("true",))
        ),
    ):
        await loop.call(event)
    return loop


def flood(link: MockAgentLink, count: int) -> None:
    line = protocol.heartbeat(1, 0)
    for _ in range(count):
        link.push(line)


def test_a_session_stops_reading_at_the_message_that_spent_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        loop = await started_loop()
        posted: list[ev.Event] = []
        post = loop.post

        def spy(event: ev.Event, after_commit: Callable[[], None] | None = None) -> None:
            posted.append(event)
            post(event, after_commit)

        monkeypatch.setattr(loop, "post", spy)
        link = MockAgentLink("n")
        flood(link, 10_000)
        session = AgentSession("n", "ce", link, loop, limit=LIMIT, clock=lambda: 0.0)
        await asyncio.wait_for(session.run(), DEADLINE_S)  # returns: the link is still open
        assert session.hung_up == REASON
        assert sum(isinstance(e, ev.NodeHeartbeat) for e in posted) == 100
        assert link._inbox.qsize() == 10_000 - 101  # the backlog was never read
        await loop.stop()

    asyncio.run(scenario())


def test_replies_to_the_head_s_own_requests_are_not_counted() -> None:
    async def scenario() -> None:
        loop = await started_loop()
        link = MockAgentLink("n")
        link.logs["job/1"] = "hello\n"
        session = AgentSession("n", "ce", link, loop, limit=FloodLimit(1, 2), clock=lambda: 0.0)
        task = asyncio.get_running_loop().create_task(session.run())
        for _ in range(5):
            assert (await session.read_log("job/1", 0, 100))["data"] == "hello\n"
        flood(link, 2)
        link.push(protocol.log_data(999, "job/1", "x", 1, True))  # nobody asked: counted
        await asyncio.wait_for(task, DEADLINE_S)
        assert session.hung_up is not None and session.hung_up.startswith("agent sent 3 ")
        await loop.stop()

    asyncio.run(scenario())


def test_within_its_budget_an_agent_cannot_fill_the_head_s_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Error reports and reports on attempts not its own are logged, but only so many a
    connection: one ``updates`` message of forged ids must not write a thousand lines."""
    caplog.set_level(logging.WARNING, logger="hpcbatch.agents")

    async def scenario() -> None:
        loop = await started_loop()
        link = MockAgentLink("n")
        for i in range(500):
            link.push(protocol.error(f"complaint {i}"))
        forged = protocol.attempt_update("nosuchjob/1", protocol.RUNNING, "/x", pid=1)
        link.push(protocol.updates([forged] * 1000))
        link.disconnect()
        session = AgentSession("n", "ce", link, loop)
        await asyncio.wait_for(session.run(), DEADLINE_S)
        assert session.hung_up is None
        await loop.stop()

    asyncio.run(scenario())
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == LOGGED_COMPLAINTS + 1
    assert warned[0] == "agent n reports: complaint 0"
    assert warned[-1] == (
        f"agent n: {LOGGED_COMPLAINTS} warnings about what it sent: no more are logged until "
        "it reconnects"
    )


class Agent:
    """What a node's connect returns, in turn: a flooding link with the job still running,
    then an honest one that says it still runs it."""

    def __init__(self, aid: str) -> None:
        self.aid = aid
        self.connects: list[float] = []
        self.links: list[MockAgentLink] = []

    async def connect(self) -> AgentLink:
        self.connects.append(time.monotonic())
        running = protocol.attempt_update(
            self.aid, protocol.RUNNING, "/x.log", pid=7, started_at_ms=5
        )
        link = MockAgentLink("n", attempts=[running])
        if len(self.connects) == 1:
            flood(link, 1_000)
        self.links.append(link)
        return link


def test_a_flooding_node_goes_down_with_the_reason_its_job_held_and_is_reconnected_after_the_backoff(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hpcbatch.nodes")
    monkeypatch.setattr(supervisor_module, "MAX_BACKOFF_S", 0.5)

    async def scenario() -> str:
        dispatcher = Dispatcher()
        loop = await started_loop(dispatcher)
        nodes = NodeSupervisor(loop, dispatcher, 30.0, LIMIT)
        node = MockAgentLink("n")  # the job runs there first, from an honest link
        session = AgentSession("n", "ce", node, loop)
        dispatcher.sessions["n"] = session
        first = asyncio.get_running_loop().create_task(session.run())
        await loop.call(
            ev.SubmitJob(cause="s", now=1, job_id="job", name="j", queue="q", definition="d")
        )
        job = loop.state.jobs["job"]
        await until(lambda: job.status is JobStatus.RUNNING, "the job to run")
        node.disconnect()
        await first
        dispatcher.sessions.clear()

        agent = Agent("job/1")
        nodes.start([NodeSpec("n", "ce", agent.connect)])
        state = loop.state.nodes["n"]
        await until(lambda: state.state is NodeState.DOWN, "the node DOWN")
        reason = state.state_reason  # on a real clock: 101 messages in a few milliseconds
        assert reason.startswith("agent sent 101 messages in 0.0") and reason.endswith(LIMIT_TEXT)
        assert len(agent.connects) == 1 and agent.links[0].closed
        assert job.status is JobStatus.RUNNING and state.attempts == {"job/1"}  # held
        await until(lambda: state.state is NodeState.ONLINE, "the node back")
        assert agent.connects[1] - agent.connects[0] >= 0.5  # the backoff, not a tight loop
        assert job.status is JobStatus.RUNNING and state.state_reason == "agent connected"
        await nodes.stop()
        await loop.stop()
        return reason

    reason = asyncio.run(scenario())
    warned = [r.getMessage() for r in caplog.records]
    assert f"node n: {reason}; reconnecting in 0.5 s" in warned
