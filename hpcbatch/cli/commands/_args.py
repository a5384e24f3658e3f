"""Argument types and request fragments that several commands share.

An argparse ``type=`` function raises ``ArgumentTypeError`` so that a bad value is a usage
error (exit 2) named after its flag, before anything is sent to the head.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
STATES = ("ENABLED", "DISABLED")


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def vcpu_count(text: str) -> str:
    """vCPUs may be fractional (``0.5``); the API carries the value as a string."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of vCPUs, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of vCPUs, got {text!r}")
    return text


def state(text: str) -> str:
    upper = text.upper()
    if upper not in STATES:
        raise argparse.ArgumentTypeError(f"expected ENABLED or DISABLED, got {text!r}")
    return upper


def add_resource_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resources")
    group.add_argument("--vcpus", type=vcpu_count, metavar="N", help="vCPUs (may be fractional)")
    group.add_argument("--memory", type=positive_int, metavar="MiB", help="memory in MiB")
    group.add_argument("--gpus", type=non_negative_int, metavar="N", help="number of GPUs")
    group.add_argument(
        "--env",
        type=key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable (repeatable)",
    )
    group.add_argument(
        "--retry",
        type=positive_int,
        metavar="N",
        help="attempts in all, 1-10 (retryStrategy.attempts)",
    )
    group.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="per-attempt limit, >= 60 (timeout.attemptDurationSeconds)",
    )


def resource_requirements(args: argparse.Namespace) -> list[dict[str, str]]:
    """--vcpus/--memory/--gpus as AWS ``resourceRequirements`` (values are strings)."""
    wanted = (("VCPU", args.vcpus), ("MEMORY", args.memory), ("GPU", args.gpus))
    return [{"type": kind, "value": str(value)} for kind, value in wanted if value is not None]


def environment(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in pairs]


def retry_and_timeout(args: argparse.Namespace, body: dict[str, Any]) -> None:
    if args.retry is not None:
        body["retryStrategy"] = {"attempts": args.retry}
    if args.timeout is not None:
        body["timeout"] = {"attemptDurationSeconds": args.timeout}


def slug(text: str, fallback: str = "job") -> str:
    """A valid AWS name from free text: ``[A-Za-z0-9_-]``, alphanumeric first, <= 128 chars."""
    cleaned = _NAME_CHARS.sub("-", text).strip("-_")
    if not cleaned:
        return fallback
    if not cleaned[0].isalnum():
        cleaned = "j" + cleaned
    return cleaned[:128]


def json_request(text: str) -> dict[str, Any]:
    """``--from-json FILE|-``: an AWS request body (a JSON object) from a file or stdin."""
    import json
    import sys

    try:
        if text == "-":
            raw = sys.stdin.read()
        else:
            with open(text, encoding="utf-8") as handle:
                raw = handle.read()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror}") from None
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise argparse.ArgumentTypeError(f"{text!r} must hold a JSON object (a request body)")
    return document


def add_from_json(parser: argparse.ArgumentParser, operation: str) -> None:
    parser.add_argument(
        "--from-json",
        type=json_request,
        metavar="FILE|-",
        help=f"start from this {operation} request body (AWS's JSON; '-' reads stdin): "
        "members pass through untouched, and the other flags override theirs",
    )
