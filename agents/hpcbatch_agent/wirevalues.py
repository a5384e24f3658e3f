"""The wire's rules on values, beyond their types (protocol.py checks the types).

Each rule gives a reason naming the field and the rule, or None. A NUL byte cannot cross into
argv, the environment, a path or a user name (the OS refuses it), so it is refused here, where it
can be named. GPU ids and launch keys are defined here too, since the rules need them; protocol.py
re-exports every public name. Standard library only.
"""

from __future__ import annotations

import re
from typing import Any

GPU_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
GPU_ID_RULE = "1 to 128 characters of A-Z a-z 0-9 . _ : -"


def is_gpu_id(value: Any) -> bool:
    return isinstance(value, str) and GPU_ID_RE.fullmatch(value) is not None


MAX_LOG_OFFSET = 2**62
MAX_TIMEOUT_S = 2**31  # about 68 years: far beyond any job, far below any overflow
MAX_VCPUS = 2**20
MAX_MEMORY_MIB = 2**40


def _no_nul(name: str, value: str) -> str | None:
    return f"'{name}' must not contain a NUL byte" if "\0" in value else None


def in_range(name: str, value: int, low: int, high: int) -> str | None:
    if low <= value <= high:
        return None
    return f"'{name}' must be from {low} to {high}, not {value}"


def _env_problem(env: dict[str, str]) -> str | None:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            return f"'env' names must be non-empty, without '=' or a NUL byte: {key!r}"
        if "\0" in value:
            return f"'env' value of {key!r} must not contain a NUL byte"
    return None


def attempt_value_problem(spec: dict[str, Any]) -> str | None:
    """Why a well-typed attempt cannot run, naming the field and the rule; or None."""
    if not spec["attempt_id"]:
        return "'attempt_id' must not be empty"
    checks = (
        _no_nul("attempt_id", spec["attempt_id"]),
        next((_no_nul("command", arg) for arg in spec["command"] if "\0" in arg), None),
        _env_problem(spec["env"]),
        _no_nul("cwd", spec["cwd"]) if spec["cwd"] is not None else None,
        _user_problem(spec),
        _launch_key_problem(spec),
        in_range("timeout_s", spec["timeout_s"], 0, MAX_TIMEOUT_S)
        if spec["timeout_s"] is not None
        else None,
        in_range("vcpus", spec["vcpus"], 0, MAX_VCPUS),
        in_range("memory_mib", spec["memory_mib"], 0, MAX_MEMORY_MIB),
        _gpus_problem(spec["gpus"]),
    )
    return next((problem for problem in checks if problem is not None), None)


def _gpus_problem(gpus: list[Any]) -> str | None:
    seen: set[str] = set()
    for gpu in gpus:
        if not is_gpu_id(gpu):
            return f"'gpus' must list GPU ids ({GPU_ID_RULE}), not {gpu!r}"
        if gpu in seen:
            return f"'gpus' must not list GPU {gpu!r} twice"
        seen.add(gpu)
    return None


LAUNCH_KEY_RE = re.compile(r"[0-9a-f]{64}")


def _launch_key_problem(spec: dict[str, Any]) -> str | None:
    key = spec.get("launch_key")
    if key is None:
        return None
    if not isinstance(key, str) or not LAUNCH_KEY_RE.fullmatch(key):
        return "'launch_key' must be 64 lowercase hex digits (a 256-bit secret) or null"
    return None


def _user_problem(spec: dict[str, Any]) -> str | None:
    if "user" not in spec:
        return None
    user = spec["user"]
    if not isinstance(user, str):
        return f"'user' must be a string, not {type(user).__name__}"
    if not user:
        return "'user' must not be empty (omit it to run as the agent's own user)"
    return _no_nul("user", user)
