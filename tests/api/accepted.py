"""What a successful parse must show: the request it returns keeps every value the caller sent.

A test of an accepted request asserts more than "no exception": ``accept_keeps`` parses the body
and checks that the parsed request, dumped as JSON (only the fields the caller set), holds each
given key at its place with its value (lists whole, in order); path parameters likewise. A value
the parser normalises on purpose is passed in ``expect`` in its normalised form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tests.api.helpers import accept


def holds(got: Any, want: Any, where: str = "") -> None:
    """``got`` contains ``want``: every key of a dict, every item of a list, equal scalars."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where or 'request'}: {got!r} is not an object"
        for key, value in want.items():
            assert key in got, f"{where}.{key} was sent but is not in the parsed request"
            holds(got[key], value, f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for index, (item, wanted) in enumerate(zip(got, want, strict=True)):
            holds(item, wanted, f"{where}[{index}]")
    else:
        assert got == want, f"{where}: parsed {got!r}, sent {want!r}"


def accept_keeps(
    operation: str, data: dict[str, Any], expect: dict[str, Any] | None = None, **options: Any
) -> BaseModel:
    """Parse must succeed, and the parsed request must hold ``data`` (or ``expect``) and the
    path parameters given in ``options``."""
    parsed = accept(operation, data, **options)
    holds(parsed.model_dump(mode="json", exclude_unset=True), data if expect is None else expect)
    holds(parsed.model_dump(mode="json"), options.get("path_params", {}))
    return parsed
