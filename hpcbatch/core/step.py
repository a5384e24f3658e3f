"""``step(state, event) -> commands``: the only way the head's state changes.

Handlers check before they change, so an event refused with ``ClientError`` leaves the state as
it was. Commands come back for the loop to dispatch after it has persisted ``state.changes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpcbatch.core import (
    attempts,
    consumable_resources,
    control,
    nodes,
    overdue,
    policies,
    quota_shares,
    resources,
    retire,
    submit,
    time_limits,
    users,
)
from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command
from hpcbatch.core.state import State


def _quiet(handler: Callable[[State, Any], object]) -> Callable[[State, Any], list[Command]]:
    def run(state: State, event: Any) -> list[Command]:
        handler(state, event)
        return []

    return run


def _tick(state: State, e: ev.Tick) -> list[Command]:
    commands = overdue.kill_overdue(state, e)
    control.purge_finished(state, e)
    resources.finish_deletions(state, e)
    time_limits.enforce(state, e.cause, e.now)
    return commands


def _pool_hosts(state: State, e: ev.PoolHostsKnown) -> list[Command]:
    state.pool_hosts = dict(e.pools)
    return []


HANDLERS: dict[type[ev.Event], Callable[[State, Any], list[Command]]] = {
    ev.CreateComputeEnvironment: _quiet(resources.create_ce),
    ev.UpdateComputeEnvironment: _quiet(resources.update_ce),
    ev.DeleteComputeEnvironment: resources.delete_ce,
    ev.CreateJobQueue: _quiet(resources.create_queue),
    ev.UpdateJobQueue: _quiet(resources.update_queue),
    ev.DeleteJobQueue: _quiet(resources.delete_queue),
    ev.CreateQuotaShare: _quiet(quota_shares.create_share),
    ev.UpdateQuotaShare: _quiet(quota_shares.update_share),
    ev.DeleteQuotaShare: _quiet(quota_shares.delete_share),
    ev.CreateSchedulingPolicy: _quiet(policies.create_policy),
    ev.UpdateSchedulingPolicy: _quiet(policies.update_policy),
    ev.DeleteSchedulingPolicy: _quiet(policies.delete_policy),
    ev.RegisterJobDefinition: _quiet(resources.register_definition),
    ev.DeregisterJobDefinition: _quiet(resources.deregister_definition),
    ev.TagResource: _quiet(resources.tag_resource),
    ev.UntagResource: _quiet(resources.untag_resource),
    ev.CreateConsumableResource: _quiet(consumable_resources.create),
    ev.UpdateConsumableResource: _quiet(consumable_resources.update),
    ev.DeleteConsumableResource: _quiet(consumable_resources.delete),
    ev.SubmitJob: _quiet(submit.submit_job),
    ev.CancelJob: control.cancel,
    ev.TerminateJob: control.terminate,
    ev.NodeJoined: nodes.node_joined,
    ev.NodeHeartbeat: nodes.heartbeat,
    ev.PoolHostsKnown: _pool_hosts,
    ev.NodeGpusChanged: nodes.gpus_changed,
    ev.NodeDown: nodes.node_down,
    ev.NodeLost: nodes.node_lost,
    ev.DrainNode: nodes.drain,
    ev.ResumeNode: nodes.resume,
    ev.RetireNode: retire.retire,
    ev.KeepNode: retire.keep,
    ev.RemoveNode: retire.remove,
    ev.AttemptStarted: attempts.attempt_started,
    ev.AttemptQueued: attempts.attempt_queued,
    ev.AttemptEnded: attempts.attempt_ended,
    ev.PlanApplied: attempts.apply_plan,
    ev.Tick: _tick,
    ev.AddUser: _quiet(users.add_user),
    ev.AddAccessKey: _quiet(users.add_key),
    ev.SetAccessKeyActive: _quiet(users.set_key_active),
    ev.RemoveUser: _quiet(users.remove_user),
}


def step(state: State, event: ev.Event) -> list[Command]:
    return HANDLERS[type(event)](state, event)
