"""The head's fast JSON for agent lines: orjson where it reads and writes exactly what ``json``
would, ``json`` where it might not.

At 1,000 nodes the head decodes two or three agent lines and encodes one or two messages a job;
``json`` spent ~6 % of its CPU on them (docs/benchmarks.md, "Issue 15"). The agent keeps the
standard library (it runs on bare hosts); the bytes on the wire are the same JSON either way.

Where orjson differs from ``json`` the line goes to ``json``, so the protocol's checks see the
values they always saw: an integer of 19 digits or more (orjson turns one past 64 bits into a
float), and whatever orjson refuses (NaN and Infinity, a byte order mark, a lone surrogate).
Writing, orjson refuses an int past 64 bits, a lone surrogate and a non-string key, which
``json`` then writes; the head sends no NaN (its values are checked integers and strings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from hpcbatch import protocol

# Every digit as "0", then a search for 19 of them: ~0.6 µs a line, where a regex for
# nineteen digits cost ~6 µs, more than json's whole parse of the line.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def loads(line: bytes | str) -> Any:
    """``json.loads(line)``, faster for the bytes of a line read from an agent."""
    if isinstance(line, bytes) and line.translate(_DIGITS_AS_ZERO).find(_NINETEEN_DIGITS) < 0:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass  # json decides: it accepts some of what orjson refuses, and words the error
    return json.loads(line)


def decode(line: bytes | str) -> protocol.Message:
    """``protocol.decode`` with the fast reader: the same message, or the same MessageError."""
    return protocol.decode(line, loads)


def encode(message: Mapping[str, Any]) -> bytes:
    """``protocol.encode``'s line: the same bytes but for some floats' exponents (1e-7 for
    1e-07: the same number), which no head message holds."""
    try:
        return orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return protocol.encode(message)
