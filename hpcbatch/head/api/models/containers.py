"""What a job runs and how it is retried: shapes shared by job definitions and SubmitJob.

Vocabulary: *container properties* describe the process a job definition runs; *container
overrides* replace parts of them for one submission; a *resource requirement* is one
``{type, value}`` pair (VCPU, MEMORY in MiB, GPU); a *retry strategy* says how many attempts a
job gets and which exits end it early.

hpcbatch runs a job as a process on its node, not in a container: what only a container runtime
could honour (``privileged``, ``readonlyRootFilesystem``, ``ulimits``) is refused when asked for,
never silently ignored, and what reaches the process (command, environment, ``user``) never
holds a NUL character.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo, model_validator

from hpcbatch.head.api.models.common import (
    AwsModel,
    Loose,
    fail,
    int_range,
    list_size,
    one_of,
    shown,
    text,
)

RESERVED_ENV_PREFIX = "AWS_BATCH"
DEFAULT_MIN_TIMEOUT_SECONDS = 60

# ---------------------------------------------------------------------------------------------
# Environment


def _check_env_name(name: str) -> str:
    if not name:
        fail('must be a non-empty environment variable name (got "")')
    if name.startswith(RESERVED_ENV_PREFIX):
        fail(
            f"must not start with {RESERVED_ENV_PREFIX}: the AWS_BATCH_ prefix is reserved for "
            f"variables hpcbatch sets {shown(name)}"
        )
    if "=" in name or "\x00" in name:
        fail(f"must not contain '=' or a NUL character {shown(name)}")
    return name


class KeyValuePair(AwsModel):
    """One environment variable. AWS lets ``name`` be absent; a nameless variable means nothing."""

    name: Annotated[str, AfterValidator(_check_env_name)]
    value: Annotated[str, text(0)] | None = None


def _check_environment(variables: list[KeyValuePair]) -> list[KeyValuePair]:
    first: dict[str, int] = {}
    for index, variable in enumerate(variables):
        if variable.name in first:
            fail(
                f"sets {variable.name} a second time (environment[{first[variable.name]}] "
                "already sets it)",
                f"[{index}].name",
            )
        first[variable.name] = index
    return variables


Environment = Annotated[list[KeyValuePair], AfterValidator(_check_environment)]

# ---------------------------------------------------------------------------------------------
# Resources

_INTEGER_RE = re.compile(r"[0-9]+")
_DECIMAL_RE = re.compile(r"[0-9]+(\.[0-9]+)?")


def _check_requirement_value(kind: str, value: str) -> None:
    if kind == "VCPU":
        ok = bool(_DECIMAL_RE.fullmatch(value)) and _positive(value)
        rule = 'must be a positive number of vCPUs such as "2" or "0.25"'
    elif kind == "MEMORY":
        ok = bool(_INTEGER_RE.fullmatch(value)) and int(value) >= 4
        rule = "must be a whole number of MiB, at least 4"
    else:
        ok = bool(_INTEGER_RE.fullmatch(value)) and int(value) >= 1
        rule = "must be a whole number of GPUs, at least 1"
    if not ok:
        fail(f"{rule} {shown(value)}", "value")


def _positive(value: str) -> bool:
    try:
        return Decimal(value) > 0
    except InvalidOperation:
        return False


class ResourceRequirement(AwsModel):
    value: str
    type: Annotated[str, one_of("GPU", "VCPU", "MEMORY")]

    @model_validator(mode="after")
    def _value_fits_type(self) -> ResourceRequirement:
        _check_requirement_value(self.type, self.value)
        return self


def _check_requirements(requirements: list[ResourceRequirement]) -> list[ResourceRequirement]:
    seen: dict[str, int] = {}
    for index, requirement in enumerate(requirements):
        if requirement.type in seen:
            fail(
                f"lists {requirement.type} a second time (resourceRequirements"
                f"[{seen[requirement.type]}] already gives it)",
                f"[{index}].type",
            )
        seen[requirement.type] = index
    return requirements


ResourceRequirements = Annotated[list[ResourceRequirement], AfterValidator(_check_requirements)]


def _check_command(command: list[str]) -> list[str]:
    # AWS: "This parameter can't contain an empty string"; an empty list would be an override
    # that runs nothing, which is never what the caller meant.
    if not command:
        fail("must have at least one entry when given (got 0)")
    for index, argument in enumerate(command):
        if not argument:
            fail('must not contain an empty string (got "")', f"[{index}]")
        if "\x00" in argument:
            fail(f"must not contain a NUL character {shown(argument)}", f"[{index}]")
    return command


Command = Annotated[list[str], AfterValidator(_check_command)]
Vcpus = Annotated[int, int_range(1)]
MemoryMiB = Annotated[int, int_range(4)]


def check_single_source(
    vcpus: int | None, memory: int | None, requirements: list[ResourceRequirement] | None
) -> None:
    """Refuse the legacy ``vcpus``/``memory`` next to a VCPU/MEMORY requirement in one object.

    Two values for one resource leave the head guessing which wins; AWS documents the legacy
    fields as deprecated in favour of ``resourceRequirements``.
    """
    kinds = {requirement.type for requirement in requirements or []}
    if vcpus is not None and "VCPU" in kinds:
        fail("cannot be given together with a VCPU entry in resourceRequirements", "vcpus")
    if memory is not None and "MEMORY" in kinds:
        fail("cannot be given together with a MEMORY entry in resourceRequirements", "memory")


# ---------------------------------------------------------------------------------------------
# Who a job runs as, and what a container runtime would add


def _check_user(user: str) -> str:
    # An empty name must never fall back to whoever the agent runs as (root).
    if not user:
        fail('must name the Unix user the jobs run as: not an empty string (got "")')
    if len(user) > 256:
        fail(f"must be a Unix user name of at most 256 characters {shown(user)}")
    if "\x00" in user:
        fail(f"must not contain a NUL character {shown(user)}")
    return user


PROCESSES_NOT_CONTAINERS = "hpcbatch runs jobs as processes on the node, not in containers"


def _refuse_true(feature: str) -> AfterValidator:
    def check(value: bool) -> bool:
        if value:
            fail(
                f"must be false or left out: {PROCESSES_NOT_CONTAINERS}, and does not support "
                f"{feature} (got true)"
            )
        return value

    return AfterValidator(check)


def _refuse_ulimits(ulimits: list[Loose]) -> list[Loose]:
    if ulimits:
        fail(
            f"must be empty or left out: {PROCESSES_NOT_CONTAINERS}, and does not support "
            f"per-job ulimits (got {len(ulimits)} entries)"
        )
    return ulimits


User = Annotated[str, AfterValidator(_check_user)]
ReadonlyRoot = Annotated[bool, _refuse_true("a read-only root file system")]
Privileged = Annotated[bool, _refuse_true("privileged jobs")]
Ulimits = Annotated[list[Loose], AfterValidator(_refuse_ulimits)]


class ContainerProperties(AwsModel):
    """ContainerProperties; fields with no on-premises meaning are kept as loose JSON."""

    image: str | None = None
    vcpus: Vcpus | None = None
    memory: MemoryMiB | None = None
    command: Command | None = None
    jobRoleArn: str | None = None
    executionRoleArn: str | None = None
    volumes: list[Loose] | None = None
    environment: Environment | None = None
    mountPoints: list[Loose] | None = None
    readonlyRootFilesystem: ReadonlyRoot | None = None
    privileged: Privileged | None = None
    ulimits: Ulimits | None = None
    user: User | None = None
    instanceType: str | None = None
    resourceRequirements: ResourceRequirements | None = None
    linuxParameters: Loose | None = None
    logConfiguration: Loose | None = None
    secrets: list[Loose] | None = None
    networkConfiguration: Loose | None = None
    fargatePlatformConfiguration: Loose | None = None
    enableExecuteCommand: bool | None = None
    ephemeralStorage: Loose | None = None
    runtimePlatform: Loose | None = None
    repositoryCredentials: Loose | None = None

    @model_validator(mode="after")
    def _one_source_per_resource(self) -> ContainerProperties:
        check_single_source(self.vcpus, self.memory, self.resourceRequirements)
        return self


class ContainerOverrides(AwsModel):
    vcpus: Vcpus | None = None
    memory: MemoryMiB | None = None
    command: Command | None = None
    instanceType: str | None = None
    environment: Environment | None = None
    resourceRequirements: ResourceRequirements | None = None

    @model_validator(mode="after")
    def _one_source_per_resource(self) -> ContainerOverrides:
        check_single_source(self.vcpus, self.memory, self.resourceRequirements)
        return self


# ---------------------------------------------------------------------------------------------
# Retries and timeouts

_EXIT_CODE_RE = re.compile(r"[0-9]*\*?")
_REASON_RE = re.compile(r"[A-Za-z0-9.: \t]*\*?")


def _check_exit_code_glob(value: str) -> str:
    if not value or len(value) > 512 or not _EXIT_CODE_RE.fullmatch(value):
        fail(f"must be 1-512 characters of digits, optionally ending in a single * {shown(value)}")
    return value


def _check_reason_glob(value: str) -> str:
    if not value or len(value) > 512 or not _REASON_RE.fullmatch(value):
        fail(
            "must be 1-512 characters of letters, digits, '.', ':' and white space, "
            f"optionally ending in a single * {shown(value)}"
        )
    return value


class EvaluateOnExit(AwsModel):
    onStatusReason: Annotated[str, AfterValidator(_check_reason_glob)] | None = None
    onReason: Annotated[str, AfterValidator(_check_reason_glob)] | None = None
    onExitCode: Annotated[str, AfterValidator(_check_exit_code_glob)] | None = None
    action: Annotated[str, one_of("RETRY", "EXIT", upper=True)]

    @model_validator(mode="after")
    def _has_condition(self) -> EvaluateOnExit:
        if self.onStatusReason is None and self.onReason is None and self.onExitCode is None:
            fail("needs at least one of onExitCode, onReason or onStatusReason")
        return self


class RetryStrategy(AwsModel):
    attempts: Annotated[int, int_range(1, 10)] | None = None
    evaluateOnExit: Annotated[list[EvaluateOnExit], list_size(0, 5)] | None = None

    @model_validator(mode="after")
    def _attempts_with_rules(self) -> RetryStrategy:
        if self.evaluateOnExit and self.attempts is None:
            fail("is required when evaluateOnExit is given", "attempts")
        return self


def _check_timeout(seconds: int, info: ValidationInfo) -> int:
    context: dict[str, Any] = info.context or {}
    minimum = int(context.get("min_timeout_seconds", DEFAULT_MIN_TIMEOUT_SECONDS))
    if seconds < minimum:
        fail(f"must be an integer number of seconds, at least {minimum} {shown(seconds)}")
    return seconds


class JobTimeout(AwsModel):
    attemptDurationSeconds: Annotated[int, AfterValidator(_check_timeout)] | None = None
