"""Requests about jobs: SubmitJob, DescribeJobs, ListJobs, CancelJob(s), TerminateJob(s).

Vocabulary: an *array job* has ``arrayProperties.size`` children; a *dependency* is a
``{jobId, type}`` entry of ``dependsOn`` (plain: wait for that job; ``N_TO_N``: child i waits for
child i of that array; ``SEQUENTIAL``: child i waits for child i-1 of this array); *overrides*
replace parts of the job definition for one submission.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, model_validator

from hpcbatch.head.api.models.common import (
    JOB_NAME_RE,
    JOB_STATUSES,
    AwsModel,
    DefinitionRef,
    JobId,
    JobName,
    Loose,
    NextToken,
    Parameters,
    QueueRef,
    Reason,
    StringList,
    Tags,
    fail,
    int_range,
    list_size,
    one_of,
    only_one_of,
    shown,
    split_definition_ref,
)
from hpcbatch.head.api.models.consumables import ConsumableResourceProperties
from hpcbatch.head.api.models.containers import ContainerOverrides, JobTimeout, RetryStrategy
from hpcbatch.head.api.models.job_definitions import (
    MAX_NODES,
    TargetNodes,
    check_range_fits,
)

FILTER_NAMES = (
    "JOB_NAME",
    "JOB_DEFINITION",
    "BEFORE_CREATED_AT",
    "AFTER_CREATED_AT",
    "SHARE_IDENTIFIER",
)
MAX_DEPENDENCIES = 20

# ---------------------------------------------------------------------------------------------
# SubmitJob


class ArrayProperties(AwsModel):
    # Optional in botocore, but an array job without a size is no array job at all.
    size: Annotated[int, int_range(2, 10_000)]


class JobDependency(AwsModel):
    jobId: JobId | None = None
    type: Annotated[str, one_of("N_TO_N", "SEQUENTIAL")] | None = None

    @model_validator(mode="after")
    def _job_id_fits_type(self) -> JobDependency:
        if self.type == "SEQUENTIAL" and self.jobId is not None:
            fail(
                "must be left out of a SEQUENTIAL dependency, which orders the children of "
                "this array job among themselves",
                "jobId",
            )
        if self.type != "SEQUENTIAL" and self.jobId is None:
            kind = "an N_TO_N" if self.type else "a"
            fail(f"is required for {kind} dependency", "jobId")
        return self


def _check_dependencies(dependencies: list[JobDependency]) -> list[JobDependency]:
    if len(dependencies) > MAX_DEPENDENCIES:
        fail(f"must have at most {MAX_DEPENDENCIES} entries (got {len(dependencies)})")
    seen: dict[str | None, int] = {}
    for index, dependency in enumerate(dependencies):
        # jobId None stands for the one SEQUENTIAL entry a job may have.
        key = dependency.jobId
        if key in seen:
            what = f"job {key}" if key else "a SEQUENTIAL dependency"
            fail(
                f"lists {what} a second time (dependsOn[{seen[key]}] already does)",
                f"[{index}].jobId" if key else f"[{index}].type",
            )
        seen[key] = index
    return dependencies


class NodePropertyOverride(AwsModel):
    targetNodes: TargetNodes
    containerOverrides: ContainerOverrides | None = None
    ecsPropertiesOverride: Loose | None = None
    instanceTypes: StringList | None = None
    eksPropertiesOverride: Loose | None = None
    consumableResourcePropertiesOverride: ConsumableResourceProperties | None = None


class NodeOverrides(AwsModel):
    numNodes: Annotated[int, int_range(1, MAX_NODES)] | None = None
    nodePropertyOverrides: list[NodePropertyOverride] | None = None

    @model_validator(mode="after")
    def _ranges_fit(self) -> NodeOverrides:
        # Coverage depends on the job definition (the head's business); indexes beyond an
        # overridden numNodes are wrong whatever the definition says.
        if self.numNodes is not None:
            for index, entry in enumerate(self.nodePropertyOverrides or []):
                at = f"nodePropertyOverrides[{index}].targetNodes"
                check_range_fits(entry.targetNodes, self.numNodes, at)
        return self


_SHARE_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9]{1,255}\*?")


def _check_share_identifier(value: str) -> str:
    if not _SHARE_IDENTIFIER_RE.fullmatch(value):
        fail(f"must be 1-255 letters and digits, optionally followed by a single * {shown(value)}")
    return value


ShareIdentifier = Annotated[str, AfterValidator(_check_share_identifier)]


class SubmitJobRequest(AwsModel):
    jobName: JobName
    jobQueue: QueueRef
    shareIdentifier: ShareIdentifier | None = None
    schedulingPriorityOverride: Annotated[int, int_range(0, 9999)] | None = None
    arrayProperties: ArrayProperties | None = None
    dependsOn: Annotated[list[JobDependency], AfterValidator(_check_dependencies)] | None = None
    jobDefinition: DefinitionRef
    parameters: Parameters | None = None
    containerOverrides: ContainerOverrides | None = None
    nodeOverrides: NodeOverrides | None = None
    retryStrategy: RetryStrategy | None = None
    propagateTags: bool | None = None
    timeout: JobTimeout | None = None
    tags: Tags | None = None
    eksPropertiesOverride: Loose | None = None
    ecsPropertiesOverride: Loose | None = None
    consumableResourcePropertiesOverride: ConsumableResourceProperties | None = None

    @model_validator(mode="after")
    def _array_dependencies_need_array(self) -> SubmitJobRequest:
        # SEQUENTIAL orders this job's own children and N_TO_N pairs them with another array's:
        # both mean nothing for a job without children.
        if self.arrayProperties is None:
            for index, dependency in enumerate(self.dependsOn or []):
                if dependency.type is not None:
                    fail(
                        f"{dependency.type} dependencies are only for array jobs: give "
                        "arrayProperties.size too, or leave type out for a plain dependency",
                        f"dependsOn[{index}].type",
                    )
        return self


# ---------------------------------------------------------------------------------------------
# DescribeJobs, ListJobs


class DescribeJobsRequest(AwsModel):
    jobs: Annotated[list[JobId], list_size(1, 100)]


_EPOCH_MS_RE = re.compile(r"[0-9]{1,15}")
_VALUE_AT = "values[0]"


def _check_filter_value(name: str, value: str) -> None:
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        if not _EPOCH_MS_RE.fullmatch(value):
            fail(f"must be a time in epoch milliseconds, digits only {shown(value)}", _VALUE_AT)
    elif name == "JOB_NAME":
        prefix = value.removesuffix("*")
        if not value or (prefix and not JOB_NAME_RE.fullmatch(prefix)):
            fail(
                "must be a job name, optionally ending in * to match names that start with it "
                f"{shown(value)}",
                _VALUE_AT,
            )
    elif name == "JOB_DEFINITION":
        _check_definition_filter(value)
    elif not value:
        fail('must be a share identifier (got "")', _VALUE_AT)


def _check_definition_filter(value: str) -> None:
    # A trailing * matches by name prefix; AWS does not support it with an ARN.
    prefix = value.removesuffix("*")
    if prefix != value and prefix.startswith("arn:"):
        fail(f"must not end in * when it is an ARN {shown(value)}", _VALUE_AT)
    if (prefix or not value) and split_definition_ref(prefix) is None:
        fail(
            "must be a job definition name, name:REVISION or ARN, or a name prefix ending in * "
            f"{shown(value)}",
            _VALUE_AT,
        )


class KeyValuesPair(AwsModel):
    """One ListJobs filter."""

    name: Annotated[str, one_of(*FILTER_NAMES)]
    values: Annotated[list[str], list_size(1, 1)]

    @model_validator(mode="after")
    def _values_fit_name(self) -> KeyValuesPair:
        _check_filter_value(self.name, self.values[0])
        return self


class ListJobsRequest(AwsModel):
    jobQueue: QueueRef | None = None
    arrayJobId: JobId | None = None
    multiNodeJobId: JobId | None = None
    jobStatus: Annotated[str, one_of(*JOB_STATUSES)] | None = None
    maxResults: Annotated[int, int_range(1, 1000)] | None = None
    nextToken: NextToken | None = None
    # AWS: "Only one filter can be used at a time"; with a filter jobStatus is ignored except
    # next to SHARE_IDENTIFIER. Both are accepted here; the head applies AWS's precedence.
    filters: Annotated[list[KeyValuesPair], list_size(1, 1)] | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> ListJobsRequest:
        only_one_of(self, ("jobQueue", "arrayJobId", "multiNodeJobId"), required=True)
        return self


# ---------------------------------------------------------------------------------------------
# CancelJob, TerminateJob


class CancelJobRequest(AwsModel):
    jobId: JobId
    reason: Reason


class TerminateJobRequest(AwsModel):
    jobId: JobId
    reason: Reason


# ---------------------------------------------------------------------------------------------
# CancelJobs, TerminateJobs (bulk)

MAX_BULK_JOBS = 50  # AWS: "An array of up to 50 Batch job IDs"


class CancelJobsRequest(AwsModel):
    """Up to 50 job ids, each judged alone: a malformed id is that id's own
    ``ValidationException`` in the answer's ``errors``, as AWS reports it, so the ids are plain
    strings here (``job_id_problem`` judges them); the list and the reason are the request's."""

    jobs: Annotated[list[str], list_size(1, MAX_BULK_JOBS)]
    reason: Reason


class TerminateJobsRequest(CancelJobsRequest):
    pass
