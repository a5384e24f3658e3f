"""What a SLURM bridge tells the head of Slurm itself (standard library): its partitions' nodes
as sinfo lists them, and Slurm's own words while it does not answer (slurmctld down), sent as
one ``slurm`` message whenever either changes (protocol.py ``slurm_view``); the head shows the
nodes in ``hpcbatch nodes`` and makes the compute environment INVALID while there is trouble.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import protocol as p
from . import slurmcli
from .agentlog import log
from .slurmcli import SlurmError
from .slurmscript import Target


class PartitionsView:
    def __init__(self) -> None:
        self.trouble: str | None = None  # why Slurm could last not be read
        self.view: p.Message | None = None  # the partitions as the head was last told
        self.on_view: Callable[[p.Message], None] | None = None  # tells the head (server.py)
        self._nodes: list[dict[str, Any]] = []

    def read_nodes(self, run: slurmcli.Run, target: Target) -> None:
        try:
            found = slurmcli.sinfo_nodes(run, target.partitions)
        except SlurmError as error:
            self.troubled(error.message)
            return
        if self.trouble is not None:  # published with the nodes just below
            log("Slurm answers again")
            self.trouble = None
        self._nodes = [
            {
                "name": node.name,
                "state": node.state,
                "cpus": node.cpus,
                "memory_mib": node.memory_mib,
                "partition": node.partition,
            }
            for node in found
        ]
        self._publish()

    def troubled(self, message: str | None) -> None:
        """Slurm did not answer (``message``: what it said), or answers again (None)."""
        if message != self.trouble:
            log(f"Slurm: {message}" if message is not None else "Slurm answers again")
            self.trouble = message
            self._publish()

    def _publish(self) -> None:
        view = p.slurm_view(self._nodes, self.trouble)
        if view != self.view:
            self.view = view
            if self.on_view is not None:
                self.on_view(view)
