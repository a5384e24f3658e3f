"""Requests about tags: TagResource, UntagResource, ListTagsForResource.

Vocabulary: a *taggable resource* is a compute environment, job, job definition, job queue or
scheduling policy, named by its ARN; array children (``job/ID:INDEX``) and multi-node nodes
(``job/ID#NODE``) are not taggable, as on AWS. These operations carry ``resourceArn`` (and, for
UntagResource, ``tagKeys``) in the URL; the router hands them to ``parse_request`` as
``path_params``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from hpcbatch.head.api.models.common import (
    NAME_RE,
    AwsModel,
    TagKeys,
    Tags,
    fail,
    shown,
    split_arn,
)

TAGGABLE_TYPES = ("compute-environment", "job", "job-definition", "job-queue", "scheduling-policy")
_ARN_RULE = (
    "must be the ARN of a compute environment, job, job definition, job queue or scheduling "
    "policy: arn:aws:batch:REGION:ACCOUNT:TYPE/NAME"
)


def _check_taggable_arn(value: str) -> str:
    parts = split_arn(value)
    if parts is None or parts[0] not in TAGGABLE_TYPES:
        fail(f"{_ARN_RULE} {shown(value)}")
    kind, resource_id = parts
    if kind == "job" and (":" in resource_id or "#" in resource_id):
        fail(
            "names a child of an array or multi-node job, which cannot be tagged: tag the "
            f"parent job {shown(value)}"
        )
    name = resource_id.rsplit(":", 1)[0] if kind == "job-definition" else resource_id
    if kind != "job" and not NAME_RE.fullmatch(name):
        fail(f"{_ARN_RULE} {shown(value)}")
    return value


TaggableArn = Annotated[str, AfterValidator(_check_taggable_arn)]


class TagResourceRequest(AwsModel):
    resourceArn: TaggableArn
    tags: Tags


class UntagResourceRequest(AwsModel):
    resourceArn: TaggableArn
    tagKeys: TagKeys


class ListTagsForResourceRequest(AwsModel):
    resourceArn: TaggableArn
