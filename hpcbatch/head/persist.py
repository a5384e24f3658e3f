"""Turn what the core changed (``state.changes``) into one store batch, and load state back.

Keys: jobs by id, queues, CEs, scheduling policies, API users and consumable resources by name,
definitions by ``name:revision``, nodes by name, share usage by ``queue/share``, quota shares by
``queue/name``, a fair-share queue's typical run time by queue name.
"""

from __future__ import annotations

import gc
import json
import json.scanner
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from hpcbatch.core import codec
from hpcbatch.core.state import State
from hpcbatch.errors import StoreError
from hpcbatch.store import JournalEntry, Store, WriteBatch

KINDS = (
    "compute_environment",
    "scheduling_policy",
    "queue",
    "quota_share",
    "job_definition",
    "node",
    "job",
    "user",
    "consumable_resource",
    "share_usage",
    "queue_run_time",
)


def _lookup(state: State, kind: str, key: str) -> dict[str, Any] | None:
    if kind == "job":
        job = state.jobs.get(key)
        return None if job is None else codec.job_to_doc(job)
    if kind == "queue":
        queue = state.queues.get(key)
        return None if queue is None else codec.queue_to_doc(queue)
    if kind == "quota_share":
        share = state.quota_shares.get(key)
        return None if share is None else codec.quota_share_to_doc(share)
    if kind == "compute_environment":
        ce = state.ces.get(key)
        return None if ce is None else codec.ce_to_doc(ce)
    if kind == "user":
        user = state.users.get(key)
        return None if user is None else codec.user_to_doc(user)
    if kind == "consumable_resource":
        resource = state.consumables.get(key)
        return None if resource is None else codec.consumable_to_doc(resource)
    if kind == "scheduling_policy":
        policy = state.policies.get(key)
        return None if policy is None else codec.policy_to_doc(policy)
    if kind == "share_usage":
        queue_name, _, share_name = key.partition("/")
        usage = state.usage.get((queue_name, share_name))
        return None if usage is None else codec.usage_to_doc(queue_name, share_name, usage)
    if kind == "queue_run_time":
        run = state.run_times.get(key)
        return None if run is None else codec.run_time_to_doc(key, run)
    if kind == "node":
        node = state.nodes.get(key)
        return None if node is None else codec.node_to_doc(node)
    name, _, revision = key.partition(":")
    definition = state.definitions.get(name, {}).get(int(revision))
    return None if definition is None else codec.definition_to_doc(definition)


_JSON: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


def encode_doc(doc: dict[str, Any]) -> str:
    """A document as compact JSON text. orjson writes it ~10x faster than ``json`` (three
    documents a job: ~10 % of the head's CPU at 5,000 jobs/s, docs/benchmarks.md "Issue 15");
    what it refuses (an int past 64 bits, a lone surrogate in a string) ``json`` writes. No
    NaN reaches a document (the API refuses JSON constants), the one value they would differ on.
    """
    try:
        return orjson.dumps(doc).decode()
    except TypeError:
        return _JSON(doc)


def drain_changes(state: State) -> WriteBatch:
    """Everything changed since the last drain, as one batch; ``state.changes`` is emptied."""
    changes = state.changes
    batch = WriteBatch()
    for kind, keys in changes.dirty.items():
        for key in keys:
            doc = _lookup(state, kind, key)
            if doc is not None:
                batch.upserts.append((kind, key, encode_doc(doc)))
    for kind, keys in changes.deleted.items():
        batch.deletes.extend((kind, key) for key in keys)
    batch.journal = [
        JournalEntry(j.time, j.cause, j.subject, j.event, j.detail) for j in changes.journal
    ]
    changes.dirty.clear()
    changes.deleted.clear()
    changes.journal.clear()
    return batch


def load_state(store: Store, region: str, account: str) -> State:
    """The state the store holds. Job documents are decoded one at a time, in key order (an
    array's parent before its children), and the collector is off meanwhile: a million jobs
    are millions of new objects, and its passes over them took half the load time
    (docs/benchmarks.md "Issue 15")."""
    state = State(region=region, account=account)
    collecting = gc.isenabled()
    gc.disable()
    try:
        docs = {k: [json.loads(doc) for _, doc in store.load(k)] for k in KINDS if k != "job"}
        codec.rebuild(state, docs, _job_docs(store))
    finally:
        if collecting:
            gc.enable()
    return state


def _job_docs(store: Store) -> Iterator[dict[str, Any]]:
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
    for doc in store.scan("job"):
        try:
            yield scan(doc, 0)[0]  # json.loads less its wrappers: a million calls
        except (StopIteration, ValueError):
            raise StoreError(f"a stored job document is not JSON: {doc[:80]!r}") from None
