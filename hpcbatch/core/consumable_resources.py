"""Step handlers for consumable resources (Create/Update/Delete), and resolving what a job
definition or a submission names to the resources themselves.

A resource is named by its name or its ARN ``...:consumable-resource/<name>``. Every check comes
before any change, so a refused request leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbatch.core import events as ev
from hpcbatch.core.model import TERMINAL, ConsumableResource, Job, JobSpec
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError

LONG_MAX = 2**63 - 1
TOKEN_TTL_MS = 8 * 3600 * 1000  # AWS: "A clientToken is valid for 8 hours"
KIND = "consumable_resource"
LIST_FIELD = "consumableResourceList"


def resource_name(ref: str) -> str:
    if ref.startswith("arn:"):
        head, _, name = ref.partition(":consumable-resource/")
        return name if head and name else ""
    return ref


def resolve_resource(
    state: State, ref: str, field: str = "consumableResource"
) -> ConsumableResource:
    resource = state.consumables.get(resource_name(ref))
    if resource is None:
        raise NotFoundError(f"{field}: no consumable resource {ref!r}")
    return resource


def resolve_needs(
    state: State, wanted: Iterable[tuple[str, int]], field: str
) -> tuple[tuple[str, int], ...]:
    """``(name or ARN, quantity)`` pairs as ``(name, quantity)``, each resource once; an unknown
    resource or a quantity below 1 is a ValidationError naming ``field[i]``."""
    out: dict[str, int] = {}
    for index, (ref, quantity) in enumerate(wanted):
        at = f"{field}[{index}]"
        resource = state.consumables.get(resource_name(ref))
        if resource is None:
            known = ", ".join(sorted(state.consumables)[:10]) or "none yet"
            raise ValidationError(
                f"{at}.consumableResource",
                f"names no consumable resource (got {ref!r}; resources: {known})",
            )
        if not 1 <= quantity <= LONG_MAX:
            raise ValidationError(f"{at}.quantity", f"must be a positive integer (got {quantity})")
        if resource.name in out:
            raise ValidationError(
                f"{at}.consumableResource", f"names {resource.name!r} a second time"
            )
        out[resource.name] = quantity
    return tuple(out.items())


def merge_needs(
    state: State, base: JobSpec, override: tuple[tuple[str, int], ...], field: str
) -> tuple[tuple[str, int], ...]:
    """A definition's needs with a submission's override over them (by resource: the
    override's quantity wins, a resource only the override names is added); every resource
    must still exist."""
    merged = dict(base.consumables)
    for name in merged:
        if name not in state.consumables:
            raise ValidationError(
                "jobDefinition",
                f"needs consumable resource {name!r}, which no longer exists: register a new "
                f"revision or give {field}",
            )
    merged.update(resolve_needs(state, override, f"{field}.{LIST_FIELD}"))
    return tuple(sorted(merged.items()))


def create(state: State, e: ev.CreateConsumableResource) -> None:
    if e.name in state.consumables:
        raise ConflictError(f"consumableResourceName: {e.name!r} already exists")
    if not 0 <= e.total <= LONG_MAX:
        raise ValidationError("totalQuantity", f"must not be negative (got {e.total})")
    if e.resource_type not in ("REPLENISHABLE", "NON_REPLENISHABLE"):
        raise ValidationError(
            "resourceType", f"must be REPLENISHABLE or NON_REPLENISHABLE (got {e.resource_type!r})"
        )
    state.consumables[e.name] = ConsumableResource(
        name=e.name,
        arn=state.arn("consumable-resource", e.name),
        total=e.total,
        resource_type=e.resource_type,
        created_at=e.now,
        tags=dict(e.tags),
    )
    state.changes.touch(KIND, e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", f"{e.resource_type} consumable, {e.total}")


def _new_total(resource: ConsumableResource, operation: str, quantity: int) -> int:
    if quantity < 0:
        raise ValidationError("quantity", f"must not be negative (got {quantity})")
    if operation == "SET":
        total = quantity
    elif operation == "ADD":
        total = resource.total + quantity
    elif operation == "REMOVE":
        total = resource.total - quantity
    else:
        raise ValidationError("operation", f"must be SET, ADD or REMOVE (got {operation!r})")
    if total > LONG_MAX:
        raise ValidationError(
            "quantity",
            f"ADD {quantity} would make totalQuantity {total}, above the 64-bit Long's {LONG_MAX}",
        )
    if total < resource.in_use:
        raise ValidationError(
            "quantity",
            f"{operation} {quantity} would make totalQuantity {total}, below the "
            f"{resource.in_use} of {resource.name!r} in use by running jobs (available would be "
            f"{total - resource.in_use}); wait for them to end or remove at most "
            f"{resource.available}",
        )
    return total


def update(state: State, e: ev.UpdateConsumableResource) -> None:
    resource = resolve_resource(state, e.ref)
    fresh = {t: v for t, v in resource.tokens.items() if e.now - v[2] < TOKEN_TTL_MS}
    if e.client_token is not None and e.client_token in fresh:
        operation, quantity, _ = fresh[e.client_token]
        if (operation, quantity) == (e.operation, e.quantity):
            return  # the same request again: it happened once
        raise ConflictError(
            f"clientToken: {e.client_token!r} was used for {operation} {quantity} on "
            f"{resource.name!r}; a different update needs a new token"
        )
    total = _new_total(resource, e.operation, e.quantity)
    before = resource.total
    resource.total = total
    if e.client_token is not None:
        fresh[e.client_token] = [e.operation, e.quantity, e.now]
    resource.tokens = fresh
    state.changes.touch(KIND, resource.name)
    detail = f"{e.operation} {e.quantity}: total {before} -> {total}"
    state.journal(e.now, e.cause, resource.name, "UPDATED", detail)


def jobs_needing(state: State, name: str) -> list[Job]:
    """Top-level jobs and array children that need ``name``, in submission order (a
    multi-node job counts once, by its parent). O(k) for the k jobs that need it
    (``State.needing``), whatever the other jobs."""
    jobs = state.jobs
    return [jobs[job_id] for _, _, job_id in state.needing.get(name, ())]


def delete(state: State, e: ev.DeleteConsumableResource) -> None:
    resource = resolve_resource(state, e.ref)
    waiting = [j for j in jobs_needing(state, resource.name) if j.status not in TERMINAL]
    if waiting:
        first = waiting[0]
        more = f" and {len(waiting) - 1} more" if len(waiting) > 1 else ""
        raise ConflictError(
            f"consumableResource: {resource.name!r} is needed by job {first.job_id} "
            f"({first.status.value}){more}, not finished; delete it once they end"
        )
    del state.consumables[resource.name]
    state.changes.drop(KIND, resource.name)
    state.journal(e.now, e.cause, resource.name, "DELETED", "")
