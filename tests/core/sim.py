"""A tiny driver for the pure core: build a cluster, submit, schedule and play agents."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hpcbatch.core import codec
from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command, KillAttempt, LaunchAttempt
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import (
    Gpu,
    Job,
    JobSpec,
    MultiNodeSpec,
    NodeRange,
    Resources,
    RetryStrategy,
    node_job_id,
)
from hpcbatch.core.plan import Plan
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step


def node_gpus(node: str, count: int) -> tuple[Gpu, ...]:
    """``count`` GPUs with UUID-style ids unique to ``node``: ``GPU-<node>-<index>``."""
    return tuple(Gpu(f"GPU-{node}-{k}", k, "Test GPU", 16384) for k in range(count))


def dump(state: State) -> dict[str, list[dict[str, Any]]]:
    """``state`` as the store keeps it (JSON documents per kind)."""
    docs: dict[str, list[dict[str, Any]]] = {
        "compute_environment": [codec.ce_to_doc(c) for c in state.ces.values()],
        "queue": [codec.queue_to_doc(q) for q in state.queues.values()],
        "quota_share": [codec.quota_share_to_doc(s) for s in state.quota_shares.values()],
        "job_definition": [
            codec.definition_to_doc(d) for r in state.definitions.values() for d in r.values()
        ],
        "node": [codec.node_to_doc(n) for n in state.nodes.values()],
        "job": [codec.job_to_doc(j) for j in state.jobs.values()],
        "user": [codec.user_to_doc(u) for u in state.users.values()],
        "consumable_resource": [codec.consumable_to_doc(r) for r in state.consumables.values()],
        "scheduling_policy": [codec.policy_to_doc(p) for p in state.policies.values()],
        "share_usage": [codec.usage_to_doc(q, s, u) for (q, s), u in state.usage.items()],
        "queue_run_time": [codec.run_time_to_doc(q, r) for q, r in state.run_times.items()],
    }
    loaded: dict[str, list[dict[str, Any]]] = json.loads(json.dumps(docs))
    return loaded


@dataclass
class Sim:
    state: State = field(default_factory=State)
    now: int = 1_000_000
    ids: Any = field(default_factory=lambda: itertools.count(1))
    launched: list[LaunchAttempt] = field(default_factory=list)
    killed: list[KillAttempt] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    gpus_gone: dict[str, set[str]] = field(default_factory=dict)  # node -> GPUs off the bus

    def do(self, event_type: type[ev.Event], **fields: Any) -> list[Command]:
        commands = step(self.state, event_type(cause=f"c{next(self.ids)}", now=self.now, **fields))
        check_invariants(self.state)
        for command in commands:
            if isinstance(command, LaunchAttempt):
                self.launched.append(command)
            elif isinstance(command, KillAttempt):
                self.killed.append(command)
        return commands

    def restart(self) -> None:
        """The head restarts: its state is rebuilt from what the store keeps."""
        restored = State()
        codec.rebuild(restored, dump(self.state))
        check_invariants(restored)
        self.state = restored

    def grouped_cluster(self, groups: list[str | None]) -> Sim:
        """CE "ce" and queue "q" with nodes n0.. (4 vCPUs, 8 GiB each), node i in placement
        group ``groups[i]`` (None: in none)."""
        self.do(ev.CreateComputeEnvironment, name="ce", ce_type="MANAGED", kind="LOCAL")
        for i, group in enumerate(groups):
            self.do(
                ev.NodeJoined,
                node=f"n{i}",
                ce="ce",
                capacity=Resources(4000, 8192),
                placement_group=group,
            )
        self.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "ce"),))
        return self

    def cluster(
        self,
        nodes: int = 2,
        vcpus: int = 4,
        memory: int = 8192,
        gpus: int = 0,
        ce: str = "local",
        queue: str = "q",
        priority: int = 1,
    ) -> Sim:
        if ce not in self.state.ces:
            self.do(ev.CreateComputeEnvironment, name=ce, ce_type="MANAGED", kind="LOCAL")
        for i in range(nodes):
            self.do(
                ev.NodeJoined,
                node=f"{ce}-n{i}",
                ce=ce,
                capacity=Resources(vcpus * 1000, memory, gpus),
                gpus=node_gpus(f"{ce}-n{i}", gpus),
            )
        self.do(ev.CreateJobQueue, name=queue, priority=priority, ce_order=((1, ce),))
        if "d" not in self.state.definitions:
            self.do(
                ev.RegisterJobDefinition,
                name="d",
                def_type="container",
                spec=JobSpec(command=("true",)),
            )
        return self

    def submit(
        self, queue: str = "q", vcpus: int = 1, memory: int = 512, gpus: int = 0, **fields: Any
    ) -> Job:
        job_id = fields.pop("job_id", f"job{next(self.ids)}")
        fields.setdefault("name", "j")
        fields.setdefault("definition", "d")
        self.do(
            ev.SubmitJob,
            job_id=job_id,
            queue=queue,
            cpu_milli=vcpus * 1000,
            memory_mib=memory,
            gpus=gpus,
            **fields,
        )
        return self.state.jobs[job_id]

    def gang_definition(
        self,
        name: str = "mnp",
        nodes: int = 4,
        main_node: int = 0,
        vcpus: int = 1,
        memory: int = 512,
        gpus: int = 0,
        ranges: tuple[NodeRange, ...] | None = None,
    ) -> None:
        """A multinode definition: one open range "0:" running ``mpirun app`` unless given."""
        spec = JobSpec(command=("mpirun", "app"), resources=Resources(vcpus * 1000, memory, gpus))
        shape = MultiNodeSpec(nodes, main_node, ranges or (NodeRange(0, nodes - 1, spec, True),))
        self.do(
            ev.RegisterJobDefinition,
            name=name,
            def_type="multinode",
            spec=JobSpec(command=()),
            multinode=shape,
        )

    def submit_gang(self, definition: str = "mnp", queue: str = "q", **fields: Any) -> Job:
        job_id = fields.pop("job_id", f"gang{next(self.ids)}")
        fields.setdefault("name", "g")
        self.do(ev.SubmitJob, job_id=job_id, queue=queue, definition=definition, **fields)
        return self.state.jobs[job_id]

    def node(self, parent: Job, index: int) -> Job:
        return self.state.jobs[node_job_id(parent.job_id, index)]

    def schedule(self) -> list[LaunchAttempt]:
        plan = schedule(self.state, self.now)
        self.plans.append(plan)
        before = len(self.launched)
        self.do(ev.PlanApplied, plan=plan)
        return self.launched[before:]

    def start(self, launch: LaunchAttempt) -> None:
        self.do(
            ev.AttemptStarted,
            node=launch.node,
            attempt_id=launch.attempt_id,
            started_at=self.now,
            pid=1,
        )

    def rejoin(self, launch: LaunchAttempt, ce: str = "local") -> list[Command]:
        """``launch``'s node says hello again (back from DOWN, or its agent restarted), its
        attempt still running there."""
        return self.do(
            ev.NodeJoined,
            node=launch.node,
            ce=ce,
            capacity=self.state.nodes[launch.node].capacity,
            known_attempts=(launch.attempt_id,),
            running_attempts=(launch.attempt_id,),
        )

    def end(
        self, launch: LaunchAttempt, exit_code: int | None = 0, reason: str | None = None
    ) -> None:
        self.do(
            ev.AttemptEnded,
            node=launch.node,
            attempt_id=launch.attempt_id,
            stopped_at=self.now,
            exit_code=exit_code,
            reason=reason,
        )

    def run_all(self, exit_code: int = 0, rounds: int = 10_000) -> None:
        """Schedule and finish everything, each attempt with ``exit_code``."""
        for _ in range(rounds):
            launches = self.schedule()
            if not launches:
                return
            self.now += 1000
            for launch in launches:
                self.start(launch)
                self.end(launch, exit_code)


def retry(attempts: int, *rules: Any) -> RetryStrategy:
    return RetryStrategy(attempts, tuple(rules))
