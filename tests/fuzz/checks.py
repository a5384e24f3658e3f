"""What every fuzzed request must leave true, and the in-process head each fuzz module uses.

``check_answer`` sends one request and asserts: the answer is below 500; an error answer has
AWS's shape (``__type`` and ``message`` only, the same type in ``x-amzn-ErrorType``); a refused
request changed nothing the head lists (``listed``); the core's invariants hold after it.
When a module is done, the state its head's store holds, read back as a restarted head reads
it, must equal the state the head had (``durable``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.state import State
from hpcbatch.head.persist import load_state
from hpcbatch.store import SqliteStore
from tests.fuzz.inprocess import InProcessHead, Response
from tests.fuzz.wire import Request


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHead]:
    process = InProcessHead(tmp_path_factory.mktemp("fuzz-head"))
    try:
        yield process
    finally:
        process.close()
    kept = durable(process.head.state)  # as the stopped head left it in memory
    config = process.head.config
    store = SqliteStore(config.data_dir / "state.db")
    try:
        reloaded = load_state(store, config.stored_region, config.account)
    finally:
        store.close()
    assert durable(reloaded) == kept, "what the store holds is not what the head had"


def durable(state: State) -> tuple[Any, ...]:
    """What a restarted head must find as the fuzzed one left it: nothing lost, nothing made up
    (nodes excepted: their agents report them afresh)."""
    return (
        frozenset((j.job_id, j.status, len(j.attempts)) for j in state.jobs.values()),
        frozenset(
            (q.name, q.state, q.priority, tuple(q.ce_order), tuple(sorted(q.tags.items())))
            for q in state.queues.values()
        ),
        frozenset((c.name, c.state, tuple(sorted(c.tags.items()))) for c in state.ces.values()),
        frozenset((d.arn, d.status) for revs in state.definitions.values() for d in revs.values()),
        frozenset(
            (u.name, k.key_id, k.active) for u in state.users.values() for k in u.keys.values()
        ),
    )


def listed(head: InProcessHead) -> tuple[Any, ...]:
    """What the head lists: a refused request must leave every one of these as it was."""
    state = head.head.state
    return (
        frozenset(state.jobs),
        frozenset((q.name, q.state, q.priority) for q in state.queues.values()),
        frozenset((c.name, c.state) for c in state.ces.values()),
        frozenset(d.arn for revs in state.definitions.values() for d in revs.values()),
        frozenset((n.name, n.state) for n in state.nodes.values()),
        frozenset(
            (u.name, k.key_id, k.active) for u in state.users.values() for k in u.keys.values()
        ),
    )


def check_answer(
    head: InProcessHead, request: Request, before: tuple[Any, ...], admin: bool = True
) -> Response:
    response = head.send(request, admin)
    shown = f"{request.method} {request.path}?{request.query} {request.body[:300]!r}"
    assert response.status < 500, f"{response.status} {response.body[:500]!r} for {shown}"
    if response.status >= 400:
        error = response.json()
        assert set(error) == {"__type", "message"}, f"{error} for {shown}"
        assert isinstance(error["message"], str) and error["message"]
        assert response.headers["x-amzn-errortype"] == error["__type"]
        assert listed(head) == before, f"a refused request changed the head: {shown}"
    head.settle()
    check_invariants(head.head.state)
    return response
