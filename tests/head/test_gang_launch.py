"""A gang's launch as the head sends it, through the loop, real sessions and MockAgentLink:
every node carries the gang's launch key (HMAC of the head's secret and the gang try, the
same on every node of one try, never in the state or the store), its node's address from the
config's profile, the peers' launch ports from the hellos, and its CE's fabric."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

from hpcbatch.core import codec
from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, JobStatus, MultiNodeSpec, NodeRange, Resources
from hpcbatch.core.state import State
from hpcbatch.head.agents import AgentSession, NodeProfile
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.launch_keys import LaunchKeys
from hpcbatch.head.loop import HeadLoop
from hpcbatch.store import MemoryStore
from hpcbatch.transport.mock import MockAgentLink

DEADLINE_S = 10.0
FABRIC = (("HPCBATCH_FABRIC", "tcp"), ("OMPI_MCA_btl_tcp_if_include", "lo"))


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _setup_events() -> list[ev.Event]:
    node = JobSpec(command=("env",), resources=Resources(1000, 512))
    return [
        ev.CreateComputeEnvironment(cause="c", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"),
        ev.CreateJobQueue(cause="c", now=1, name="q", priority=1, ce_order=((1, "ce"),)),
        ev.RegisterJobDefinition(
            cause="c",
            now=1,
            name="mnp",
            def_type="multinode",
            spec=JobSpec(command=()),
            multinode=MultiNodeSpec(2, 0, (NodeRange(0, 1, node, True),)),
        ),
    ]


def test_each_node_s_launch_carries_the_gang_key_its_address_peers_and_fabric() -> None:
    async def scenario() -> None:
        keys = LaunchKeys()
        dispatcher = Dispatcher(keys)
        store = MemoryStore()
        loop = HeadLoop(State(), store, dispatcher)
        loop.start()
        for event in _setup_events():
            await loop.call(event)
        links, tasks = [], []
        for i in range(2):
            name = f"local-{i + 1}"
            link = MockAgentLink(name, vcpus=2)
            link.hello["node"]["launch_port"] = 7001 + i
            profile = NodeProfile(f"127.0.0.{i + 2}", None, FABRIC)
            session = AgentSession(name, "ce", link, loop, profile)
            dispatcher.sessions[name] = session
            tasks.append(asyncio.get_running_loop().create_task(session.run()))
            links.append(link)
        await until(lambda: len(loop.state.nodes) == 2)
        await loop.call(
            ev.SubmitJob(cause="s", now=1, job_id="g", name="g", queue="q", definition="mnp")
        )
        await until(lambda: sum(len(link.launched) for link in links) == 2)
        specs = {a: s for link in links for a, s in link.launched.items()}
        key = keys.key_for("g/1")
        assert re.fullmatch(r"[0-9a-f]{64}", key)
        assert {s.get("launch_key") for s in specs.values()} == {key}
        where = {s["env"]["AWS_BATCH_JOB_NODE_INDEX"]: s["env"] for s in specs.values()}
        node_of = [loop.state.jobs[f"g#{i}"].attempts[-1].node for i in range(2)]
        address = {"local-1": "127.0.0.2", "local-2": "127.0.0.3"}
        port = {"local-1": 7001, "local-2": 7002}
        for env in where.values():
            assert env["HPCBATCH_HOSTS"] == ",".join(f"{address[n]}:2" for n in node_of)
            assert env["HPCBATCH_LAUNCH_PEERS"] == ",".join(
                f"{address[n]}={port[n]}" for n in node_of
            )
            assert env["HPCBATCH_MAIN_NODE"] == address[node_of[0]]
            assert env["OMPI_MCA_btl_tcp_if_include"] == "lo"
        assert loop.state.jobs["g"].status in (JobStatus.STARTING, JobStatus.RUNNING)
        # The key is derived at send time: not in the state, its documents or the journal.
        docs = [codec.job_to_doc(j) for j in loop.state.jobs.values()]
        docs += [codec.node_to_doc(n) for n in loop.state.nodes.values()]
        assert key not in json.dumps(docs) and key not in repr(store.__dict__)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await loop.stop()

    asyncio.run(scenario())


def test_an_ordinary_job_s_launch_has_no_key_and_a_bad_launch_port_is_ignored() -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher()
        loop = HeadLoop(State(), MemoryStore(), dispatcher)
        loop.start()
        for event in _setup_events():
            await loop.call(event)
        await loop.call(
            ev.RegisterJobDefinition(
                cause="c", now=1, name="d", def_type="container", spec=JobSpec(("true",))
            )
        )
        link = MockAgentLink("n1")
        link.hello["node"]["launch_port"] = 70000  # no TCP port: the node takes no launches
        session = AgentSession("n1", "ce", link, loop)
        dispatcher.sessions["n1"] = session
        task = asyncio.get_running_loop().create_task(session.run())
        await until(lambda: "n1" in loop.state.nodes)
        assert loop.state.nodes["n1"].launch_port is None
        await loop.call(
            ev.SubmitJob(cause="s", now=1, job_id="j", name="j", queue="q", definition="d")
        )
        await until(lambda: len(link.launched) == 1)
        (spec,) = link.launched.values()
        assert "launch_key" not in spec and "HPCBATCH_HOSTS" not in spec["env"]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await loop.stop()

    asyncio.run(scenario())
