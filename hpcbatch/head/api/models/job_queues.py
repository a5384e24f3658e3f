"""Requests about job queues: Create, Describe, Update, Delete.

Vocabulary: a *job queue* holds submitted jobs; its *priority* orders queues that share a compute
environment (higher first); its *computeEnvironmentOrder* lists up to three compute environments,
tried by ascending ``order``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, model_validator

from hpcbatch.head.api.models.common import (
    AwsModel,
    ComputeEnvironmentRef,
    DescribeMaxResults,
    Name,
    NextToken,
    NonEmpty,
    QueueRef,
    Reason,
    SchedulingPolicyArn,
    Tags,
    fail,
    int_range,
    list_size,
    one_of,
    ref_name,
)

QUEUE_STATES = ("ENABLED", "DISABLED")
QUEUE_TYPES = ("EKS", "ECS", "ECS_FARGATE", "SAGEMAKER_TRAINING", "ECS_MANAGED_INSTANCES")

QueueState = Annotated[str, one_of(*QUEUE_STATES)]
# botocore gives queue priority no range; hpcbatch bounds it to 0-1000 (as the AWS docs do).
QueuePriority = Annotated[int, int_range(0, 1000)]
Order = Annotated[int, int_range(0)]


class ComputeEnvironmentOrder(AwsModel):
    order: Order
    computeEnvironment: ComputeEnvironmentRef


class ServiceEnvironmentOrder(AwsModel):
    order: Order
    serviceEnvironment: NonEmpty


def _check_ce_order(entries: list[ComputeEnvironmentOrder]) -> list[ComputeEnvironmentOrder]:
    if not 1 <= len(entries) <= 3:
        fail(f"must list 1-3 compute environments (got {len(entries)})")
    orders: dict[int, int] = {}
    names: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.order in orders:
            fail(
                f"must be unique: computeEnvironmentOrder[{orders[entry.order]}] already has "
                f"order {entry.order}",
                f"[{index}].order",
            )
        # A name and the ARN of the same environment count as the same environment.
        name = ref_name(entry.computeEnvironment)
        if name in names:
            fail(
                f"lists compute environment {name} a second time "
                f"(computeEnvironmentOrder[{names[name]}] already lists it)",
                f"[{index}].computeEnvironment",
            )
        orders[entry.order] = index
        names[name] = index
    return entries


ComputeEnvironmentOrders = Annotated[list[ComputeEnvironmentOrder], AfterValidator(_check_ce_order)]


class JobStateTimeLimitAction(AwsModel):
    reason: Reason
    state: Annotated[str, one_of("RUNNABLE")]
    maxTimeSeconds: Annotated[int, int_range(600, 86400)]
    action: Annotated[str, one_of("CANCEL", "TERMINATE")]


def _check_environment_choice(
    compute: list[ComputeEnvironmentOrder] | None,
    service: list[ServiceEnvironmentOrder] | None,
    required: bool,
) -> None:
    # AWS: "A job queue can't have both a serviceEnvironmentOrder and a computeEnvironmentOrder".
    if compute is not None and service is not None:
        fail("cannot be combined with computeEnvironmentOrder", "serviceEnvironmentOrder")
    if required and compute is None and service is None:
        fail("is required", "computeEnvironmentOrder")


class CreateJobQueueRequest(AwsModel):
    jobQueueName: Name
    state: QueueState | None = None
    schedulingPolicyArn: SchedulingPolicyArn | None = None
    priority: QueuePriority
    computeEnvironmentOrder: ComputeEnvironmentOrders | None = None
    serviceEnvironmentOrder: list[ServiceEnvironmentOrder] | None = None
    jobQueueType: Annotated[str, one_of(*QUEUE_TYPES)] | None = None
    tags: Tags | None = None
    jobStateTimeLimitActions: list[JobStateTimeLimitAction] | None = None

    @model_validator(mode="after")
    def _environments(self) -> CreateJobQueueRequest:
        _check_environment_choice(
            self.computeEnvironmentOrder, self.serviceEnvironmentOrder, required=True
        )
        return self


class UpdateJobQueueRequest(AwsModel):
    jobQueue: QueueRef
    state: QueueState | None = None
    schedulingPolicyArn: SchedulingPolicyArn | None = None
    priority: QueuePriority | None = None
    computeEnvironmentOrder: ComputeEnvironmentOrders | None = None
    serviceEnvironmentOrder: list[ServiceEnvironmentOrder] | None = None
    jobStateTimeLimitActions: list[JobStateTimeLimitAction] | None = None

    @model_validator(mode="after")
    def _environments(self) -> UpdateJobQueueRequest:
        _check_environment_choice(
            self.computeEnvironmentOrder, self.serviceEnvironmentOrder, required=False
        )
        return self


class DescribeJobQueuesRequest(AwsModel):
    jobQueues: Annotated[list[QueueRef], list_size(0, 100)] | None = None
    maxResults: DescribeMaxResults | None = None
    nextToken: NextToken | None = None


class DeleteJobQueueRequest(AwsModel):
    jobQueue: QueueRef
