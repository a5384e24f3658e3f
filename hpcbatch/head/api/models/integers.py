"""AWS's integer widths, held by every request model at once.

Vocabulary: botocore's model types each number ``Integer`` (32 bits, -2**31..2**31-1) or
``Long`` (64 bits). JSON has no width, and boto3 sends whatever Python int it is given, so
``vcpus: 2**70`` reaches the head intact: AWS refuses it; so does hpcbatch, for every field, by
one check in ``AwsModel`` (``check_width``) rather than a bound written on each field.

- A field is an Integer unless its annotation carries ``LONG`` (``Long``, ``Long | None``).
- Inside an AWS-only structure kept as plain JSON (``Loose``: EKS pods, ECS tasks, launch
  templates, ...) Integer and Long members mix and hpcbatch never reads them: any number there
  is held to the wider Long, so nothing AWS accepts is refused, and no 2**70 is stored.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

RULE_ERROR = "hpcbatch_rule"  # parse.py turns it into our ValidationError (common.fail)

INTEGER = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


class _Width:
    """A marker in ``Annotated``: this field is a botocore ``Long``."""

    def __repr__(self) -> str:
        return "LONG"


LONG = _Width()
Long = Annotated[int, LONG]

_WIDTHS: dict[tuple[type[BaseModel], str], tuple[str, tuple[int, int]]] = {}


def _mentions(annotation: Any, target: Any) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in typing.get_args(annotation))


def field_width(model: type[BaseModel], field: str) -> tuple[str, tuple[int, int]]:
    """``(AWS's name of the width, (low, high))`` for the numbers of ``model.field``."""
    key = (model, field)
    width = _WIDTHS.get(key)
    if width is None:
        info = model.model_fields[field]
        # pydantic keeps a top-level Annotated's extras in ``metadata``, a nested one in place
        wide = LONG in info.metadata or _mentions(info.annotation, LONG)
        wide = wide or _mentions(info.annotation, Any)
        width = ("64-bit Long", LONG_RANGE) if wide else ("32-bit Integer", INTEGER)
        _WIDTHS[key] = width
    return width


def check_width(model: type[BaseModel], field: str, value: Any) -> None:
    """Refuse any int in ``value`` (a field's validated value: a number, or lists and objects
    holding some) outside the field's width; nested request models check their own fields.
    Iterative: a Loose value may nest as deep as the JSON decoder allowed."""
    if value is None or isinstance(value, (str, bool, float, BaseModel)):
        return
    name, (low, high) = field_width(model, field)
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, at = pending.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not low <= item <= high:
                shown = str(item) if len(str(item)) <= 40 else f"{str(item)[:37]}..."
                raise PydanticCustomError(
                    RULE_ERROR,
                    "{rule}",
                    {
                        "rule": f"must be an integer from {low:,} to {high:,} (AWS's {name}) "
                        f"(got {shown})",
                        "at": at,
                    },
                )
        elif isinstance(item, list):
            pending.extend((x, f"{at}[{i}]") for i, x in enumerate(item))
        elif isinstance(item, dict):
            pending.extend((x, f"{at}.{k}" if at else str(k)) for k, x in item.items())
