"""A heartbeat's ``cpu_s`` (CPU seconds the agent's jobs used) lands on the agent's session as
``cpu_seconds``, which /metrics exports; None until a heartbeat carries it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.core.state import State
from hpcbatch.errors import ProtocolError
from hpcbatch.head.agents import AgentSession
from hpcbatch.transport.local import parse_agent_line
from hpcbatch.transport.mock import MockAgentLink

DEADLINE_S = 10.0


class RecordingLoop:
    """The part of HeadLoop a session uses: its state, and post() (recorded)."""

    def __init__(self) -> None:
        self.state = State()
        self.posted: list[ev.Event] = []

    def post(self, event: ev.Event, after: Callable[[], None] | None = None) -> None:
        self.posted.append(event)


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def beats(loop: RecordingLoop) -> int:
    return sum(isinstance(event, ev.NodeHeartbeat) for event in loop.posted)


async def _session_sees_cpu_seconds() -> None:
    link = MockAgentLink("n1")
    loop = RecordingLoop()
    loop_any: Any = loop
    session = AgentSession("n1", "ce", link, loop_any)
    task = asyncio.get_running_loop().create_task(session.run())
    try:
        assert session.cpu_seconds is None
        link.push(protocol.heartbeat(1, 0))  # an older agent's: no cpu_s
        await until(lambda: beats(loop) == 1)
        assert session.cpu_seconds is None
        link.push(protocol.heartbeat(2, 1, 1.5))
        await until(lambda: beats(loop) == 2)
        assert session.cpu_seconds == 1.5
        link.push({**protocol.heartbeat(3, 1), "cpu_s": 4})  # an int is a number too
        await until(lambda: beats(loop) == 3)
        assert session.cpu_seconds == 4.0 and isinstance(session.cpu_seconds, float)
        link.push(protocol.heartbeat(4, 0))  # a beat without it keeps the last value
        await until(lambda: beats(loop) == 4)
        assert session.cpu_seconds == 4.0
    finally:
        link.disconnect()
        await asyncio.wait_for(task, DEADLINE_S)


def test_a_heartbeat_cpu_s_lands_on_the_session() -> None:
    asyncio.run(_session_sees_cpu_seconds())


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "2", True])
def test_a_bad_cpu_s_never_reaches_the_session(bad: object) -> None:
    """The link checks every agent message: a heartbeat with a bad cpu_s is refused there."""
    with pytest.raises(protocol.MessageError, match="cpu_s"):
        MockAgentLink("n1").push({**protocol.heartbeat(1, 0), "cpu_s": bad})


def test_a_nan_cpu_s_line_is_refused_by_the_real_link() -> None:
    line = b'{"v":1,"type":"heartbeat","time_ms":1,"running":0,"cpu_s":NaN}\n'
    with pytest.raises(ProtocolError, match="bad 'cpu_s'"):
        parse_agent_line("n1", line)
    assert parse_agent_line("n1", line.replace(b"NaN", b"2.5"))["cpu_s"] == 2.5
