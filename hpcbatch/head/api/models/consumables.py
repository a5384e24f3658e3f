"""Requests about consumable resources, and the ``consumableResourceProperties`` jobs carry.

Vocabulary: a *consumable resource* (licenses, tokens: hpcbatch/core/consumables.py) is named
by its name or its ARN ``arn:aws:batch:REGION:ACCOUNT:consumable-resource/NAME``; quantities are
AWS's 64-bit Longs. Whether a named resource exists is the head's business.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, model_validator

from hpcbatch.head.api.models.common import (
    JOB_NAME_RE,
    JOB_STATUSES,
    AwsModel,
    Name,
    NextToken,
    Tags,
    check_ref,
    fail,
    int_range,
    list_size,
    one_of,
    ref_name,
    shown,
    text,
)
from hpcbatch.head.api.models.integers import Long

RESOURCE_TYPES = ("REPLENISHABLE", "NON_REPLENISHABLE")
OPERATIONS = ("SET", "ADD", "REMOVE")
MAX_PER_JOB = 5  # AWS: "You can specify up to 5 resources for each job"

ConsumableRef = Annotated[
    str, AfterValidator(check_ref("consumable-resource", "consumable resource"))
]
Quantity = Annotated[Long, int_range(1)]
ListMaxResults = Annotated[int, int_range(1, 100)]


class ConsumableResourceRequirement(AwsModel):
    consumableResource: ConsumableRef
    quantity: Quantity


def _check_requirements(
    entries: list[ConsumableResourceRequirement],
) -> list[ConsumableResourceRequirement]:
    if len(entries) > MAX_PER_JOB:
        fail(f"must have at most {MAX_PER_JOB} entries (got {len(entries)})")
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        name = ref_name(entry.consumableResource)
        if name in seen:
            fail(
                f"names {name!r} a second time (consumableResourceList[{seen[name]}] already does)",
                f"[{index}].consumableResource",
            )
        seen[name] = index
    return entries


class ConsumableResourceProperties(AwsModel):
    consumableResourceList: (
        Annotated[list[ConsumableResourceRequirement], AfterValidator(_check_requirements)] | None
    ) = None


class CreateConsumableResourceRequest(AwsModel):
    consumableResourceName: Name
    totalQuantity: Annotated[Long, int_range(0)] | None = None
    resourceType: Annotated[str, one_of(*RESOURCE_TYPES)] | None = None
    tags: Tags | None = None


class DescribeConsumableResourceRequest(AwsModel):
    consumableResource: ConsumableRef


class DeleteConsumableResourceRequest(AwsModel):
    consumableResource: ConsumableRef


class UpdateConsumableResourceRequest(AwsModel):
    consumableResource: ConsumableRef
    # Optional in botocore's model, but an update without them changes nothing: required here.
    operation: Annotated[str, one_of(*OPERATIONS)]
    quantity: Annotated[Long, int_range(0)]
    clientToken: Annotated[str, text(1, 64)] | None = None


_VALUE_AT = "values[0]"


def _check_name_pattern(value: str, noun: str) -> None:
    prefix = value.removesuffix("*")
    pattern = JOB_NAME_RE if noun == "job" else re.compile(r"[A-Za-z0-9_-]{1,128}")
    if not value or (prefix and not pattern.fullmatch(prefix)):
        fail(
            f"must be a {noun} name, optionally ending in * to match names that start with it "
            f"{shown(value)}",
            _VALUE_AT,
        )


class ConsumableResourceFilter(AwsModel):
    """ListConsumableResources' one filter: CONSUMABLE_RESOURCE_NAME."""

    name: Annotated[str, one_of("CONSUMABLE_RESOURCE_NAME")]
    values: Annotated[list[str], list_size(1, 1)]

    @model_validator(mode="after")
    def _value_fits(self) -> ConsumableResourceFilter:
        _check_name_pattern(self.values[0], "consumable resource")
        return self


class JobsByResourceFilter(AwsModel):
    """ListJobsByConsumableResource's filters: JOB_STATUS, JOB_NAME."""

    name: Annotated[str, one_of("JOB_STATUS", "JOB_NAME")]
    values: Annotated[list[str], list_size(1, 1)]

    @model_validator(mode="after")
    def _value_fits(self) -> JobsByResourceFilter:
        value = self.values[0]
        if self.name == "JOB_STATUS" and value not in JOB_STATUSES:
            fail(f"must be one of {', '.join(JOB_STATUSES)} {shown(value)}", _VALUE_AT)
        if self.name == "JOB_NAME":
            _check_name_pattern(value, "job")
        return self


class ListConsumableResourcesRequest(AwsModel):
    filters: Annotated[list[ConsumableResourceFilter], list_size(1, 1)] | None = None
    maxResults: ListMaxResults | None = None
    nextToken: NextToken | None = None


class ListJobsByConsumableResourceRequest(AwsModel):
    consumableResource: ConsumableRef
    filters: Annotated[list[JobsByResourceFilter], list_size(1, 2)] | None = None
    maxResults: ListMaxResults | None = None
    nextToken: NextToken | None = None
