"""Requests about scheduling policies (fair share, quota share) and GetJobQueueSnapshot.

Vocabulary: a *scheduling policy* holds either a ``quotaSharePolicy``
(``idleResourceAssignmentStrategy``: AWS's only value is FIFO; the queue's jobs then run in its
quota shares) or a ``fairsharePolicy``: ``shareDecaySeconds`` (the half-life of past usage; 0 is AWS's default 600 s), ``computeReservation`` (0-99: capacity kept
for shares with no running job) and ``shareDistribution`` (share identifiers, a trailing ``*``
making a prefix, each with a ``weightFactor``: a LOWER factor gets MORE capacity). Policies are
named by ARN everywhere but in CreateSchedulingPolicy.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, field_validator

from hpcbatch.head.api.models.common import (
    AwsModel,
    Name,
    NextToken,
    QueueRef,
    SchedulingPolicyArn,
    Tags,
    fail,
    int_range,
    list_size,
    shown,
)

_SHARE_RE = re.compile(r"[A-Za-z0-9]{1,255}\*?")


def _check_identifier(value: str) -> str:
    if not _SHARE_RE.fullmatch(value):
        fail(f"must be 1-255 letters and digits, optionally followed by a single * {shown(value)}")
    return value


def _check_weight(value: float) -> float:
    if not 0.0001 <= value <= 999.9999:
        fail(f"must be 0.0001-999.9999 {shown(value)}")
    if abs(round(value * 10000) - value * 10000) > 1e-6:
        fail(f"may have at most 4 decimal places {shown(value)}")
    return value


class ShareAttributes(AwsModel):
    shareIdentifier: Annotated[str, AfterValidator(_check_identifier)]
    weightFactor: Annotated[float, AfterValidator(_check_weight)] | None = None

    @field_validator("weightFactor", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # JSON has one number type: 2 is as good a weight factor as 2.0
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class FairsharePolicy(AwsModel):
    shareDecaySeconds: Annotated[int, int_range(0, 604800)] | None = None
    computeReservation: Annotated[int, int_range(0, 99)] | None = None
    shareDistribution: Annotated[list[ShareAttributes], list_size(0, 500)] | None = None


class QuotaSharePolicy(AwsModel):
    idleResourceAssignmentStrategy: str


class CreateSchedulingPolicyRequest(AwsModel):
    name: Name
    fairsharePolicy: FairsharePolicy | None = None
    quotaSharePolicy: QuotaSharePolicy | None = None
    tags: Tags | None = None


class UpdateSchedulingPolicyRequest(AwsModel):
    arn: SchedulingPolicyArn
    fairsharePolicy: FairsharePolicy | None = None
    quotaSharePolicy: QuotaSharePolicy | None = None


class DeleteSchedulingPolicyRequest(AwsModel):
    arn: SchedulingPolicyArn


class DescribeSchedulingPoliciesRequest(AwsModel):
    arns: Annotated[list[SchedulingPolicyArn], list_size(1, 100)]


class ListSchedulingPoliciesRequest(AwsModel):
    maxResults: Annotated[int, int_range(1, 1000)] | None = None
    nextToken: NextToken | None = None


class GetJobQueueSnapshotRequest(AwsModel):
    jobQueue: QueueRef
