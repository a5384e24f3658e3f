"""What the head answers to each of the 48 operations of botocore's AWS Batch model.

Vocabulary: an operation is *served* when ``parse.OPERATIONS`` has its request model and
``operations.HANDLERS`` its handler; *refused* when it cannot mean anything on machines you own
(SageMaker service environments and service jobs): a ClientException that says what to use
instead, never a 404, so a boto3 or aws CLI user hears why. Every other operation is served.
docs/api.md lists all 48 with their status; a test holds that table, this module and botocore's
model to the same names.
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

_BY_PATH = {name.lower(): name for name in SAGEMAKER_ONLY}


def unserved(path_name: str) -> tuple[str, str] | None:
    """``(AWS name, why the head does not serve it)`` for a refused operation named as in its
    path (``submitservicejob``), or None for any other name."""
    name = _BY_PATH.get(path_name)
    if name is None:
        return None
    why = (
        f"{name} is SageMaker-only: service environments and service jobs run SageMaker "
        f"training jobs in AWS, and hpcbatch has no SageMaker; use {SAGEMAKER_ONLY[name]} instead"
    )
    return name, why
