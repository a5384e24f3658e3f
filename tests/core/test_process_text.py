"""The core's own guard on what reaches a process: whatever path a definition took (one stored
before the API's rules, one made by a tool), a NUL never reaches a command, environment or user,
and an empty user never means the agent's own."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec
from hpcbatch.errors import ValidationError
from tests.core.sim import Sim


def _define(sim: Sim, name: str, spec: JobSpec, **parameters: str) -> None:
    sim.do(
        ev.RegisterJobDefinition, name=name, def_type="container", spec=spec, parameters=parameters
    )


@pytest.mark.parametrize(
    ("spec", "parameters", "submitted", "field"),
    [
        (JobSpec(command=("echo", "Ref::p")), {"p": "a\x00b"}, {}, "command[1]"),
        (JobSpec(command=("echo", "Ref::p")), {}, {"p": "a\x00b"}, "command[1]"),
        (JobSpec(command=("true",), environment=(("A", "x\x00"),)), {}, {}, "environment"),
        (JobSpec(command=("true",), user=""), {}, {}, "containerProperties.user"),
        (JobSpec(command=("true",), user="a\x00"), {}, {}, "containerProperties.user"),
    ],
)
def test_a_submit_that_would_put_a_nul_or_no_user_into_a_process_is_refused(
    spec: JobSpec, parameters: dict[str, str], submitted: dict[str, str], field: str
) -> None:
    sim = Sim().cluster(nodes=1)
    _define(sim, "bad", spec, **parameters)
    before = set(sim.state.jobs)
    with pytest.raises(ValidationError) as caught:
        sim.submit(definition="bad", parameters=submitted)
    assert caught.value.field == field
    assert set(sim.state.jobs) == before


def test_a_clean_ref_parameter_still_fills_the_command() -> None:
    sim = Sim().cluster(nodes=1)
    _define(sim, "ok", JobSpec(command=("echo", "Ref::p"), user="nobody"), p="hi")
    job = sim.submit(definition="ok")
    assert job.spec.command == ("echo", "hi") and job.spec.user == "nobody"
