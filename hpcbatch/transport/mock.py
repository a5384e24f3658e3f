"""An in-memory AgentLink for head unit tests: no processes, no sockets, no clock.

Vocabulary:
    inbox      the agent messages a test has queued (``push`` or the helpers below) for the
               head to ``receive``, in order.
    auto_start when true (the default), a launch is answered at once with RUNNING updates,
               as a real agent would; ``finish`` / ``fail_to_start`` then end attempts.

Outgoing messages are validated with the real protocol checks, so a head that builds a
malformed message fails its unit test with ProtocolError, as it would against an agent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Iterable
from typing import Any

from hpcbatch import protocol
from hpcbatch.errors import ProtocolError, TransportError

_CLOSED: dict[str, Any] = {"type": "__closed__"}


class MockAgentLink:
    def __init__(
        self,
        node_name: str = "mock-node",
        *,
        vcpus: int = 4,
        memory_mib: int = 16384,
        gpus: Iterable[int] = (),
        attempts: Iterable[protocol.AttemptUpdate] = (),
        auto_start: bool = True,
    ) -> None:
        node: protocol.NodeInfo = {
            "name": node_name,
            "vcpus": vcpus,
            "memory_mib": memory_mib,
            "gpus": [{"index": i, "uuid": None, "name": None, "memory_mib": None} for i in gpus],
            "cgroups": "none",
            "hostname": node_name,
        }
        self.hello: dict[str, Any] = protocol.agent_hello(node, attempts)
        self.auto_start = auto_start
        self.sent: list[dict[str, Any]] = []
        self.launched: dict[str, protocol.AttemptSpec] = {}
        self.kills: list[tuple[str, str]] = []
        self.acked: list[str] = []
        self.logs: dict[str, str] = {}  # attempt_id -> text served by read_log
        self.running: dict[str, int] = {}  # attempt_id -> fake pid
        self.closed = False
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pids = itertools.count(10_000)

    # --- AgentLink --------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        self.send_now(message)

    def send_now(self, message: dict[str, Any]) -> Awaitable[None] | None:
        if self.closed:
            raise TransportError(f"agent on node {self.hello['node']['name']}: link closed")
        try:
            protocol.decode(protocol.encode(message))
            protocol.check_head_message(message)
        except protocol.MessageError as exc:
            raise ProtocolError(f"head sent a bad message: {exc.reason}") from None
        self.sent.append(message)
        kind = message["type"]
        if kind == "launch":
            for spec in message["attempts"]:
                self.launched[spec["attempt_id"]] = spec
                if self.auto_start:
                    self.start(spec["attempt_id"])
        elif kind == "kill":
            self.kills.append((message["attempt_id"], message["reason"]))
        elif kind == "ack":
            self.acked.extend(message["attempt_ids"])
        elif kind == "read_log":
            self._answer_read_log(message)
        return None

    async def receive(self) -> dict[str, Any] | None:
        if self.closed and self._inbox.empty():
            return None
        message = await self._inbox.get()
        return None if message is _CLOSED else message

    async def close(self) -> None:
        self.closed = True
        self._inbox.put_nowait(_CLOSED)

    # --- driving it from a test -------------------------------------------------------------

    def push(self, message: dict[str, Any]) -> None:
        """Queue an agent message (validated) for the head to receive."""
        protocol.check_agent_message(message)
        self._inbox.put_nowait(message)

    def disconnect(self) -> None:
        """The agent went away: receive() returns None after what is already queued."""
        self.closed = True
        self._inbox.put_nowait(_CLOSED)

    def _log_path(self, attempt_id: str) -> str:
        return f"/mock/{self.hello['node']['name']}/logs/{attempt_id}.log"

    def start(self, attempt_id: str, *, started_at_ms: int = 0) -> protocol.AttemptUpdate:
        pid = next(self._pids)
        self.running[attempt_id] = pid
        update = protocol.attempt_update(
            attempt_id,
            protocol.RUNNING,
            self._log_path(attempt_id),
            pid=pid,
            started_at_ms=started_at_ms,
        )
        self.push(protocol.updates([update]))
        return update

    def finish(
        self,
        attempt_id: str,
        exit_code: int | None = 0,
        *,
        signal: int | None = None,
        reason: str | None = None,
        stopped_at_ms: int = 0,
    ) -> protocol.AttemptUpdate:
        pid = self.running.pop(attempt_id, None)
        update = protocol.attempt_update(
            attempt_id,
            protocol.EXITED,
            self._log_path(attempt_id),
            pid=pid,
            started_at_ms=0 if pid is not None else None,
            stopped_at_ms=stopped_at_ms,
            exit_code=None if signal is not None else exit_code,
            signal=signal,
            reason=reason,
        )
        self.push(protocol.updates([update]))
        return update

    def fail_to_start(self, attempt_id: str, reason: str) -> protocol.AttemptUpdate:
        self.running.pop(attempt_id, None)
        update = protocol.attempt_update(
            attempt_id, protocol.FAILED_TO_START, self._log_path(attempt_id), reason=reason
        )
        self.push(protocol.updates([update]))
        return update

    def heartbeat(self, time_ms: int = 0) -> None:
        self.push(protocol.heartbeat(time_ms, len(self.running)))

    def _answer_read_log(self, message: dict[str, Any]) -> None:
        attempt_id = message["attempt_id"]
        if attempt_id not in self.logs:
            self.push(
                protocol.log_data(
                    message["req"], attempt_id, "", message["offset"], True, error="no such attempt"
                )
            )
            return
        data = self.logs[attempt_id].encode()
        chunk = data[message["offset"] : message["offset"] + message["max_bytes"]]
        next_offset = message["offset"] + len(chunk)
        complete = attempt_id not in self.running and next_offset >= len(data)
        self.push(
            protocol.log_data(
                message["req"], attempt_id, chunk.decode(errors="replace"), next_offset, complete
            )
        )
