"""The consumable-resource requests' field rules, and ``consumableResourceProperties`` on job
definitions and submissions: each bad input refused naming its field and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.api import translate
from hpcbatch.head.api.models import RegisterJobDefinitionRequest, SubmitJobRequest
from tests.api.helpers import accept, reject

LONG_RULE = "(AWS's 64-bit Long)"
SUBMIT = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}
DEFINITION = {
    "jobDefinitionName": "d",
    "type": "container",
    "containerProperties": {"command": ["true"]},
}


def needs(*entries: tuple[str, Any]) -> dict[str, Any]:
    return {
        "consumableResourceList": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in entries
        ]
    }


@pytest.mark.parametrize(
    ("operation", "data", "field", "phrase"),
    [
        ("createconsumableresource", {}, "consumableResourceName", "is required"),
        (
            "createconsumableresource",
            {"consumableResourceName": "a b"},
            "consumableResourceName",
            "letters, digits",
        ),
        (
            "createconsumableresource",
            {"consumableResourceName": "m", "totalQuantity": -1},
            "totalQuantity",
            "of at least 0",
        ),
        (
            "createconsumableresource",
            {"consumableResourceName": "m", "totalQuantity": 2**63},
            "totalQuantity",
            LONG_RULE,
        ),
        (
            "createconsumableresource",
            {"consumableResourceName": "m", "resourceType": "SOMETIMES"},
            "resourceType",
            "REPLENISHABLE, NON_REPLENISHABLE",
        ),
        (
            "updateconsumableresource",
            {"consumableResource": "m", "quantity": 1},
            "operation",
            "is required",
        ),
        (
            "updateconsumableresource",
            {"consumableResource": "m", "operation": "MULTIPLY", "quantity": 1},
            "operation",
            "SET, ADD, REMOVE",
        ),
        (
            "updateconsumableresource",
            {"consumableResource": "m", "operation": "SET", "quantity": -2},
            "quantity",
            "of at least 0",
        ),
        (
            "updateconsumableresource",
            {"consumableResource": "m", "operation": "SET", "quantity": 1, "clientToken": "x" * 65},
            "clientToken",
            "1-64 characters",
        ),
        (
            "describeconsumableresource",
            {"consumableResource": "arn:aws:batch:r:1:job-queue/m"},
            "consumableResource",
            "consumable-resource/NAME",
        ),
        (
            "listconsumableresources",
            {"filters": [{"name": "JOB_NAME", "values": ["x"]}]},
            "filters[0].name",
            "CONSUMABLE_RESOURCE_NAME",
        ),
        ("listconsumableresources", {"maxResults": 101}, "maxResults", "from 1 to 100"),
        (
            "listjobsbyconsumableresource",
            {"consumableResource": "m", "filters": [{"name": "JOB_STATUS", "values": ["DONE"]}]},
            "filters[0].values[0]",
            "RUNNABLE",
        ),
        (
            "submitjob",
            {**SUBMIT, "consumableResourcePropertiesOverride": needs(("m", 0))},
            "consumableResourcePropertiesOverride.consumableResourceList[0].quantity",
            "of at least 1",
        ),
        (
            "submitjob",
            {**SUBMIT, "consumableResourcePropertiesOverride": needs(("m", 2**64))},
            "consumableResourcePropertiesOverride.consumableResourceList[0].quantity",
            LONG_RULE,
        ),
        (
            "submitjob",
            {**SUBMIT, "consumableResourcePropertiesOverride": needs(("m", "1"))},
            "consumableResourcePropertiesOverride.consumableResourceList[0].quantity",
            "must be an integer",
        ),
        (
            "registerjobdefinition",
            {
                **DEFINITION,
                "consumableResourceProperties": needs(
                    ("m", 1), ("arn:aws:batch:r:1:consumable-resource/m", 2)
                ),
            },
            "consumableResourceProperties.consumableResourceList[1].consumableResource",
            "names 'm' a second time",
        ),
        (
            "registerjobdefinition",
            {
                **DEFINITION,
                "consumableResourceProperties": needs(*((f"r{i}", 1) for i in range(6))),
            },
            "consumableResourceProperties.consumableResourceList",
            "at most 5 entries",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    operation: str, data: dict[str, Any], field: str, phrase: str
) -> None:
    reject(operation, data, field, phrase)


def test_needs_reach_the_core_events_as_given() -> None:
    request = accept(
        "registerjobdefinition",
        {**DEFINITION, "consumableResourceProperties": needs(("m", 2**40), ("n", 1))},
    )
    assert isinstance(request, RegisterJobDefinitionRequest)
    event = translate.register_definition(request, "c", 0)
    assert event.spec.consumables == (("m", 2**40), ("n", 1))  # type: ignore[attr-defined]
    submit = accept(
        "submitjob", {**SUBMIT, "consumableResourcePropertiesOverride": needs(("m", 3))}
    )
    assert isinstance(submit, SubmitJobRequest)
    job = translate.submit_job(submit, "id", "c", 0, False)
    assert job.consumables == (("m", 3),)
    assert "consumableResourcePropertiesOverride" not in job.echo


def test_a_multinode_definition_takes_them_per_node_range_only() -> None:
    multinode = {
        "jobDefinitionName": "g",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {
                    "targetNodes": "0:",
                    "container": {"command": ["true"]},
                    "consumableResourceProperties": needs(("m", 1)),
                }
            ],
        },
    }
    request = accept("registerjobdefinition", multinode)
    event = translate.register_definition(request, "c", 0)  # type: ignore[arg-type]
    assert event.multinode.ranges[0].spec.consumables == (("m", 1),)  # type: ignore[attr-defined]
    top = accept(
        "registerjobdefinition", {**multinode, "consumableResourceProperties": needs(("m", 1))}
    )
    with pytest.raises(ValidationError) as refused:
        translate.register_definition(top, "c", 0)  # type: ignore[arg-type]
    assert refused.value.field == "consumableResourceProperties"


def test_a_node_override_carries_its_needs_and_the_top_level_override_is_refused() -> None:
    overrides = {
        "nodePropertyOverrides": [
            {"targetNodes": "1:", "consumableResourcePropertiesOverride": needs(("m", 2))}
        ]
    }
    request = accept("submitjob", {**SUBMIT, "nodeOverrides": overrides})
    event = translate.submit_job(request, "id", "c", 0, False)  # type: ignore[arg-type]
    assert event.node_overrides is not None
    assert event.node_overrides.ranges[0].consumables == (("m", 2),)
    both = accept(
        "submitjob",
        {**SUBMIT, "nodeOverrides": overrides, "consumableResourcePropertiesOverride": needs()},
    )
    with pytest.raises(ValidationError) as refused:
        translate.submit_job(both, "id", "c", 0, False)  # type: ignore[arg-type]
    assert refused.value.field == "consumableResourcePropertiesOverride"
