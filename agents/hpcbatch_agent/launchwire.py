"""The launch wire format, version 1: agent <-> launch client over an agent's launch port.

Vocabulary:
    handshake  three JSON lines. The server: ``{"v":1,"type":"challenge","nonce":S}``. The
               client: ``{"v":1,"type":"request","attempt_id":A,"command":C,"nonce":N,
               "proof":P}`` with P = HMAC-SHA256(key, client_text(S, N, A, C)): it proves the
               gang's key and binds its own attempt id and the command. A request may carry
               ``"env":{name: value}``, the caller's environment, for a command whose
               environment the caller's MPI does not forward itself (Hydra's proxy under
               ``HYDRA_ENV=none``, mpienv.py); the proof then binds it too. The server answers
               ``{"v":1,"type":"accepted","proof":Q}`` with Q = HMAC-SHA256(key,
               server_text(S, N)), so the client knows it reached an agent that holds the key,
               or ``{"v":1,"type":"refused","reason":...}`` and closes. Nonces: 32 random
               bytes, hex. The key itself never crosses the wire.
    frame      after ``accepted``, both ways: 1 byte channel, 4 bytes big-endian length, the
               payload. Client -> server: STDIN (an empty one: stdin's EOF). Server ->
               client: STDOUT, STDERR (empty: EOF), then EXIT, whose payload is the JSON
               ``{"exit_code": int|null, "signal": int|null}``; the server closes after it.
    status     the client's exit status: the exit code, or 128 + the signal, as ssh reports.
    client env where the client finds its gang: ``HPCBATCH_LAUNCH_PEERS``, the key file's path
               ``HPCBATCH_LAUNCH_KEY_FILE`` and its own attempt ``HPCBATCH_ATTEMPT_ID``
               (jobs.ATTEMPT_VAR; named here too so the client imports nothing else).
Pure; standard library only. The launch client imports this module on every MPI daemon's start
(bench/mpi_hpcbatch.py), so it imports no more than the wire needs: no ``re``, no ``typing``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~4 ms a start)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

LAUNCH_KEY_FILE = "HPCBATCH_LAUNCH_KEY_FILE"
LAUNCH_PEERS = "HPCBATCH_LAUNCH_PEERS"
ATTEMPT_VAR = "HPCBATCH_ATTEMPT_ID"
VERSION = 1
STDIN, STDOUT, STDERR, EXIT = 0, 1, 2, 3
HEADER = struct.Struct(">BI")
MAX_FRAME = 1 << 20
MAX_LINE = 1 << 20  # an Open MPI orted command line is ~2 KB
_HEX = frozenset("0123456789abcdef")


class WireError(ValueError):
    """A line or frame that breaks the launch protocol; the message says how."""


def is_hex64(text: str) -> bool:
    """64 lowercase hex digits: a nonce, a proof or a key."""
    return len(text) == 64 and _HEX.issuperset(text)


def line(kind: str, **fields: Any) -> bytes:
    return (
        json.dumps({"v": VERSION, "type": kind, **fields}, separators=(",", ":")).encode() + b"\n"
    )


def parse_line(data: bytes, kind: str, fields: Mapping[str, type]) -> dict[str, Any]:
    """The message of ``kind`` in ``data``, each of ``fields`` of its type; else WireError."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"malformed launch message: not JSON ({exc})") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise WireError(f"malformed launch message: not a version {VERSION} object")
    if message.get("type") != kind:
        raise WireError(f"malformed launch message: expected {kind!r}, got {message.get('type')!r}")
    for name, typ in fields.items():
        if not isinstance(message.get(name), typ):
            raise WireError(f"malformed launch message: {kind} lacks a {typ.__name__} {name!r}")
    return message


def request_problem(message: dict[str, Any]) -> str | None:
    """Why a well-typed request cannot be served, naming the field; or None."""
    if not is_hex64(message["nonce"]):
        return "'nonce' must be 64 lowercase hex digits"
    if not is_hex64(message["proof"]):
        return "'proof' must be 64 lowercase hex digits"
    for name in ("attempt_id", "command"):
        if not message[name] or "\0" in message[name]:
            return f"'{name}' must be non-empty, without a NUL byte"
    env = message.get("env")
    if env is not None and (
        not isinstance(env, dict)
        or not all(isinstance(v, str) and "\0" not in v for v in env.values())
        or not all(k and "=" not in k and "\0" not in k for k in env)
    ):
        return "'env' must map names (without '=' or NUL) to strings (without NUL)"
    return None


def client_text(
    server_nonce: str,
    client_nonce: str,
    attempt_id: str,
    command: str,
    env: Mapping[str, str] | None = None,
) -> bytes:
    parts = ["hpcbatch-launch v1 client", server_nonce, client_nonce, attempt_id, command]
    if env is not None:
        parts.append(json.dumps(env, sort_keys=True, separators=(",", ":")))
    return "\0".join(parts).encode()


def server_text(server_nonce: str, client_nonce: str) -> bytes:
    return "\0".join(("hpcbatch-launch v1 server", server_nonce, client_nonce)).encode()


def proof(key: bytes, text: bytes) -> str:
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def proves(key: bytes, text: bytes, claimed: str) -> bool:
    return hmac.compare_digest(proof(key, text), claimed)


def frame(channel: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(channel, len(payload)) + payload


def exit_payload(exit_code: int | None, signum: int | None) -> bytes:
    return json.dumps({"exit_code": exit_code, "signal": signum}).encode()


def exit_status(payload: bytes) -> int:
    """The client's exit status from an EXIT frame's payload (255: unreadable)."""
    try:
        result = json.loads(payload)
        if isinstance(result.get("signal"), int):
            return 128 + int(result["signal"])
        return int(result["exit_code"]) & 0xFF
    except (ValueError, TypeError, AttributeError):
        return 255


def split_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every whole frame off the front of ``buffer``; WireError on a bad header."""
    frames = []
    while len(buffer) >= HEADER.size:
        channel, length = HEADER.unpack_from(buffer)
        if channel > EXIT or length > MAX_FRAME:
            raise WireError(f"malformed launch frame: channel {channel}, length {length}")
        if len(buffer) < HEADER.size + length:
            break
        frames.append((channel, bytes(buffer[HEADER.size : HEADER.size + length])))
        del buffer[: HEADER.size + length]
    return frames


def shell_command(words: list[str]) -> str:
    """What ssh runs for ``ssh host words...``: the words joined with spaces, for ``sh -c``."""
    return " ".join(words)


def parse_peers(text: str) -> dict[str, int]:
    """HPCBATCH_LAUNCH_PEERS ``addr=port,...`` as {addr: port}; WireError naming the item."""
    peers = {}
    for index, item in enumerate(text.split(",")):
        address, equals, port = item.strip().partition("=")
        if not equals or not address or not port.isdigit() or not 0 < int(port) < 65536:
            raise WireError(f"HPCBATCH_LAUNCH_PEERS[{index}] must be 'address=port', got {item!r}")
        peers[address] = int(port)
    return peers
