"""What the head answers to each of the 48 operations of botocore's AWS Batch model.

Vocabulary: an operation is *served* when ``parse.OPERATIONS`` has its request model and
``operations.HANDLERS`` its handler; *refused* when it cannot mean anything on machines you own
(SageMaker service environments and service jobs): a ClientException that says what to use
instead; *not yet* when it is not served yet: none is, today (every other operation is served).
A refusal is a ClientException that says why. Neither is ever a 404, so a
boto3 or aws CLI user hears why. docs/api.md lists all 48 with their status; a test holds that
table, this module and botocore's model to the same names.
"""

from __future__ import annotations

# SageMaker-only operations -> what to use on hpcbatch instead.
SAGEMAKER_ONLY: dict[str, str] = {
    "CreateServiceEnvironment": "a compute environment (CreateComputeEnvironment) and a job queue",
    "DescribeServiceEnvironments": "DescribeComputeEnvironments",
    "UpdateServiceEnvironment": "UpdateComputeEnvironment",
    "DeleteServiceEnvironment": "DeleteComputeEnvironment",
    "SubmitServiceJob": "SubmitJob on a job queue",
    "DescribeServiceJob": "DescribeJobs",
    "ListServiceJobs": "ListJobs",
    "TerminateServiceJob": "TerminateJob",
    "TerminateServiceJobs": "TerminateJobs",
    "UpdateServiceJob": "SubmitJob on a job queue (a job's settings are fixed when it is submitted)",
}

# Operations of botocore's model the head does not serve yet -> the feature they belong to
# (none today: every operation but SageMaker's is served).
NOT_YET: dict[str, str] = {}

_BY_PATH = {name.lower(): name for name in (*SAGEMAKER_ONLY, *NOT_YET)}


def unserved(path_name: str) -> tuple[str, str] | None:
    """``(AWS name, why the head does not serve it)`` for a refused or not-yet operation named
    as in its path (``createschedulingpolicy``), or None for any other name."""
    name = _BY_PATH.get(path_name)
    if name is None:
        return None
    if name in SAGEMAKER_ONLY:
        why = (
            f"{name} is SageMaker-only: service environments and service jobs run SageMaker "
            "training jobs in AWS, and hpcbatch has no SageMaker; use "
            f"{SAGEMAKER_ONLY[name]} instead"
        )
    else:
        why = f"{name} is not implemented yet in hpcbatch (issue 14: {NOT_YET[name]})"
    return name, why
