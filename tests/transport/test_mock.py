"""MockAgentLink: the in-memory fake the head's unit tests drive."""

from __future__ import annotations

import asyncio

import pytest

from hpcbatch import protocol
from hpcbatch.errors import ProtocolError, TransportError
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.mock import MockAgentLink


def test_mock_records_and_answers_like_an_agent() -> None:
    async def scenario() -> None:
        link: AgentLink = MockAgentLink("n1", vcpus=8, gpus=[0, 1])
        assert isinstance(link, MockAgentLink)
        assert link.hello["node"]["vcpus"] == 8
        protocol.check_agent_message(link.hello)
        await link.send(
            protocol.launch(
                [protocol.attempt_spec("a", ["true"]), protocol.attempt_spec("b", ["true"])]
            )
        )
        running = [await link.receive(), await link.receive()]
        assert [m["updates"][0]["state"] for m in running] == ["RUNNING", "RUNNING"]
        assert set(link.launched) == {"a", "b"}
        link.finish("a", 0)
        link.finish("b", signal=9, reason="Terminated")
        link.fail_to_start("c", "CannotStartContainerError: command not found: x")
        a, b, c = [(await link.receive())["updates"][0] for _ in range(3)]
        assert (a["state"], a["exit_code"]) == ("EXITED", 0)
        assert (b["exit_code"], b["signal"], b["reason"]) == (None, 9, "Terminated")
        assert c["state"] == "FAILED_TO_START"
        await link.send(protocol.kill("a", "why"))
        await link.send(protocol.ack(["a", "b"]))
        assert link.kills == [("a", "why")] and link.acked == ["a", "b"]
        link.logs["a"] = "hello"
        await link.send(protocol.read_log(3, "a", 1, 2))
        reply = await link.receive()
        assert (reply["data"], reply["next_offset"], reply["complete"]) == ("el", 3, False)
        link.disconnect()
        assert await link.receive() is None
        with pytest.raises(TransportError):
            await link.send(protocol.ack([]))

    asyncio.run(scenario())


def test_mock_rejects_malformed_head_messages_and_agent_pushes() -> None:
    async def scenario() -> None:
        link = MockAgentLink(auto_start=False)
        with pytest.raises(ProtocolError, match="kill lacks field 'reason'"):
            await link.send({"v": 1, "type": "kill", "attempt_id": "a"})
        await link.send(protocol.launch([protocol.attempt_spec("a", ["true"])]))
        assert link.running == {}
        with pytest.raises(protocol.MessageError):
            link.push({"v": 1, "type": "updates", "updates": [{"attempt_id": "a"}]})
        await link.close()
        assert await link.receive() is None

    asyncio.run(scenario())
