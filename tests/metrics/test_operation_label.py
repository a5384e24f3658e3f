"""The API's metrics label is bounded: an operation's name (any of botocore's 48, served or not),
a route's, or ``unknown``."""

from __future__ import annotations

import pytest

from hpcbatch.head.api.app import operation_of


@pytest.mark.parametrize(
    ("method", "path", "label"),
    [
        ("POST", "/v1/submitjob", "SubmitJob"),
        ("POST", "/v1/describejobs/", "DescribeJobs"),
        ("POST", "/v1/no-such-operation", "unknown"),
        ("POST", "/v1/canceljobs", "CancelJobs"),
        ("POST", "/v1/createschedulingpolicy", "CreateSchedulingPolicy"),  # not yet: named
        ("POST", "/v1/submitservicejob", "SubmitServiceJob"),  # refused: named
        ("GET", "/v1/tags/arn%3Aaws%3Abatch%3Alocal%3A0%3Ajob%2Fabc", "ListTagsForResource"),
        ("DELETE", "/v1/tags/arn", "UntagResource"),
        ("GET", "/hpcbatch/v1/nodes", "hpcbatch/nodes"),
        ("POST", "/hpcbatch/v1/nodes/local-1/drain", "hpcbatch/nodes/drain"),
        ("GET", "/hpcbatch/v1/jobs/0b9c-1234/logs", "hpcbatch/jobs/logs"),
        ("GET", "/hpcbatch/v1/jobs/0b9c-1234/anything", "hpcbatch/jobs"),
        ("GET", "/hpcbatch/v1/0b9c-1234", "unknown"),
        ("GET", "/0b9c-1234", "unknown"),
    ],
)
def test_a_request_is_labelled_without_what_the_caller_varies(
    method: str, path: str, label: str
) -> None:
    assert operation_of({"method": method, "path": path}) == label
