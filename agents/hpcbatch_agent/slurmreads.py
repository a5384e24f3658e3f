"""How the SLURM bridge reads Slurm: its queue each poll (through pyslurm where it imports and
matches the cluster, slurmlib.py, else the CLI), how the jobs that left it ended (the CLI:
sacct or scontrol), and what the cluster offers (accounting, srun's MPI types).

Vocabulary:
    ended      how jobs ended: one ``sacct`` for them all where Slurm keeps accounting
               (slurmdbd, asked once), else nothing here (the bridge asks scontrol).
    mpi type   ``pmix`` where ``srun --mpi=list`` has it, else None (the cluster's own
               ``MpiDefault``): how a multi-node job's srun starts its tasks (asked once).
Standard library (pyslurm where present).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import slurmcli, slurmlib
from .agentlog import log
from .slurmcli import SlurmError, SlurmJob


class SlurmReads:
    def __init__(self, run: slurmcli.Run) -> None:
        self.run = run
        choice = os.environ.get(slurmlib.API_VAR, "auto")
        self.reader, how = slurmlib.load(run, choice)  # pyslurm where it matches, else the CLI
        log(f"reading Slurm through {how}")
        self.accounting: bool | None = None  # Slurm keeps it in slurmdbd (None: not asked yet)
        self._mpi: tuple[str | None] | None = None  # asked once (None: not yet)

    def queue(self) -> list[SlurmJob]:
        return self.reader.queue() if self.reader else slurmcli.squeue(self.run)

    def show_job(self, slurm_id: str) -> list[SlurmJob]:
        return slurmcli.show_job(self.run, slurm_id)  # never pyslurm's exit codes (slurmlib)

    def show_jobs(self) -> list[SlurmJob]:
        return slurmcli.show_jobs(self.run)

    def ended(self, slurm_ids: Sequence[str]) -> dict[str, SlurmJob]:
        """The ends that Slurm's accounting holds of these jobs, where Slurm keeps it."""
        if self.accounting is None:
            reader = self.reader
            self.accounting = reader.accounting() if reader else slurmcli.accounting(self.run)
            log(f"Slurm accounting: {'slurmdbd (sacct)' if self.accounting else 'none'}")
        if not self.accounting:
            return {}
        found = slurmcli.accounted(self.run, sorted(set(slurm_ids)))
        return {job.slurm_id: job for job in found if not job.active}

    def mpi_type(self) -> str | None:
        """``pmix`` where this cluster's srun has it, else None (its own ``MpiDefault``)."""
        if self._mpi is None:
            try:
                self._mpi = ("pmix" if "pmix" in slurmcli.mpi_types(self.run) else None,)
            except SlurmError as error:
                log(f"srun --mpi=list: {error.message}")
                self._mpi = (None,)
        return self._mpi[0]
