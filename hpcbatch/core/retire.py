"""Retiring nodes: a node that leaves for good without losing a job.

Vocabulary: a **retiring** node (``Node.retiring`` holds why, e.g. "removed from the head's
config") is drained for good. ``RetireNode`` marks it and drains it (DRAINING while it holds
attempts, DRAINED when empty; a DOWN node stays DOWN under the usual rules and drains when its
agent comes back, ``nodes.node_joined``). Nothing new is placed there and an admin cannot resume
it, so its running attempts end as they would have anyway: their results are collected, nothing
is retried on their account. ``KeepNode`` takes it back (ONLINE again when it was draining only
because it was retiring). ``RemoveNode`` takes a node out of the state, and so out of its
compute environment (a node belongs to the CE it names); it is refused while the node holds an
attempt, so a removal never loses a job.

Who decides when is the head (``head/retire.py``): it retires the hosts its config no longer
lists, and removes each once it holds no attempt.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command
from hpcbatch.core.model import NodeState
from hpcbatch.core.nodes import set_state
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError


def retire(state: State, e: ev.RetireNode) -> list[Command]:
    """Mark and drain ``e.node``; a node the head never saw has nothing to drain."""
    node = state.nodes.get(e.node)
    if node is None or node.retiring == e.reason:
        return []
    node.retiring = e.reason
    state.changes.touch("node", node.name)
    state.journal(e.now, e.cause, node.name, "RETIRING", e.reason)
    if node.state is not NodeState.DOWN:
        drained = NodeState.DRAINING if node.attempts else NodeState.DRAINED
        set_state(state, node, drained, e.reason, e)
    return []


def keep(state: State, e: ev.KeepNode) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is None or node.retiring is None:
        return []
    node.retiring = None
    state.changes.touch("node", node.name)
    state.journal(e.now, e.cause, node.name, "KEPT", e.reason)
    if node.state in (NodeState.DRAINING, NodeState.DRAINED):
        set_state(state, node, NodeState.ONLINE, e.reason, e)
    return []


def remove(state: State, e: ev.RemoveNode) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is None:
        return []  # already gone: removing twice is harmless
    if node.attempts:
        held = ", ".join(sorted(node.attempts))
        raise ConflictError(f"node: {node.name} still holds attempts ({held}); it stays")
    del state.nodes[node.name]
    state.changes.drop("node", node.name)
    state.journal(e.now, e.cause, node.name, "REMOVED", f"from {node.ce}: {e.reason}")
    return []
