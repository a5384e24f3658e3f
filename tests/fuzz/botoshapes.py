"""Hypothesis strategies for AWS Batch request parameters, built from botocore's own model.

Vocabulary:
    shape      a botocore ``Shape`` (structure, list, map, string, integer, long, float,
               double, boolean, timestamp, blob; ``document`` where a model has it)
    valid      a value of the shape's type honouring its ``required``, ``min``/``max`` and
               ``enum`` traits, with random content (most are still refused by hpcbatch's
               own rules: that is the point, they must be refused with a 400)
    invalid    a valid value broken in one place: a wrong type, a missing required member, an
               unknown member, a huge string or list, an out-of-range number or enum
    Ref        a placeholder for a name that exists in the head (a job id, a queue, ...),
               resolved against the live state just before sending: random names alone would
               almost never reach a handler past its "not found"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from hypothesis import strategies as st

MAX_DEPTH = 8
MAX_OPTIONAL = 4
SMALL_LIST = 3
HUGE_STRINGS = (1025, 70_000, 2_100_000)
HUGE_LIST = 20_000


@dataclass(frozen=True)
class Ref:
    """A name the head knows, picked at send time: ``kind`` is job, queue, definition, ce or
    arn; ``index`` picks one (modulo how many exist); ``arn`` asks for the ARN form."""

    kind: str
    index: int
    arn: bool = False


# Member names whose value names something in the head (lists of them take the same kind).
REF_KINDS = {
    "jobId": "job",
    "jobs": "job",
    "arrayJobId": "job",
    "multiNodeJobId": "job",
    "jobQueue": "queue",
    "jobQueues": "queue",
    "jobDefinition": "definition",
    "jobDefinitions": "definition",
    "computeEnvironment": "ce",
    "computeEnvironments": "ce",
    "resourceArn": "arn",
}
# Member names that create something: a small pool so that creations collide with each other.
NAME_POOL = ("fz-a", "fz-b", "default", "local")
NAMED = {"jobQueueName", "computeEnvironmentName", "jobDefinitionName"}


def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("batch")


def operations() -> list[OperationModel]:
    model = service_model()
    return [model.operation_model(name) for name in model.operation_names]


_TEXT = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24),
    st.sampled_from(["", " ", "*", "a*", "../..", "1", "0", "-1", "9" * 30]),
)
# Strings no rule should take, for the invalid flavour (a NUL; a lone surrogate, which JSON's
# \\ud800 escape can carry).
_BAD_TEXT = ["", "\x00", "\ud800", "a\udfffb", "é" * 300, " lead", "trail "]


def _bounded_text(low: int, high: int | None) -> st.SearchStrategy[str]:
    top = low + 24 if high is None else min(high, low + 24)
    return st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=low, max_size=top
    )


# What hpcbatch's own rules take, for members whose botocore shape says only "string" or
# "integer": drawn half the time, so that valid shapes also get past the rules and reach the
# handlers, the loop and the scheduler.
_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}", fullmatch=True)
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "jobName": _NAME,
    "value": st.sampled_from(["1", "0.25", "2", "512", "1024", "0", "-1", "1e3", "x"]),
    "size": st.integers(0, 12),
    "attempts": st.integers(0, 11),
    "vcpus": st.integers(0, 5),
    "memory": st.integers(0, 20_000),
    "numNodes": st.integers(0, 3),
    "mainNode": st.integers(0, 3),
    "targetNodes": st.sampled_from(["0", "0:", ":1", "0:1", "1:0", "x"]),
    "attemptDurationSeconds": st.integers(0, 120),
    "priority": st.integers(-1, 1001),
    "order": st.integers(0, 3),
    "maxResults": st.integers(0, 101),
    "command": st.lists(st.sampled_from(["true", "sleep", "1", "echo", "$X"]), max_size=3),
    # ListJobs' filters (and, harmlessly, every other member called name/values)
    "name": st.sampled_from(
        ["JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER"]
    ),
    "values": st.lists(
        st.sampled_from(["1", "9" * 20, "a*", "*", "", "default", "default:1", "-1", "A1*"]),
        max_size=2,
    ),
}


def _string(shape: Shape, name: str) -> st.SearchStrategy[Any]:
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(list(enum))
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    if name in REF_KINDS:
        kind = REF_KINDS[name]
        ref = st.builds(Ref, st.just(kind), st.integers(0, 50), st.booleans())
        return st.one_of(ref, ref, _bounded_text(low, high))
    if name in NAMED:
        return st.one_of(st.sampled_from(NAME_POOL), _NAME, _bounded_text(max(low, 1), high))
    if low or high is not None:
        return _bounded_text(low, high)
    return _TEXT


_NUMBER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _integer(shape: Shape) -> st.SearchStrategy[int]:
    kind_low, kind_high = _NUMBER_RANGES[shape.type_name]
    low = shape.metadata.get("min", kind_low)
    high = shape.metadata.get("max", kind_high)
    small = st.integers(max(low, -2), min(high, 20)) if low <= 20 and high >= -2 else st.nothing()
    return st.one_of(small, st.integers(low, high), st.sampled_from([low, high]))


def document() -> st.SearchStrategy[Any]:
    """Any JSON value, small."""
    return _document(0)


def _document(depth: int) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=8,
    )


def valid(shape: Shape, name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    """A value that fits ``shape``'s type and traits; ``name`` is the member it fills (a hint
    in ``HINTS`` for that name is drawn half the time)."""
    generic = _valid(shape, name, depth)
    hint = HINTS.get(name)
    return generic if hint is None or shape.metadata.get("enum") else st.one_of(hint, generic)


def _valid(shape: Shape, name: str, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, depth)
    if kind == "list":
        low = shape.metadata.get("min", 0)
        high = min(shape.metadata.get("max", low + SMALL_LIST), low + SMALL_LIST)
        inner = name if name in REF_KINDS else ""  # "jobs": each a job id; "command": any
        return st.lists(valid(shape.member, inner, depth + 1), min_size=low, max_size=high)
    if kind == "map":
        high = min(shape.metadata.get("max", SMALL_LIST), SMALL_LIST)
        keys = valid(shape.key, "", depth + 1)
        return st.dictionaries(keys, valid(shape.value, "", depth + 1), max_size=high)
    if kind == "string":
        return _string(shape, name)
    if kind in _NUMBER_RANGES:
        return _integer(shape)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.one_of(st.integers(0, 2**33), st.just("2026-01-01T00:00:00Z"))
    if kind == "blob":
        return st.binary(max_size=16).map(lambda b: b.hex())
    return _document(depth)


@st.composite
def _structure(draw: st.DrawFn, shape: Shape, depth: int) -> dict[str, Any]:
    """Every required member and a few optional ones: each optional member broken alone is
    more telling than twenty of them at once, where the first refused hides the others."""
    required = list(shape.required_members)
    optional = [] if depth >= MAX_DEPTH else [k for k in shape.members if k not in required]
    chosen = (
        draw(st.lists(st.sampled_from(optional), max_size=MAX_OPTIONAL, unique=True))
        if optional
        else []
    )
    return {k: draw(valid(shape.members[k], k, depth + 1)) for k in required + chosen}


# Values of every JSON type: a wrong type for any shape is one of these that is not its own.
_JSON_SAMPLES: list[Any] = [None, True, False, 0, -1, 1.5, 1e308, 2**64, "x", "", [], [1], {}]
_OWN_TYPES = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
}


def _wrong_type(shape: Shape) -> st.SearchStrategy[Any]:
    own = _OWN_TYPES.get(shape.type_name, ())

    def foreign(value: Any) -> bool:
        if shape.type_name in ("integer", "long", "float", "double") and isinstance(value, bool):
            return True
        return not isinstance(value, own)

    return st.sampled_from([v for v in _JSON_SAMPLES if foreign(v)] + [{"a": [None]}])


def _out_of_range(shape: Shape) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "string":
        enum = shape.metadata.get("enum")
        odd = [e.lower() for e in enum] + ["NOT_AN_ENUM"] if enum else []
        huge = st.sampled_from(HUGE_STRINGS).map(lambda n: "x" * n)
        return st.one_of(huge, st.sampled_from(odd + _BAD_TEXT))
    if kind in _NUMBER_RANGES:
        low, high = _NUMBER_RANGES[kind]
        low = shape.metadata.get("min", low)
        high = shape.metadata.get("max", high)
        return st.sampled_from([low - 1, high + 1, -(2**64), 2**64, 10**400, -1, 0])
    return _wrong_type(shape)


@st.composite
def invalid(draw: st.DrawFn, shape: Shape, name: str = "", depth: int = 0) -> Any:
    """A valid value of ``shape`` broken in exactly one place, chosen at random."""
    value = draw(valid(shape, name, depth))
    return draw(_broken(shape, value, name, depth))


@st.composite
def _broken(draw: st.DrawFn, shape: Shape, value: Any, name: str, depth: int) -> Any:
    kind = shape.type_name
    if kind == "structure":
        present = [k for k in value if k in shape.members]
        action = draw(st.sampled_from(["descend", "descend", "drop", "unknown", "type"]))
        if action == "descend" and present:
            key = draw(st.sampled_from(present))
            return {**value, key: draw(_broken(shape.members[key], value[key], key, depth + 1))}
        if action == "drop" and shape.required_members:
            gone = draw(st.sampled_from(list(shape.required_members)))
            return {k: v for k, v in value.items() if k != gone}
        if action in ("drop", "unknown", "descend"):
            extra = draw(st.sampled_from(["unknownMember", "", "__proto__", "hpcbatch"]))
            return {**value, extra: draw(st.sampled_from(_JSON_SAMPLES))}
        return draw(_wrong_type(shape))
    if kind == "list":
        action = draw(st.sampled_from(["descend", "huge", "type"]))
        if action == "descend" and value:
            at = draw(st.integers(0, len(value) - 1))
            broken = draw(_broken(shape.member, value[at], name, depth + 1))
            return value[:at] + [broken] + value[at + 1 :]
        if action in ("huge", "descend"):
            element = value[0] if value else draw(valid(shape.member, name, depth + 1))
            return [element] * HUGE_LIST
        return draw(_wrong_type(shape))
    if kind == "map":
        action = draw(st.sampled_from(["key", "huge", "type"]))
        if action == "key":
            return {**value, draw(st.sampled_from(["", "x" * 300, "\x00"])): "v"}
        if action == "huge":
            return {f"k{i}": "v" for i in range(HUGE_LIST)}
        return draw(_wrong_type(shape))
    return draw(st.one_of(_out_of_range(shape), _wrong_type(shape)))
