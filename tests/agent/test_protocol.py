"""The wire format: codec, validation, builders, and the head-side re-export."""

from __future__ import annotations

import json

import pytest
from hpcbatch_agent import protocol as p

import hpcbatch.protocol as head_protocol


def test_encode_is_one_compact_utf8_line() -> None:
    line = p.encode(p.kill("3f2c:17/2", "Terminated by user é"))
    assert (
        line
        == (
            '{"v":1,"type":"kill","attempt_id":"3f2c:17/2","reason":"Terminated by user é"}\n'
        ).encode()
    )
    assert p.decode(line) == json.loads(line)


def test_golden_launch_message() -> None:
    message = p.launch(
        [
            p.attempt_spec(
                "j:1#0", ["true"], env={"A": "b"}, gpus=[1], vcpus=2, memory_mib=512, timeout_s=60
            )
        ]
    )
    assert p.encode(message) == (
        b'{"v":1,"type":"launch","attempts":[{"attempt_id":"j:1#0","command":["true"],'
        b'"env":{"A":"b"},"cwd":null,"timeout_s":60,"gpus":[1],"vcpus":2,"memory_mib":512}]}\n'
    )
    p.check_head_message(message)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{nope", "malformed message: not valid JSON"),
        (b"[1, 2]", "malformed message: not a JSON object"),
        (b'{"type": "hello"}', "malformed message: missing field 'v'"),
        (b'{"v": 1}', "malformed message: missing or non-string field 'type'"),
    ],
)
def test_decode_rejects_malformed_lines_non_fatally(line: bytes, reason: str) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.decode(line)
    assert caught.value.reason.startswith(reason)
    assert not caught.value.fatal


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_another_version_is_fatal(version: object) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.decode(json.dumps({"v": version, "type": "hello"}))
    assert caught.value.fatal
    assert caught.value.reason == p.version_error_reason(version)
    if version == 2:
        assert caught.value.reason == "protocol version 2 not supported; agent speaks 1"


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"v": 1, "type": "launch"}, "launch lacks field 'attempts'"),
        (
            {"v": 1, "type": "launch", "attempts": [{"attempt_id": "a"}]},
            "launch.attempts[0] lacks field 'command'",
        ),
        (p.launch([{**p.attempt_spec("a", ["x"]), "command": []}]), "bad 'command'"),
        (p.launch([{**p.attempt_spec("a", ["x"]), "env": {"A": 1}}]), "bad 'env'"),
        ({"v": 1, "type": "kill", "attempt_id": "a"}, "kill lacks field 'reason'"),
        (
            {
                "v": 1,
                "type": "read_log",
                "req": True,
                "attempt_id": "a",
                "offset": 0,
                "max_bytes": 1,
            },
            "bad 'req'",
        ),
        ({"v": 1, "type": "dance"}, "unknown head message type 'dance'"),
    ],
)
def test_head_message_validation_names_what_is_wrong(message: dict, fragment: str) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.check_head_message(message)
    assert fragment in caught.value.reason


def test_every_builder_passes_its_own_validation() -> None:
    for message in (
        p.head_hello("h"),
        p.launch([p.attempt_spec("a", ["true"])]),
        p.kill("a", "r"),
        p.ack(["a"]),
        p.read_log(1, "a"),
        p.shutdown(True),
    ):
        p.check_head_message(message)
    node: p.NodeInfo = {
        "name": "n",
        "vcpus": 2,
        "memory_mib": 10,
        "cgroups": "v2",
        "hostname": "h",
        "gpus": [{"index": 0, "uuid": None, "name": None, "memory_mib": None}],
    }
    update = p.attempt_update("a", p.EXITED, "/l", exit_code=0, stopped_at_ms=5)
    for message in (
        p.agent_hello(node, [update]),
        p.updates([update]),
        p.heartbeat(1, 0),
        p.log_data(1, "a", "x", 1, True),
        p.error("boom"),
    ):
        p.check_agent_message(message)
    with pytest.raises(p.MessageError, match="updates.updates\\[0\\] has a bad 'state'"):
        p.check_agent_message(p.updates([{**update, "state": "DONE"}]))


def test_head_imports_the_same_protocol() -> None:
    assert head_protocol.encode is p.encode
    assert head_protocol.PROTOCOL_VERSION == 1
    assert set(head_protocol.__all__) == set(p.__all__)


def test_coalesce_drops_a_running_that_its_end_follows_and_keeps_the_rest() -> None:
    started = p.attempt_update("a", p.RUNNING, "/l/a", pid=7, started_at_ms=1)
    ended = p.attempt_update(
        "a", p.EXITED, "/l/a", pid=7, started_at_ms=1, stopped_at_ms=2, exit_code=0
    )
    other = p.attempt_update("b", p.RUNNING, "/l/b", pid=8, started_at_ms=1)
    assert p.coalesce([started, other, ended]) == [other, ended]
    assert p.coalesce([started, other]) == [started, other]
