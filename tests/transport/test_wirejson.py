"""The head's fast JSON for agent lines reads and writes what the protocol's ``json`` does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hpcbatch import protocol
from hpcbatch.protocol import wirejson

LINES = [
    protocol.encode(protocol.heartbeat(1_700_000_000_000, 3, cpu_s=12.5)),
    protocol.encode(
        {"v": 1, "type": "updates", "updates": [{"attempt_id": "j/1", "reason": "é \u2028 \x01"}]}
    ),
    b'{"v":1,"type":"heartbeat","time_ms":9223372036854775807}\n',  # the largest int64
    b'{"v":1,"type":"heartbeat","time_ms":123456789012345678901234567890}\n',  # past 64 bits
    b'{"v":1,"type":"heartbeat","time_ms":-9223372036854775809}\n',
    b'{"v":1,"type":"heartbeat","cpu_s":NaN}\n',
    b'{"v":1,"type":"heartbeat","cpu_s":1e400}\n',
    b'{"v":1,"type":"x","reason":"\\ud800"}\n',  # a lone surrogate
    b'\xef\xbb\xbf{"v":1,"type":"heartbeat"}\n',  # a byte order mark
    b'{"v":1,"type":"heartbeat","a":1,"a":2}\n',
]
BAD_LINES = [b'{"v":1,', b"\xff\xfe", b"[1,2]", b'{"type":"heartbeat"}', b'{"v":2,"type":"x"}']


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0), NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("line", LINES)
def test_a_line_reads_as_json_reads_it(line: bytes) -> None:
    try:
        expected = json.loads(line)
    except ValueError as error:
        with pytest.raises(type(error)):
            wirejson.loads(line)
        return
    assert same(wirejson.loads(line), expected)


def test_an_int_past_64_bits_stays_an_int() -> None:
    assert wirejson.loads(LINES[3])["time_ms"] == 123456789012345678901234567890


@pytest.mark.parametrize("line", BAD_LINES)
def test_a_bad_line_gets_the_protocols_own_error(line: bytes) -> None:
    with pytest.raises(protocol.MessageError) as expected:
        protocol.decode(line)
    with pytest.raises(protocol.MessageError) as got:
        wirejson.decode(line)
    assert (got.value.reason, got.value.fatal) == (expected.value.reason, expected.value.fatal)


@pytest.mark.parametrize(
    "message",
    [
        protocol.launch([protocol.attempt_spec("j/1", ["echo", 'é\n"\\'], env={"A": "\u2028"})]),
        protocol.ack(["j/1", "j/2"]),
        {"v": 1, "type": "x", "big": 2**70},  # orjson refuses: json writes it
        {"v": 1, "type": "x", 1: "an int key"},  # orjson refuses: json writes "1"
    ],
)
def test_a_message_is_written_as_the_protocol_writes_it(message: dict[str, Any]) -> None:
    assert wirejson.encode(message) == protocol.encode(message)


def test_a_lone_surrogate_fails_as_the_protocol_fails() -> None:
    message = {"v": 1, "type": "x", "s": "\ud800"}
    with pytest.raises(UnicodeEncodeError):
        protocol.encode(message)
    with pytest.raises(UnicodeEncodeError):
        wirejson.encode(message)
