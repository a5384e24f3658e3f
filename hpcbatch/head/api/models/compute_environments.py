"""Requests about compute environments: Create, Describe, Update, Delete.

Vocabulary: a *compute environment* (CE) is a pool of hosts jobs run on; *MANAGED* CEs carry
``computeResources`` (vCPU bounds and, on AWS, instance settings that hpcbatch only stores);
*UNMANAGED* CEs carry at most ``unmanagedvCpus``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from hpcbatch.head.api.models.common import (
    AwsModel,
    ComputeEnvironmentRef,
    DescribeMaxResults,
    Loose,
    Name,
    NextToken,
    StringList,
    Tags,
    fail,
    int_range,
    list_size,
    one_of,
)
from hpcbatch.head.api.models.integers import Long

CE_TYPES = ("MANAGED", "UNMANAGED")
CE_STATES = ("ENABLED", "DISABLED")
# hpcbatch's own kinds ride in computeResources.type, which boto3 does not check client-side.
HPCBATCH_KINDS = ("LOCAL", "SSH", "SLURM")
CR_TYPES = HPCBATCH_KINDS + ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT", "ECS_MANAGED_INSTANCES")
ALLOCATION_STRATEGIES = (
    "BEST_FIT",
    "BEST_FIT_PROGRESSIVE",
    "BEST_FIT_PROGRESSIVE_ORDERED",
    "SPOT_CAPACITY_OPTIMIZED",
    "SPOT_PRICE_CAPACITY_OPTIMIZED",
    "SPOT_CAPACITY_OPTIMIZED_PRIORITIZED",
)

CeState = Annotated[str, one_of(*CE_STATES)]
VcpuCount = Annotated[int, int_range(0)]
BidPercentage = Annotated[int, int_range(0, 100)]


def check_vcpu_bounds(low: int | None, desired: int | None, high: int | None) -> None:
    """minvCpus <= desiredvCpus <= maxvCpus, for whichever of the three are given."""
    if low is not None and high is not None and low > high:
        fail(f"must be at least minvCpus ({low}) (got {high})", "maxvCpus")
    if desired is not None and low is not None and desired < low:
        fail(f"must be at least minvCpus ({low}) (got {desired})", "desiredvCpus")
    if desired is not None and high is not None and desired > high:
        fail(f"must be at most maxvCpus ({high}) (got {desired})", "desiredvCpus")


class ComputeResource(AwsModel):
    type: Annotated[str, one_of(*CR_TYPES)]
    allocationStrategy: Annotated[str, one_of(*ALLOCATION_STRATEGIES)] | None = None
    minvCpus: VcpuCount | None = None
    maxvCpus: VcpuCount | None = None  # required by AWS; on-prem capacity comes from nodes
    desiredvCpus: VcpuCount | None = None
    instanceTypes: StringList | None = None
    imageId: str | None = None
    subnets: StringList | None = None
    securityGroupIds: StringList | None = None
    ec2KeyPair: str | None = None
    instanceRole: str | None = None
    tags: dict[str, str] | None = None
    placementGroup: str | None = None
    bidPercentage: BidPercentage | None = None
    spotIamFleetRole: str | None = None
    launchTemplate: Loose | None = None
    ec2Configuration: list[Loose] | None = None
    scalingPolicy: Loose | None = None
    managedInstancesProvider: Loose | None = None
    capacityTags: Tags | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ComputeResource:
        if self.maxvCpus is None and self.type not in HPCBATCH_KINDS:
            fail("is required", "maxvCpus")
        check_vcpu_bounds(self.minvCpus, self.desiredvCpus, self.maxvCpus)
        return self


class ComputeResourceUpdate(AwsModel):
    minvCpus: VcpuCount | None = None
    maxvCpus: VcpuCount | None = None
    desiredvCpus: VcpuCount | None = None
    subnets: StringList | None = None
    securityGroupIds: StringList | None = None
    allocationStrategy: Annotated[str, one_of(*ALLOCATION_STRATEGIES[1:])] | None = None
    instanceTypes: StringList | None = None
    ec2KeyPair: str | None = None
    instanceRole: str | None = None
    tags: dict[str, str] | None = None
    placementGroup: str | None = None
    bidPercentage: BidPercentage | None = None
    launchTemplate: Loose | None = None
    ec2Configuration: list[Loose] | None = None
    updateToLatestImageVersion: bool | None = None
    type: Annotated[str, one_of(*CR_TYPES)] | None = None
    imageId: str | None = None
    scalingPolicy: Loose | None = None
    managedInstancesProvider: Loose | None = None
    capacityTags: Tags | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ComputeResourceUpdate:
        check_vcpu_bounds(self.minvCpus, self.desiredvCpus, self.maxvCpus)
        return self


class UpdatePolicy(AwsModel):
    terminateJobsOnUpdate: bool | None = None
    jobExecutionTimeoutMinutes: Annotated[Long, int_range(1, 7200)] | None = None  # a Long


class CreateComputeEnvironmentRequest(AwsModel):
    computeEnvironmentName: Name
    type: Annotated[str, one_of(*CE_TYPES)]
    state: CeState | None = None
    unmanagedvCpus: VcpuCount | None = None
    computeResources: ComputeResource | None = None
    serviceRole: str | None = None
    tags: Tags | None = None
    eksConfiguration: Loose | None = None
    context: str | None = None
    ecsSettings: Loose | None = None

    @model_validator(mode="after")
    def _fields_fit_type(self) -> CreateComputeEnvironmentRequest:
        # AWS: computeResources "is required for managed compute environments";
        # unmanagedvCpus "is only supported when the type parameter is set to UNMANAGED".
        if self.type == "MANAGED":
            if self.computeResources is None:
                fail("is required when type is MANAGED", "computeResources")
            if self.unmanagedvCpus is not None:
                fail("is only allowed when type is UNMANAGED", "unmanagedvCpus")
        elif self.computeResources is not None:
            fail("is only allowed when type is MANAGED", "computeResources")
        return self


class UpdateComputeEnvironmentRequest(AwsModel):
    computeEnvironment: ComputeEnvironmentRef
    state: CeState | None = None
    unmanagedvCpus: VcpuCount | None = None
    computeResources: ComputeResourceUpdate | None = None
    serviceRole: str | None = None
    updatePolicy: UpdatePolicy | None = None
    context: str | None = None
    ecsSettings: Loose | None = None
    eksConfiguration: Loose | None = None


class DescribeComputeEnvironmentsRequest(AwsModel):
    computeEnvironments: Annotated[list[ComputeEnvironmentRef], list_size(0, 100)] | None = None
    maxResults: DescribeMaxResults | None = None
    nextToken: NextToken | None = None


class DeleteComputeEnvironmentRequest(AwsModel):
    computeEnvironment: ComputeEnvironmentRef
