"""Whose a job is and whom it runs as: the submitter, unless an admin's definition names a user."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import Caller, JobSpec, MultiNodeSpec, NodeRange
from hpcbatch.errors import AccessDeniedError
from tests.core.sim import Sim

ALICE = Caller("alice", admin=False)
ROOT = Caller("root", admin=True)


def register(sim: Sim, name: str, user: str | None, caller: Caller | None) -> None:
    sim.do(
        ev.RegisterJobDefinition,
        name=name,
        def_type="container",
        spec=JobSpec(command=("true",), user=user),
        caller=caller,
    )


def test_a_job_runs_as_its_submitter_and_its_children_belong_to_them() -> None:
    sim = Sim().cluster()
    parent = sim.submit(array_size=2, caller=ALICE)
    assert (parent.owner, parent.spec.user) == ("alice", "alice")
    children = [sim.state.jobs[f"{parent.job_id}:{i}"] for i in range(2)]
    assert [(c.owner, c.spec.user) for c in children] == [("alice", "alice")] * 2
    sim.restart()
    assert sim.state.jobs[f"{parent.job_id}:1"].owner == "alice"
    (launch,) = [c for c in sim.schedule() if c.attempt_id.startswith(parent.job_id)][:1]
    assert launch.user == "alice"


def test_a_non_admin_definition_naming_root_is_refused_and_not_registered() -> None:
    sim = Sim().cluster()
    with pytest.raises(AccessDeniedError, match="only an admin may run a job as another user"):
        register(sim, "evil", "root", ALICE)
    assert "evil" not in sim.state.definitions
    register(sim, "mine", "alice", ALICE)  # naming yourself is fine


def test_a_non_admin_cannot_submit_an_admins_definition_that_runs_as_root() -> None:
    sim = Sim().cluster()
    register(sim, "as-root", "root", ROOT)
    with pytest.raises(AccessDeniedError, match="containerProperties.user is 'root'"):
        sim.submit(definition="as-root", caller=ALICE)
    assert not sim.state.jobs
    job = sim.submit(definition="as-root", caller=ROOT)
    assert (job.owner, job.spec.user) == ("root", "root")


def test_an_admin_may_run_a_job_as_another_user() -> None:
    sim = Sim().cluster()
    register(sim, "as-alice", "alice", ROOT)
    job = sim.submit(definition="as-alice", caller=ROOT)
    assert (job.owner, job.spec.user) == ("root", "alice")


def test_every_node_of_a_gang_runs_as_its_owner() -> None:
    sim = Sim().cluster(nodes=2)
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang(caller=ALICE)
    nodes = [sim.node(parent, i) for i in range(2)]
    assert [(n.owner, n.spec.user) for n in nodes] == [("alice", "alice")] * 2
    launches = sim.schedule()
    assert launches and {launch.user for launch in launches} == {"alice"}


def test_a_gang_range_naming_root_is_refused_for_a_non_admin() -> None:
    sim = Sim().cluster(nodes=2)
    as_root = JobSpec(command=("true",), user="root")
    shape = MultiNodeSpec(2, 0, (NodeRange(0, 1, as_root),))
    with pytest.raises(AccessDeniedError, match=r"nodeRangeProperties\[0\].container.user"):
        sim.do(
            ev.RegisterJobDefinition,
            name="mnp",
            def_type="multinode",
            spec=JobSpec(command=()),
            multinode=shape,
            caller=ALICE,
        )


def test_only_the_registrant_or_an_admin_deregisters_a_definition() -> None:
    sim = Sim().cluster()
    register(sim, "hers", None, ALICE)
    with pytest.raises(AccessDeniedError, match="registered by alice"):
        sim.do(ev.DeregisterJobDefinition, ref="hers", caller=Caller("bob", admin=False))
    sim.do(ev.DeregisterJobDefinition, ref="hers", caller=ALICE)
    assert sim.state.definitions["hers"][1].status == "INACTIVE"
