"""A real head whose compute environment ``sim`` is a fleet of simulated agents
(bench/simnodes.py), for scale benchmarks and tests (issue 15).

It is ``hpcbatch head`` (``head.app.serve_bound``: the same ``Head``, API app, loop, store,
node supervisor and agent sessions, served by the same HTTP server), with one addition after its start: the compute
environment ``sim`` (MANAGED, kind SSH, its nodes from here rather than from the config) and
the queue ``sim`` on it, and one node per simulated agent, each reached over its Unix socket
by the link every local agent uses. Its own LOCAL nodes are none unless the config says.

    .venv/bin/python -m bench.simhead --data-dir D --listen 127.0.0.1:PORT --fleet FLEETDIR
        --nodes N [--prefix sim] [--config head.toml] [--profile STATS]
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.simnodes import node_names
from hpcbatch.core import events as ev
from hpcbatch.head import logsetup
from hpcbatch.head.app import raise_open_file_limit, serve_bound
from hpcbatch.head.config import HeadConfig, load_config
from hpcbatch.head.listener import bind_listener
from hpcbatch.head.loop import now_ms
from hpcbatch.head.service import Head
from hpcbatch.head.supervisor import NodeSpec
from hpcbatch.metrics.exporter import HeadMetrics
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.local import open_agent_link

SIM = "sim"


class SimHead(Head):
    def __init__(
        self, config: HeadConfig, metrics: HeadMetrics, fleet: Path, names: list[str]
    ) -> None:
        super().__init__(config, metrics)
        self.fleet, self.names = fleet, names

    async def start(self) -> None:
        await super().start()
        if SIM not in self.state.ces:
            await self.loop.call(
                ev.CreateComputeEnvironment(
                    cause="simhead",
                    now=now_ms(),
                    name=SIM,
                    ce_type="MANAGED",
                    kind="SSH",
                    echo={"computeResources": {"type": "SSH"}},
                )
            )
        if SIM not in self.state.queues:
            await self.loop.call(
                ev.CreateJobQueue(
                    cause="simhead", now=now_ms(), name=SIM, priority=1, ce_order=((1, SIM),)
                )
            )
        # connected in the background, as a head's SSH hosts are: it serves meanwhile
        self.nodes.start([NodeSpec(name, SIM, self._sim_connect(name)) for name in self.names])

    def _sim_connect(self, name: str) -> Callable[[], Awaitable[AgentLink]]:
        async def connect() -> AgentLink:
            return await open_agent_link(self.fleet / f"{name}.sock", name, self.head_id)

        return connect


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--fleet", type=Path, required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--prefix", default=SIM)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here at exit")
    args = parser.parse_args()
    logsetup.configure(args.log_level)
    # no /metrics: several benchmark heads may run at once
    config = load_config(args.config, data_dir=args.data_dir, listen=args.listen, metrics_listen="")
    raise_open_file_limit()
    listener = bind_listener(args.listen)
    fleet, names = args.fleet.resolve(), node_names(args.prefix, args.nodes)

    def make_head(config: HeadConfig, metrics: HeadMetrics) -> Head:
        return SimHead(config, metrics, fleet, names)

    if args.profile:
        profile = cProfile.Profile()

        def dump(signum: int, frame: object) -> None:
            # uvicorn re-raises the SIGTERM it shut down on once it has: this handler is the
            # one it then meets, so the stats are written before the process ends.
            profile.disable()
            profile.dump_stats(args.profile)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, dump)
        profile.enable()
    try:
        return serve_bound(config, args.log_level, listener, None, None, make_head)
    finally:
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
