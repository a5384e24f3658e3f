"""Pydantic models of every AWS Batch request hpcbatch serves, one module per resource.

Field names are AWS's own (camelCase, as on the wire), so ``aws_fields(model)`` is the request
as AWS would echo it back. Models validate field-level, state-free rules only; whether a named
queue or definition exists is the head's business. Parse requests through
``hpcbatch.head.api.parse.parse_request``, which turns every problem into
``hpcbatch.errors.ValidationError``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hpcbatch.head.api.models.common import (
    AwsModel,
    job_id_problem,
    ref_name,
    split_arn,
    split_definition_ref,
)
from hpcbatch.head.api.models.compute_environments import (
    ComputeResource,
    ComputeResourceUpdate,
    CreateComputeEnvironmentRequest,
    DeleteComputeEnvironmentRequest,
    DescribeComputeEnvironmentsRequest,
    UpdateComputeEnvironmentRequest,
    UpdatePolicy,
)
from hpcbatch.head.api.models.consumables import (
    ConsumableResourceProperties,
    ConsumableResourceRequirement,
    CreateConsumableResourceRequest,
    DeleteConsumableResourceRequest,
    DescribeConsumableResourceRequest,
    ListConsumableResourcesRequest,
    ListJobsByConsumableResourceRequest,
    UpdateConsumableResourceRequest,
)
from hpcbatch.head.api.models.containers import (
    ContainerOverrides,
    ContainerProperties,
    EvaluateOnExit,
    JobTimeout,
    KeyValuePair,
    ResourceRequirement,
    RetryStrategy,
)
from hpcbatch.head.api.models.job_definitions import (
    DeregisterJobDefinitionRequest,
    DescribeJobDefinitionsRequest,
    NodeProperties,
    NodeRangeProperty,
    RegisterJobDefinitionRequest,
    node_range,
    parse_target_nodes,
)
from hpcbatch.head.api.models.job_queues import (
    ComputeEnvironmentOrder,
    CreateJobQueueRequest,
    DeleteJobQueueRequest,
    DescribeJobQueuesRequest,
    JobStateTimeLimitAction,
    ServiceEnvironmentOrder,
    UpdateJobQueueRequest,
)
from hpcbatch.head.api.models.jobs import (
    ArrayProperties,
    CancelJobRequest,
    CancelJobsRequest,
    DescribeJobsRequest,
    JobDependency,
    KeyValuesPair,
    ListJobsRequest,
    NodeOverrides,
    NodePropertyOverride,
    SubmitJobRequest,
    TerminateJobRequest,
    TerminateJobsRequest,
)
from hpcbatch.head.api.models.quota_shares import (
    CreateQuotaShareRequest,
    DeleteQuotaShareRequest,
    DescribeQuotaShareRequest,
    ListQuotaSharesRequest,
    UpdateQuotaShareRequest,
)
from hpcbatch.head.api.models.scheduling_policies import (
    CreateSchedulingPolicyRequest,
    DeleteSchedulingPolicyRequest,
    DescribeSchedulingPoliciesRequest,
    FairsharePolicy,
    GetJobQueueSnapshotRequest,
    ListSchedulingPoliciesRequest,
    ShareAttributes,
    UpdateSchedulingPolicyRequest,
)
from hpcbatch.head.api.models.tags import (
    ListTagsForResourceRequest,
    TagResourceRequest,
    UntagResourceRequest,
)


def aws_fields(model: BaseModel) -> dict[str, Any]:
    """The fields the caller gave, by AWS name, as plain JSON values (nested models included).

    Absent fields are left out rather than sent as null, as AWS does in its responses.
    """
    return model.model_dump(mode="json", exclude_none=True)


__all__ = [
    "UpdateQuotaShareRequest",
    "ListQuotaSharesRequest",
    "DescribeQuotaShareRequest",
    "DeleteQuotaShareRequest",
    "CreateQuotaShareRequest",
    "ArrayProperties",
    "AwsModel",
    "CancelJobRequest",
    "CancelJobsRequest",
    "ComputeEnvironmentOrder",
    "ComputeResource",
    "ComputeResourceUpdate",
    "ConsumableResourceProperties",
    "ConsumableResourceRequirement",
    "CreateConsumableResourceRequest",
    "DeleteConsumableResourceRequest",
    "DescribeConsumableResourceRequest",
    "ListConsumableResourcesRequest",
    "ListJobsByConsumableResourceRequest",
    "UpdateConsumableResourceRequest",
    "ContainerOverrides",
    "ContainerProperties",
    "CreateComputeEnvironmentRequest",
    "CreateJobQueueRequest",
    "CreateSchedulingPolicyRequest",
    "DeleteComputeEnvironmentRequest",
    "DeleteJobQueueRequest",
    "DeleteSchedulingPolicyRequest",
    "DeregisterJobDefinitionRequest",
    "DescribeComputeEnvironmentsRequest",
    "DescribeJobDefinitionsRequest",
    "DescribeJobQueuesRequest",
    "DescribeJobsRequest",
    "DescribeSchedulingPoliciesRequest",
    "EvaluateOnExit",
    "FairsharePolicy",
    "GetJobQueueSnapshotRequest",
    "JobDependency",
    "JobStateTimeLimitAction",
    "JobTimeout",
    "KeyValuePair",
    "KeyValuesPair",
    "ListJobsRequest",
    "ListSchedulingPoliciesRequest",
    "ListTagsForResourceRequest",
    "NodeOverrides",
    "NodeProperties",
    "NodePropertyOverride",
    "NodeRangeProperty",
    "RegisterJobDefinitionRequest",
    "ResourceRequirement",
    "RetryStrategy",
    "ServiceEnvironmentOrder",
    "ShareAttributes",
    "SubmitJobRequest",
    "TagResourceRequest",
    "TerminateJobRequest",
    "TerminateJobsRequest",
    "UntagResourceRequest",
    "UpdateComputeEnvironmentRequest",
    "UpdateJobQueueRequest",
    "UpdatePolicy",
    "UpdateSchedulingPolicyRequest",
    "aws_fields",
    "job_id_problem",
    "node_range",
    "parse_target_nodes",
    "ref_name",
    "split_arn",
    "split_definition_ref",
]
