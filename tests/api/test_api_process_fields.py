"""What becomes a job's process (command, environment, user, parameters that fill ``Ref::``
arguments) is refused with a NUL in it or an empty user, in every request that carries it; and
what a container runtime would add (privileged, a read-only root, ulimits) is refused, not
silently ignored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import accept, reject

NUL = "a\x00b"
DEFINITION = {"jobDefinitionName": "d", "type": "container"}
SUBMIT = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}


def _container(**fields: Any) -> dict[str, Any]:
    return {**DEFINITION, "containerProperties": {"command": ["true"], **fields}}


def _node_container(**fields: Any) -> dict[str, Any]:
    return {
        "jobDefinitionName": "mpi",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 1,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"command": ["x"], **fields}}
            ],
        },
    }


NODE_AT = "nodeProperties.nodeRangeProperties[0].container"

REGISTER_BAD: list[tuple[dict[str, Any], str, str]] = [
    (_container(user=""), "containerProperties.user", 'not an empty string (got "")'),
    (_container(user=NUL), "containerProperties.user", "NUL character"),
    (_container(user="u" * 257), "containerProperties.user", "at most 256 characters"),
    (_node_container(user=""), f"{NODE_AT}.user", "not an empty string"),
    (_node_container(user=NUL), f"{NODE_AT}.user", "NUL character"),
    (_container(command=["x", NUL]), "containerProperties.command[1]", "NUL character"),
    (
        _container(environment=[{"name": NUL, "value": "v"}]),
        "containerProperties.environment[0].name",
        "NUL character",
    ),
    (
        _container(environment=[{"name": "N", "value": NUL}]),
        "containerProperties.environment[0].value",
        "NUL character",
    ),
    ({**_container(), "parameters": {"p": NUL}}, "parameters.p", "NUL character"),
    ({**_container(), "parameters": {NUL: "v"}}, "parameters", "names must not contain a NUL"),
    (_container(privileged=True), "containerProperties.privileged", "runs jobs as processes"),
    (
        _container(readonlyRootFilesystem=True),
        "containerProperties.readonlyRootFilesystem",
        "does not support a read-only root file system",
    ),
    (
        _container(ulimits=[{"name": "nofile", "softLimit": 1, "hardLimit": 2}]),
        "containerProperties.ulimits",
        "does not support per-job ulimits (got 1 entries)",
    ),
    (_node_container(privileged=True), f"{NODE_AT}.privileged", "runs jobs as processes"),
]


@pytest.mark.parametrize(("data", "field", "phrase"), REGISTER_BAD)
def test_register_refuses(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("RegisterJobDefinition", data, field, phrase)


def _overrides(**fields: Any) -> dict[str, Any]:
    return {**SUBMIT, "containerOverrides": fields}


SUBMIT_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({**SUBMIT, "parameters": {"p": NUL}}, "parameters.p", "NUL character"),
    ({**SUBMIT, "parameters": {NUL: "v"}}, "parameters", "names must not contain a NUL"),
    (_overrides(command=[NUL]), "containerOverrides.command[0]", "NUL character"),
    (
        _overrides(environment=[{"name": "N", "value": NUL}]),
        "containerOverrides.environment[0].value",
        "NUL character",
    ),
    (
        _overrides(environment=[{"name": NUL, "value": "v"}]),
        "containerOverrides.environment[0].name",
        "NUL character",
    ),
    # Not AWS override fields at all: named as unknown rather than ignored.
    (_overrides(privileged=True), "containerOverrides.privileged", ""),
    (_overrides(ulimits=[]), "containerOverrides.ulimits", ""),
    (_overrides(user="root"), "containerOverrides.user", ""),
]


@pytest.mark.parametrize(("data", "field", "phrase"), SUBMIT_BAD)
def test_submit_refuses(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("SubmitJob", data, field, phrase)


@pytest.mark.parametrize(
    "fields",
    [
        {"privileged": False, "readonlyRootFilesystem": False, "ulimits": []},
        {"user": "nobody"},
        {"user": "1000"},
    ],
)
def test_register_accepts_what_a_process_can_honour(fields: dict[str, Any]) -> None:
    accept("RegisterJobDefinition", {**_container(**fields), "parameters": {"p": ""}})
