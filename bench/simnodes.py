"""A fleet of simulated agents for scale benchmarks and tests (issue 15): ``--nodes`` nodes, all
served by this one process, each on its own Unix socket ``<dir>/<name>.sock``, speaking the
real agent protocol (``hpcbatch.protocol``: the same builders and checks as
``hpcbatch_agent``). A head reaches each with the link it uses for every local agent
(``hpcbatch.transport.local.open_agent_link``) and cannot tell it from a real one:

- hello: the node's capacity and every attempt in its spool (running ones and ended ones the
  head has not acked), so a head that restarts reconciles from it as from a real agent;
- launch: each attempt answers RUNNING at once and EXITED (exit code 0) after a run time drawn
  uniformly from ``--run-ms`` +- ``--spread-ms``; one whose ``timeout_s`` is shorter is killed at
  it (SIGKILL, the timeout reason) as the real agent does; an attempt id it already knows is
  answered with what it knows, never run again;
- kill: a running attempt ends by SIGTERM; ack: ended attempts leave the spool;
- heartbeat every ``--heartbeat-s``; read_log: an empty log;
- flood: a node named in ``<dir>/flood`` (one name a line, read again every heartbeat round)
  sends heartbeats in a tight loop, as a broken agent would, on every connection it has until
  its name is taken out: a head must cut it off and stay responsive (head/flood.py).

Every first launch of an attempt id is appended to ``<dir>/launches.log`` (one id a line) and a
second launch of an id (which must never happen) to ``<dir>/relaunched.log``, so a run can be
checked job by job. SIGTERM stops the fleet (the files flushed); its nodes' links close, as a
real host's would when it goes away.

    .venv/bin/python -m bench.simnodes --dir DIR --nodes 1000 [--vcpus 8] [--memory-mib 32768]
        [--run-ms 1000] [--spread-ms 0] [--heartbeat-s 5] [--prefix sim]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import resource
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hpcbatch_agent.build import build_id

from hpcbatch import protocol

KILL_SIGNAL = 15
TIMEOUT_SIGNAL = 9
FLOOD_CHUNK = 1000  # heartbeats a write: a tight loop that waits only for the socket


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Fleet:
    dir: Path
    vcpus: int
    memory_mib: int
    run_ms: int
    spread_ms: int
    heartbeat_s: float
    launches: IO[str]  # every attempt run, one id a line
    relaunched: IO[str]  # every launch of an attempt already known
    seed: int = 0
    nodes: list[SimNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.build = build_id()

    def run_time_ms(self) -> int:
        low, high = self.run_ms - self.spread_ms, self.run_ms + self.spread_ms
        return max(self.rng.randint(low, high), 0)


class SimNode:
    """One simulated agent: its spool (the latest update of each attempt it knows), the timers
    of its running attempts, and the connection of the head it serves now (one at a time)."""

    def __init__(self, fleet: Fleet, name: str) -> None:
        self.fleet, self.name = fleet, name
        self.spool: dict[str, protocol.AttemptUpdate] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.outbox: list[protocol.AttemptUpdate] = []
        self.pids = itertools.count(100_000)
        self.flooding = False
        self._flood: asyncio.Task[None] | None = None
        self.info: protocol.NodeInfo = {
            "name": name,
            "vcpus": fleet.vcpus,
            "memory_mib": fleet.memory_mib,
            "gpus": [],
            "cgroups": "none",
            "hostname": name,
        }

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One head connection: its hello, ours, then its messages until it goes."""
        line = await reader.readline()
        try:
            hello = protocol.decode(line)
            protocol.check_head_message(hello)
        except protocol.MessageError as exc:
            writer.write(protocol.encode(protocol.error(exc.reason)))
            writer.close()
            return
        if hello["type"] != "hello":
            writer.write(protocol.encode(protocol.error("expected hello")))
            writer.close()
            return
        if self.writer is not None:  # a newer head replaces the old connection, as the agent
            self.writer.close()
        self.writer = writer
        attempts = list(self.spool.values())
        writer.write(protocol.encode(protocol.agent_hello(self.info, attempts, self.fleet.build)))
        self.start_flood()
        try:
            while line := await reader.readline():
                self.handle(protocol.decode(line))
        except (ConnectionError, protocol.MessageError):
            pass
        finally:
            if self.writer is writer:
                self.writer = None
            writer.close()

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "launch":
            for spec in message["attempts"]:
                self.launch(spec)
        elif kind == "kill":
            self.end(message["attempt_id"], None, KILL_SIGNAL, message["reason"])
        elif kind == "ack":
            for aid in message["attempt_ids"]:
                update = self.spool.get(aid)
                if update is not None and protocol.is_final(update):
                    del self.spool[aid]
        elif kind == "read_log":
            aid = message["attempt_id"]
            reply = protocol.log_data(
                message["req"],
                aid,
                "",
                message["offset"],
                aid not in self.timers,
                error=None if aid in self.spool else "no such attempt",
            )
            self.send(reply)

    def launch(self, spec: protocol.AttemptSpec) -> None:
        aid = spec["attempt_id"]
        known = self.spool.get(aid)
        if known is not None:  # never run twice: say what it is
            self.fleet.relaunched.write(aid + "\n")
            self.report(known)
            return
        self.fleet.launches.write(aid + "\n")
        started = now_ms()
        update = protocol.attempt_update(
            aid,
            protocol.RUNNING,
            f"/sim/{self.name}/{aid}.log",
            pid=next(self.pids),
            started_at_ms=started,
        )
        self.report(update)
        run_ms, timeout_s = self.fleet.run_time_ms(), spec.get("timeout_s")
        loop = asyncio.get_running_loop()
        if timeout_s is not None and run_ms > timeout_s * 1000:
            ends = (None, TIMEOUT_SIGNAL, protocol.TIMEOUT_REASON)
            self.timers[aid] = loop.call_later(timeout_s, self.end, aid, *ends)
        else:
            self.timers[aid] = loop.call_later(run_ms / 1000, self.end, aid, 0, None, None)

    def end(self, aid: str, exit_code: int | None, signum: int | None, reason: str | None) -> None:
        timer = self.timers.pop(aid, None)
        running = self.spool.get(aid)
        if timer is None or running is None:
            return  # not running (a kill of an ended attempt changes nothing)
        timer.cancel()
        self.report(
            protocol.attempt_update(
                aid,
                protocol.EXITED,
                running["log_path"],
                pid=running["pid"],
                started_at_ms=running["started_at_ms"],
                stopped_at_ms=now_ms(),
                exit_code=exit_code,
                signal=signum,
                reason=reason,
            )
        )

    def report(self, update: protocol.AttemptUpdate) -> None:
        """Spool the update and send it with the others of this turn of the loop, in one
        ``updates`` message as the agent batches them."""
        self.spool[update["attempt_id"]] = update
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(update)

    def flush(self) -> None:
        items, self.outbox = self.outbox, []
        if items:
            self.send(protocol.updates(items))

    def send(self, message: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(protocol.encode(message))

    def heartbeat(self) -> None:
        self.send(protocol.heartbeat(now_ms(), len(self.timers)))

    def set_flooding(self, flooding: bool) -> None:
        self.flooding = flooding
        self.start_flood()

    def start_flood(self) -> None:
        """Flood the connection of now, if this node floods and is not flooding it already."""
        if not self.flooding or self.writer is None:
            return
        if self._flood is None or self._flood.done():
            self._flood = asyncio.get_running_loop().create_task(self.flood(self.writer))

    async def flood(self, writer: asyncio.StreamWriter) -> None:
        """Heartbeats in a tight loop on one connection until the head hangs up (or the node
        is told to stop)."""
        chunk = protocol.encode(protocol.heartbeat(now_ms(), len(self.timers))) * FLOOD_CHUNK
        with contextlib.suppress(ConnectionError, OSError):
            while self.flooding and self.writer is writer and not writer.is_closing():
                writer.write(chunk)
                await writer.drain()


def flooding_names(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except FileNotFoundError:
        return set()


async def serve_fleet(fleet: Fleet, names: list[str], stop: asyncio.Event) -> None:
    fleet.dir.mkdir(parents=True, exist_ok=True)
    servers = []
    for name in names:
        node = SimNode(fleet, name)
        fleet.nodes.append(node)
        path = fleet.dir / f"{name}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        servers.append(await asyncio.start_unix_server(node.serve, path=str(path)))
    (fleet.dir / "ready").write_text(f"{os.getpid()}\n")
    beat = max(fleet.heartbeat_s / max(len(names), 1), 0.0005)
    while not stop.is_set():  # heartbeats spread evenly over the interval
        fleet.launches.flush()
        fleet.relaunched.flush()
        flooding = flooding_names(fleet.dir / "flood")
        for node in fleet.nodes:
            node.set_flooding(node.name in flooding)
        for node in fleet.nodes:
            node.heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), beat)
            if stop.is_set():
                break
    for server in servers:
        server.close()


def node_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i + 1}" for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--prefix", default="sim")
    parser.add_argument("--vcpus", type=int, default=8)
    parser.add_argument("--memory-mib", type=int, default=32768)
    parser.add_argument("--run-ms", type=int, default=1000)
    parser.add_argument("--spread-ms", type=int, default=0)
    parser.add_argument("--heartbeat-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # two sockets a node
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.nodes + 256)), hard))
    args.dir.mkdir(parents=True, exist_ok=True)
    with (
        open(args.dir / "launches.log", "a") as launches,
        open(args.dir / "relaunched.log", "a") as relaunched,
    ):
        fleet = Fleet(
            args.dir,
            args.vcpus,
            args.memory_mib,
            args.run_ms,
            args.spread_ms,
            args.heartbeat_s,
            launches,
            relaunched,
            args.seed,
        )

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await serve_fleet(fleet, node_names(args.prefix, args.nodes), stop)

        asyncio.run(run())


if __name__ == "__main__":
    main()
