"""The consumable-resource operations (Create/Describe/List/Update/Delete, ListJobsBy...) and
the shapes they answer with, as botocore's model spells them.

Writes go through the loop like every other (``operations``); reads look at the state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hpcbatch.core import events as ev
from hpcbatch.core.consumable_resources import jobs_needing, resolve_resource
from hpcbatch.core.consumables import needs
from hpcbatch.core.model import ConsumableResource, Job
from hpcbatch.core.state import State
from hpcbatch.head.api import models as m
from hpcbatch.head.api import shapes
from hpcbatch.head.api.paging import page
from hpcbatch.head.loop import now_ms

if TYPE_CHECKING:
    from hpcbatch.head.api.operations import Call

Doc = dict[str, Any]


def _summary(resource: ConsumableResource) -> Doc:
    return {
        "consumableResourceArn": resource.arn,
        "consumableResourceName": resource.name,
        "totalQuantity": resource.total,
        "inUseQuantity": resource.in_use,
        "resourceType": resource.resource_type,
    }


def _drop_none(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if v is not None}


def _glob(pattern: str, value: str) -> bool:
    p, v = pattern.lower(), value.lower()
    return v.startswith(p[:-1]) if p.endswith("*") else v == p


async def create(c: Call, r: m.CreateConsumableResourceRequest) -> Doc:
    await c.head.loop.call(
        ev.CreateConsumableResource(
            cause=c.cause,
            now=now_ms(),
            name=r.consumableResourceName,
            total=r.totalQuantity or 0,
            resource_type=r.resourceType or "REPLENISHABLE",
            tags=r.tags or {},
        )
    )
    resource = c.head.state.consumables[r.consumableResourceName]
    return {"consumableResourceName": resource.name, "consumableResourceArn": resource.arn}


async def describe(c: Call, r: m.DescribeConsumableResourceRequest) -> Doc:
    resource = resolve_resource(c.head.state, r.consumableResource)
    return {
        **_summary(resource),
        "availableQuantity": resource.available,
        "createdAt": resource.created_at,
        "tags": resource.tags,
    }


async def list_resources(c: Call, r: m.ListConsumableResourcesRequest) -> Doc:
    found = sorted(c.head.state.consumables.values(), key=lambda x: x.name)
    for f in r.filters or []:
        found = [x for x in found if _glob(f.values[0], x.name)]
    chunk, token = page(found, r.maxResults, r.nextToken)
    return {"consumableResources": [_summary(x) for x in chunk], "nextToken": token}


async def update(c: Call, r: m.UpdateConsumableResourceRequest) -> Doc:
    await c.head.loop.call(
        ev.UpdateConsumableResource(
            cause=c.cause,
            now=now_ms(),
            ref=r.consumableResource,
            operation=r.operation,
            quantity=r.quantity,
            client_token=r.clientToken,
        )
    )
    resource = resolve_resource(c.head.state, r.consumableResource)
    return {
        "consumableResourceName": resource.name,
        "consumableResourceArn": resource.arn,
        "totalQuantity": resource.total,
    }


async def delete(c: Call, r: m.DeleteConsumableResourceRequest) -> Doc:
    await c.head.loop.call(
        ev.DeleteConsumableResource(cause=c.cause, now=now_ms(), ref=r.consumableResource)
    )
    return {}


def _job_summary(state: State, job: Job, name: str, reason: str | None) -> Doc:
    top = state.jobs[job.parent_id] if job.parent_id else job
    need = needs(job)
    return _drop_none(
        {
            "jobArn": state.arn("job", job.job_id),
            "jobQueueArn": state.arn("job-queue", job.queue),
            "jobName": job.name,
            "jobDefinitionArn": job.definition_arn,
            "shareIdentifier": top.echo.get("shareIdentifier"),
            "jobStatus": job.status.value,
            "quantity": need[name],
            "statusReason": reason,
            "startedAt": job.started_at,
            "createdAt": job.created_at,
            "consumableResourceProperties": shapes.resource_properties(need),
        }
    )


async def list_jobs(c: Call, r: m.ListJobsByConsumableResourceRequest) -> Doc:
    state = c.head.state
    resource = resolve_resource(state, r.consumableResource)
    jobs = jobs_needing(state, resource.name)
    for f in r.filters or []:
        value = f.values[0]
        if f.name == "JOB_STATUS":
            jobs = [j for j in jobs if j.status.value == value]
        else:
            jobs = [j for j in jobs if _glob(value, j.name)]
    chunk, token = page(jobs, r.maxResults, r.nextToken)
    reservations = c.head.loop.plan.reservations
    return {
        "jobs": [
            _job_summary(state, j, resource.name, shapes.status_reason(state, j, reservations))
            for j in chunk
        ],
        "nextToken": token,
    }


HANDLERS: dict[str, Callable[[Call, Any], Awaitable[Doc]]] = {
    "CreateConsumableResource": create,
    "DescribeConsumableResource": describe,
    "ListConsumableResources": list_resources,
    "UpdateConsumableResource": update,
    "DeleteConsumableResource": delete,
    "ListJobsByConsumableResource": list_jobs,
}
