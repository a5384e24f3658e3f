"""An in-process head for the fuzzer: the real Head, ApiApp and SqliteStore on an event loop
of its own, one mock agent (node ``n1``, jobs start at once), and requests handed to the ASGI
app as uvicorn would hand them (raw path and query as the wire's ASCII bytes, the body in
chunks), so nothing between the fuzzer and the app can tidy up a request.

Two mock nodes: ``n1`` (4 vCPUs) and ``n2`` (2 vCPUs, 2 GPUs); ``end_attempt`` ends a running
attempt as a real agent would report it, so jobs also finish, fail, retry and release what
they held.

The loop is kept across hypothesis examples and runs only inside ``send``: the head's tasks
(the loop, the mock agent, the timers) make progress while a request is served, and the state
is quiet, and checkable, between examples.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from hpcbatch.head.api.app import ApiApp
from hpcbatch.head.auth.identify import Principal
from hpcbatch.head.config import load_config
from hpcbatch.head.service import Head
from hpcbatch.head.supervisor import NodeSpec
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.mock import MockAgentLink
from tests.fuzz.wire import Request

CHUNK = 64 * 1024
SETTLE_S = 10.0
ANSWER_S = 30.0  # generous: a request the loop never answers fails, it does not hang


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# Who an unsigned in-process request acts as: root (an admin: every route is open) or nobody
# (a plain user: the owner and admin rules are fuzzed too).
ADMIN = Principal("root", True, "peer", uid=0)
PLAIN = Principal("nobody", False, "peer", uid=65534)


class InProcessHead:
    def __init__(self, data_dir: Path) -> None:
        config = load_config(None, data_dir=data_dir, listen="127.0.0.1:0")
        config = type(config)(**{**config.__dict__, "local": type(config.local)(nodes=0)})
        self.loop = asyncio.new_event_loop()
        self.head = Head(config)
        # the loop's fail-stop: the daemon SIGTERMs itself; here it is recorded and asserted on
        self.fatal: list[str] = []
        self.head.loop.on_fatal = lambda: self.fatal.append("the head's loop stopped")
        self.apps = {True: ApiApp(self.head, ADMIN), False: ApiApp(self.head, PLAIN)}
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        await self.head.start()
        self.agents = [MockAgentLink("n1"), MockAgentLink("n2", vcpus=2, gpus=(0, 1))]
        self.head.nodes.start(
            [NodeSpec(a.hello["node"]["name"], "local", _connect(a)) for a in self.agents]
        )
        deadline = asyncio.get_running_loop().time() + SETTLE_S
        while len(self.head.dispatcher.sessions) < len(self.agents):
            assert asyncio.get_running_loop().time() < deadline, "the mock nodes did not connect"
            await asyncio.sleep(0.01)

    def end_attempt(self, index: int, outcome: str) -> None:
        """End the ``index``-th running attempt (modulo how many run) as ``outcome`` says:
        ``exit0``, ``exit1``, ``signal`` or ``failed-to-start``; nothing when none runs."""
        running = [(a, aid) for a in self.agents for aid in sorted(a.running)]
        if not running:
            return
        agent, attempt = running[index % len(running)]
        if outcome == "failed-to-start":
            agent.fail_to_start(attempt, "fuzzed: the command was not found")
        elif outcome == "signal":
            agent.finish(attempt, signal=9)
        else:
            agent.finish(attempt, 0 if outcome == "exit0" else 1)
        self.settle()

    def send(self, request: Request, admin: bool = True) -> Response:
        return self.loop.run_until_complete(self._send(request, admin))

    async def _send(self, request: Request, admin: bool) -> Response:
        chunks = [request.body[i : i + CHUNK] for i in range(0, len(request.body), CHUNK)]
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks or [b""])
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)  # as uvicorn: nothing more until the client goes
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        try:
            await asyncio.wait_for(self.apps[admin](_scope(request), receive, send), ANSWER_S)
        except TimeoutError:
            raise AssertionError(f"no answer within {ANSWER_S} s; {self.fatal}") from None
        assert not self.fatal, f"{self.fatal} (see the log above)"
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        return Response(start["status"], headers, body)

    def settle(self) -> None:
        """Let the head's tasks run what the last request set going (launches, updates); the
        nodes beat, so that a long run never sees them lost."""
        for agent in self.agents:
            agent.heartbeat()
        self.loop.run_until_complete(asyncio.sleep(0.01))
        assert not self.fatal, f"{self.fatal} (see the log above)"

    def close(self) -> None:
        self.loop.run_until_complete(self.head.stop())
        self.loop.close()


def _connect(agent: MockAgentLink) -> Callable[[], Awaitable[AgentLink]]:
    async def connect() -> AgentLink:
        return agent

    return connect


def _scope(request: Request) -> dict[str, Any]:
    raw = request.path.encode("ascii")
    headers = [(b"host", b"head"), (b"content-length", str(len(request.body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": unquote(raw.decode("ascii")),  # as uvicorn does
        "raw_path": raw,
        "query_string": request.query.encode("ascii"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 7650),
    }
