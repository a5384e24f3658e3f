"""Agents run the head's build: a hello from another build gets its agent replaced, once.

Vocabulary:
    build     an agent's build id, ``<AGENT_VERSION>-<12 hex>`` over its source
              (``hpcbatch_agent.build``). The head's is that of the agent package beside it:
              the zipapp it ships to SSH hosts is named by it, and a LOCAL agent started
              from that package reports the same one. An agent reports its own in its hello
              (``agent_build``); an agent older than that field reports none.
    stale     an agent whose hello names another build than the head's, or none. Today's
              agent may still be listening after the head was upgraded: without this, it
              would keep serving the old code.
    replace   stop the stale agent, leaving its jobs running (its keeper records how each
              ends), and connect again, which starts the head's build on the same state
              dir; the new agent adopts the jobs as on any agent restart (keeper.py,
              jobs.scan_claims). Over SSH the stop runs ``<pyz> stop`` on the host; for a
              LOCAL node, ``stop_local_agent`` here.
    one try   a node is replaced at most once for one (head build, stale build) pair: when
              the new agent is stale too (or the old one does not stop), the connect fails
              with why (the node shows it as its reason), and later connects finding that
              same stale build refuse it at once instead of replacing it again. A head of
              another build, or an agent of yet another build, gets one try of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from hpcbatch.errors import TransportError

log = logging.getLogger("hpcbatch.transport.upgrade")


class _Greeted(Protocol):
    hello: dict[str, Any]

    async def close(self) -> None: ...


L = TypeVar("L", bound=_Greeted)


def hello_build(hello: dict[str, Any]) -> str | None:
    """The build an agent's hello reports; None for an agent older than the field."""
    build = hello.get("agent_build")
    return build if isinstance(build, str) else None


def stale_reason(hello: dict[str, Any], expected: str) -> str | None:
    """None when the hello's agent is the head's build ``expected``; else how it differs."""
    build = hello_build(hello)
    if build == expected:
        return None
    if build is None:
        version = hello.get("agent_version", "?")
        return f"its agent ({version}) reports no build, this head's is {expected}"
    return f"its agent is build {build}, this head's is {expected}"


@dataclass(frozen=True)
class FailedTry:
    """A replacement that did not give the head's build: for ``expected``, the agent then
    reported ``seen``; ``reason`` is what the node shows."""

    expected: str
    seen: str | None
    reason: str


@dataclass(frozen=True)
class Decision:
    action: Literal["serve", "replace", "refuse"]
    reason: str | None = None  # replace: how the agent is stale; refuse: the failed try's


def decide(hello: dict[str, Any], expected: str, failed: FailedTry | None) -> Decision:
    """Serve an agent of the head's build; replace a stale one, unless replacing this very
    build already failed for this head's build, which is then refused with that reason."""
    stale = stale_reason(hello, expected)
    if stale is None:
        return Decision("serve")
    if failed is not None and failed.expected == expected and failed.seen == hello_build(hello):
        return Decision("refuse", failed.reason)
    return Decision("replace", stale)


class ReplaceTries:
    """The failed try of each agent (keyed by where it runs: a state dir, a host's)."""

    def __init__(self) -> None:
        self._failed: dict[str, FailedTry] = {}

    def get(self, key: str) -> FailedTry | None:
        return self._failed.get(key)

    def fail(self, key: str, attempt: FailedTry) -> None:
        self._failed[key] = attempt

    def forget(self, key: str) -> None:
        self._failed.pop(key, None)


TRIES = ReplaceTries()  # the head's own: one process, one memory of what failed


def still_stale(old: str, new: str) -> str:
    return (
        f"replaced a stale agent ({old}) once, but the new one is stale too ({new}); not "
        "replacing it again: stop the agent on its host to let the head start its own"
    )


async def connect_current(
    node: str,
    key: str,
    expected: str,
    connect: Callable[[bool], Awaitable[L]],
    tries: ReplaceTries = TRIES,
) -> L:
    """A greeted link to an agent of the head's build ``expected``.

    ``connect(replacing)`` makes one link: with ``replacing`` True it first stops the
    agent running there (its jobs kept) so that the head's build starts. TransportError
    when the agent is stale and one try (see the module's docstring) did not help."""
    link = await connect(False)
    decision = decide(link.hello, expected, tries.get(key))
    if decision.action == "serve":
        tries.forget(key)
        return link
    await link.close()
    if decision.action == "refuse":
        raise TransportError(f"node {node}: {decision.reason}")
    old = hello_build(link.hello)
    log.info("node %s: %s: replacing it (its jobs keep running)", node, decision.reason)
    try:
        link = await connect(True)
    except TransportError as error:
        detail = error.message.removeprefix(f"node {node}: ")
        reason = f"cannot replace a stale agent ({decision.reason}): {detail}"
        tries.fail(key, FailedTry(expected, old, reason))
        raise TransportError(f"node {node}: {reason}") from None
    stale = stale_reason(link.hello, expected)
    if stale is None:
        tries.forget(key)
        log.info("node %s: its agent now runs this head's build %s", node, expected)
        return link
    await link.close()
    reason = still_stale(str(decision.reason), stale)
    tries.fail(key, FailedTry(expected, hello_build(link.hello), reason))
    raise TransportError(f"node {node}: {reason}")
