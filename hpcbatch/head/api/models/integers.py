"""AWS's integer widths, held by every request model at once.

Vocabulary: botocore's model types each number ``Integer`` (32 bits, -2**31..2**31-1) or
``Long`` (64 bits). JSON has no width, and boto3 sends whatever Python int it is given, so
``vcpus: 2**70`` reaches the head intact: AWS refuses it; so does hpcbatch, for every field, by
one rule in ``AwsModel`` rather than a bound written on each field:

- ``bound_integers`` gives every integer of a model's validation schema Integer's bounds
  unless it has its own: a ``Long`` field carries Long's. pydantic-core then checks them
  natively, at no Python cost per request (a Python validator on every field cost SubmitJob's
  parse 70 %), and ``width_rule`` words its refusal.
- Inside an AWS-only structure kept as plain JSON (``Loose``: EKS pods, ECS tasks, launch
  templates, ...) Integer and Long members mix and hpcbatch never reads them: any number there
  is held to the wider Long (``check_loose``), so nothing AWS accepts is refused, and no 2**70
  is stored.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

RULE_ERROR = "hpcbatch_rule"  # parse.py turns it into our ValidationError (common.fail)

INTEGER = (-(2**31), 2**31 - 1)
LONG = (-(2**63), 2**63 - 1)
WIDTH_NAMES = {INTEGER: "32-bit Integer", LONG: "64-bit Long"}

LONG_BOUNDS = annotated_types.Interval(ge=LONG[0], le=LONG[1])
Long = Annotated[int, LONG_BOUNDS]


def bound_integers(schema: Any) -> None:
    """Give each integer of a pydantic core schema without bounds of its own Integer's."""
    pending = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("type") == "int":
                item.setdefault("ge", INTEGER[0])
                item.setdefault("le", INTEGER[1])
            pending.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            pending.extend(v for v in item if isinstance(v, (dict, list)))


def _rule(width: tuple[int, int], value: Any) -> str:
    text = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
    low, high = width
    return f"must be an integer from {low:,} to {high:,} (AWS's {WIDTH_NAMES[width]}) (got {text})"


def width_rule(kind: str, context: dict[str, Any], value: Any) -> str | None:
    """The rule for pydantic's ``less_than_equal`` / ``greater_than_equal`` error when the
    bound broken is a width's edge (``bound_integers``); None for any other error."""
    if kind not in ("less_than_equal", "greater_than_equal"):
        return None
    bound = context.get("le", context.get("ge"))
    for width in WIDTH_NAMES:
        if bound in width:
            return _rule(width, value)
    return None


def check_loose(value: Any) -> Any:
    """Refuse a number wider than Long anywhere in a Loose value (iterative: it may nest as
    deep as the JSON decoder allowed)."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, at = pending.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not LONG[0] <= item <= LONG[1]:
                raise PydanticCustomError(
                    RULE_ERROR, "{rule}", {"rule": _rule(LONG, item), "at": at}
                )
        elif isinstance(item, list):
            pending.extend((x, f"{at}[{i}]") for i, x in enumerate(item))
        elif isinstance(item, dict):
            pending.extend((x, f"{at}.{k}" if at else str(k)) for k, x in item.items())
    return value


def _is_long(annotation: Any) -> bool:
    # pydantic splits a top-level Annotated's Interval into Ge and Le in a field's metadata
    if annotation is LONG_BOUNDS:
        return True
    if isinstance(annotation, annotated_types.Le) and annotation.le == LONG[1]:
        return True
    return any(_is_long(arg) for arg in typing.get_args(annotation))


def _mentions_any(annotation: Any) -> bool:
    return annotation is Any or any(_mentions_any(arg) for arg in typing.get_args(annotation))


def field_width(model: type[BaseModel], field: str) -> str:
    """AWS's name of the width ``model.field``'s numbers are held to (for the test that holds
    each field to botocore's model)."""
    info = model.model_fields[field]
    wide = any(_is_long(m) for m in info.metadata) or _is_long(info.annotation)
    return WIDTH_NAMES[LONG if wide or _mentions_any(info.annotation) else INTEGER]
