"""Requests about quota shares: Create, Describe, List, Update, Delete.

Vocabulary: a *quota share* is a slice of a job queue's capacity (core/quota_shares.py): its
``capacityLimits`` (``VCPU``, ``GPU``, ``MEMORY_MIB``), its ``resourceSharingConfiguration``
(RESERVE, LEND, LEND_AND_BORROW with ``borrowLimit`` %) and ``preemptionConfiguration``. Shapes
are botocore's; which units and how much are the core's rules (they need the state for nothing,
but live with the rest of the share's rules there).
"""

from __future__ import annotations

from typing import Annotated

from hpcbatch.head.api.models.common import (
    AwsModel,
    Name,
    NextToken,
    NonEmpty,
    QueueRef,
    Tags,
    int_range,
    list_size,
    one_of,
)

ShareState = Annotated[str, one_of("ENABLED", "DISABLED")]


class QuotaShareCapacityLimit(AwsModel):
    maxCapacity: Annotated[int, int_range(0)]
    capacityUnit: NonEmpty


class QuotaShareResourceSharingConfiguration(AwsModel):
    strategy: Annotated[str, one_of("RESERVE", "LEND", "LEND_AND_BORROW")]
    borrowLimit: Annotated[int, int_range(-1)] | None = None


class QuotaSharePreemptionConfiguration(AwsModel):
    inSharePreemption: ShareState


CapacityLimits = Annotated[list[QuotaShareCapacityLimit], list_size(1, 3)]


class CreateQuotaShareRequest(AwsModel):
    quotaShareName: Name
    jobQueue: QueueRef
    capacityLimits: CapacityLimits
    resourceSharingConfiguration: QuotaShareResourceSharingConfiguration
    preemptionConfiguration: QuotaSharePreemptionConfiguration
    state: ShareState | None = None
    tags: Tags | None = None


class DescribeQuotaShareRequest(AwsModel):
    quotaShareArn: NonEmpty


class ListQuotaSharesRequest(AwsModel):
    jobQueue: QueueRef
    maxResults: Annotated[int, int_range(1, 1000)] | None = None
    nextToken: NextToken | None = None


class UpdateQuotaShareRequest(AwsModel):
    quotaShareArn: NonEmpty
    capacityLimits: CapacityLimits | None = None
    resourceSharingConfiguration: QuotaShareResourceSharingConfiguration | None = None
    preemptionConfiguration: QuotaSharePreemptionConfiguration | None = None
    state: ShareState | None = None


class DeleteQuotaShareRequest(AwsModel):
    quotaShareArn: NonEmpty
