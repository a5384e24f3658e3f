"""Node lifecycle: ONLINE, DRAINING, DRAINED, DOWN — with a reason and the time of the change.

A node that stops answering goes DOWN (``NodeDown``): nothing new is placed there, but its
attempts are held, since they may well be running still; if it comes back its results are
collected. Only when it is declared lost (``NodeLost``, after a longer timeout, or when its agent
cannot be reached at all) do its attempts end as ``Host lost`` and get retried.

A node comes ONLINE when its agent says hello (NodeJoined). An admin drain lets running jobs
finish and places nothing new (DRAINING, then DRAINED when empty); a retiring node
(``retire.py``) drains the same way and then leaves. On hello the head
reconciles: an attempt it placed there that the agent never heard of is relaunched if it never
started, and counted lost if it had been running.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core import gang_life, gpus
from hpcbatch.core.attempts import end_attempt, launch_of
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.model import (
    Attempt,
    Job,
    JobStatus,
    Node,
    NodeState,
    Resources,
    parse_attempt_id,
)
from hpcbatch.core.state import State
from hpcbatch.errors import ConflictError, NotFoundError


def set_state(state: State, node: Node, new: NodeState, reason: str, e: ev.Event) -> None:
    node.state = new
    node.state_reason = reason
    node.state_changed_at = e.now
    state.changes.touch("node", node.name)
    state.journal(e.now, e.cause, node.name, new.value, reason)


def node_joined(state: State, e: ev.NodeJoined) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is None:
        node = Node(name=e.node, ce=e.ce, capacity=e.capacity)
        state.nodes[e.node] = node
    node.capacity = e.capacity
    node.gpus_reason = e.gpus_reason
    node.gpu_isolation = e.gpu_isolation
    node.gpu_isolation_reason = e.gpu_isolation_reason
    node.enforcement = e.enforcement
    node.address = e.address
    node.launch_port = e.launch_port
    node.placement_group = e.placement_group
    node.fabric_env = e.fabric_environment
    node.machine = e.machine
    node.machine_capacity = e.machine_capacity
    node.last_heartbeat = e.now
    state.changes.touch("node", node.name)
    gpus.join(state, node, e.gpus, e.now, e.cause)
    if node.retiring is not None:  # back from DOWN, it goes on draining (core/retire.py)
        if node.state is NodeState.DOWN or node.state_changed_at == 0:
            drained = NodeState.DRAINING if node.attempts else NodeState.DRAINED
            set_state(state, node, drained, node.retiring, e)
    elif node.state in (NodeState.DOWN, NodeState.ONLINE) or node.state_changed_at == 0:
        set_state(state, node, NodeState.ONLINE, "agent connected", e)
    return _reconcile(state, node, set(e.known_attempts), e) + _kills_on_return(state, node, e)


def _live(state: State, node: Node, aid: str) -> tuple[Job, Attempt] | None:
    """The job and attempt behind an id ``node`` holds; None (never an error) for an id that
    names nothing, so no state, however it came about, stops the head's loop."""
    parsed = parse_attempt_id(aid)
    job = state.jobs.get(parsed[0]) if parsed is not None else None
    if job is None or not job.attempts or job.attempts[-1].node != node.name:
        return None
    return job, job.attempts[-1]


def _reconcile(state: State, node: Node, known: set[str], e: ev.Event) -> list[Command]:
    """``known`` is what the agent says it has; only ids ``node`` holds are looked at, so a
    foreign or malformed id in it changes nothing."""
    commands: list[Command] = []
    for aid in sorted(node.attempts - known):
        live = _live(state, node, aid)
        if live is None:
            continue
        job, attempt = live
        if job.status is JobStatus.STARTING and attempt.started_at is None:
            if not gang_life.waits_at_barrier(job):  # a held main node was never sent
                commands.append(launch_of(state, job, attempt, e.cause))
            continue
        reason = f"Host lost: {node.name} has no record of attempt {aid}"
        commands += end_attempt(state, job, attempt, e.cause, e.now, None, reason, e.now)
    return commands


def _kills_on_return(state: State, node: Node, e: ev.NodeJoined) -> list[Command]:
    """What still runs on a returning node but must not: attempts no job owns any more (declared
    lost and retried elsewhere) and attempts whose kill was sent while the node was away."""
    kills: list[Command] = []
    for aid in e.running_attempts:
        if parse_attempt_id(aid) is None:
            continue  # no attempt id: not the head's to kill (the head's filter logs it)
        if aid not in node.attempts:
            reason = "superseded: the head had declared this attempt lost"
        else:
            live = _live(state, node, aid)
            reason = (live[0].kill_reason or "") if live is not None else ""
        if reason:
            kills.append(KillAttempt(cause=e.cause, node=node.name, attempt_id=aid, reason=reason))
    return kills


def node_down(state: State, e: ev.NodeDown) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is not None and node.state is not NodeState.DOWN:
        set_state(state, node, NodeState.DOWN, e.reason, e)
    return []


def node_lost(state: State, e: ev.NodeLost) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is None:
        if e.ce is None or e.ce not in state.ces:
            return []
        node = Node(name=e.node, ce=e.ce, capacity=Resources(), state=NodeState.DOWN)
        state.nodes[e.node] = node
        set_state(state, node, NodeState.DOWN, e.reason, e)
    elif node.state is not NodeState.DOWN or node.state_reason != e.reason:
        set_state(state, node, NodeState.DOWN, e.reason, e)
    commands: list[Command] = []
    for aid in sorted(node.attempts):
        live = _live(state, node, aid) if aid in node.attempts else None
        if live is not None:
            reason = f"Host lost: {node.name}"
            commands += end_attempt(state, *live, e.cause, e.now, None, reason, e.now)
    return commands


def heartbeat(state: State, e: ev.NodeHeartbeat) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is not None:
        node.last_heartbeat = e.now
    return []


def gpus_changed(state: State, e: ev.NodeGpusChanged) -> list[Command]:
    node = state.nodes.get(e.node)
    if node is not None:
        if node.gpus_reason != e.reason:
            node.gpus_reason = e.reason
            state.changes.touch("node", node.name)
        gpus.look(state, node, e.gpus, e.now, e.cause)
    return []


def _node(state: State, name: str) -> Node:
    node = state.nodes.get(name)
    if node is None:
        raise NotFoundError(f"node: no node named {name!r}")
    return node


def drain(state: State, e: ev.DrainNode) -> list[Command]:
    node = _node(state, e.node)
    if node.state is NodeState.DOWN:
        raise ConflictError(f"node: {node.name} is DOWN; only an ONLINE node can be drained")
    new = NodeState.DRAINING if node.attempts else NodeState.DRAINED
    set_state(state, node, new, e.reason or "drained by admin", e)
    return []


def resume(state: State, e: ev.ResumeNode) -> list[Command]:
    node = _node(state, e.node)
    if node.state is NodeState.DOWN:
        raise ConflictError(f"node: {node.name} is DOWN; it comes back when its agent reconnects")
    if node.retiring is not None:
        raise ConflictError(
            f"node: {node.name} is retiring ({node.retiring}); it stays only if its host is "
            "listed in the head's config again"
        )
    set_state(state, node, NodeState.ONLINE, "resumed by admin", e)
    return []
