"""Store documents are written by orjson, and by ``json`` where orjson refuses: either way a
document reads back (with ``json``, as the head loads it) as exactly what was written. (Not
read with orjson: it reads an int past 64 bits as a float.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hpcbatch.core import codec
from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.head.persist import encode_doc


def _running_job_doc() -> dict[str, Any]:
    state = State()
    b: dict[str, Any] = {"cause": "t", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))
    step(state, ev.NodeJoined(**b, node="n1", ce="ce", capacity=Resources(4000, 8192, 0)))
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))
    spec = JobSpec(command=("echo", "é ✓ 日本"), environment=(("GREETING", "grüß"),))
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=spec))
    step(state, ev.SubmitJob(**b, job_id="j", name="ünïcode", queue="q", definition="d"))
    step(state, ev.PlanApplied(**b, plan=schedule(state, 1)))
    return codec.job_to_doc(state.jobs["j"])


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"tags": {"k": "\u2603", "quote": 'a"b\\c\n'}},
        {"echo": {"big": 2**70}},  # past 64 bits: orjson refuses, json writes it
        {"echo": {"lone": "\ud800"}},  # a lone surrogate: orjson refuses, json escapes it
        {"echo": {"nested": [1, 2.5, None, True, {"x": []}]}},
    ],
)
def test_a_document_reads_back_as_written(extra: dict[str, Any]) -> None:
    doc = {**_running_job_doc(), **extra}
    text = encode_doc(doc)
    assert isinstance(text, str)
    assert json.loads(text) == doc
    assert codec.job_from_doc(json.loads(text), {}).name == "ünïcode"
