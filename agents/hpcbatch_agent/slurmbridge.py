"""The SLURM bridge: an agent whose attempts run as Slurm jobs (docs/slurm.md). It takes the
runner's place in the agent's loop (server.py): the head sends it launches, kills and acks as
to any agent and hears back the same updates, so queues, retries, dependencies and
explanations work unchanged in front of Slurm.

Vocabulary:
    submit     one ``sbatch`` per attempt (slurmscript.py), its intent journaled first and
               its Slurm id journaled as the attempt's start record once sbatch answers.
               A refusal (a partition that does not exist, an account or QOS Slurm refuses,
               sbatch missing) fails the attempt to start with Slurm's own words.
    queued     submitted, not yet running: reported as QUEUED with Slurm's pending reason
               (``waiting in Slurm partition batch: Priority``), again when it changes.
    poll       every ``poll_s`` while anything is in flight: one ``squeue`` for all jobs;
               a job it lists as running is reported RUNNING (Slurm's StartTime); a job it no
               longer lists has ended, and one ``sacct`` for all of them says how (state, exit
               code, times) where Slurm keeps accounting, else ``scontrol show job`` while
               Slurm remembers it (``MinJobAge``).
    outcome    COMPLETED/FAILED: the script's exit status or signal; TIMEOUT: the timeout
               reason; NODE_FAIL: ``Host lost`` (the head retries it as a host loss);
               OUT_OF_MEMORY: the OOM reason; CANCELLED by hpcbatch: the kill's reason, by
               anyone else: said so; forgotten by Slurm: lost.
    kill       ``scancel`` (a pending job leaves the queue, a running one is signalled);
               resent each poll until Slurm takes it. A timeout is hpcbatch's own: the
               bridge cancels a job once its start plus timeout is due; ``--time`` is only
               the backstop.
    recovery   at start, the spool's attempts in flight are tracked again by their Slurm
               id; one whose submission was interrupted (an intent without an id) is looked
               for by its job name in squeue and in ``scontrol show job``: found, it is
               tracked; not found, it was never submitted and fails to start.

Standard library only: the bridge may run on a login node with a bare Python.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import protocol as p
from . import slurmarrays, slurmcli, slurmgangs, slurmlib
from .agentlog import log
from .forkexec import LOG_FLAGS, LOG_MODE
from .runner import now_ms
from .slurmarrays import ArrayGroup
from .slurmcli import SlurmError, SlurmJob
from .slurmgangs import Gang
from .slurmnode import bridge_name
from .slurmoutcome import outcome
from .slurmscript import NAME_PREFIX, Target, attempt_of, batch_script, sbatch_options
from .spool import Spool, safe_name
from .users import RunAs, run_as_cached

DEFAULT_SLURM_POLL_S = 1.0
SOON_MS = 100
MIN_POLL_MS = 50  # --slurm-poll-s 0 or near it: no busy loop on Slurm's commands
SINFO_EVERY_POLLS = 10  # the partitions' nodes (for `hpcbatch nodes`), every 10 polls' time
POLL_VAR = "HPCBATCH_SLURM_POLL_S"  # the default of --slurm-poll-s, where set
BULK_ENDS = 20  # more jobs than this ended since the last poll: one scontrol for them all  # after a submit or a cancel, look at Slurm again this soon
UNRESOLVED_REASON = "the bridge restarted while submitting it; looking for its Slurm job by name"
NEVER_SUBMITTED_REASON = (
    "lost: the bridge stopped while submitting the job, and Slurm has no job of its name"
)


@dataclass
class Tracked:
    """An attempt in Slurm (queued or running)."""

    attempt_id: str
    slurm_id: str
    log_path: str
    timeout_s: int | None
    started_ms: int | None = None
    reason: str | None = None  # the queued reason last reported
    kill_reason: str | None = None
    cancelled: bool = False  # scancel taken by Slurm
    exit_file: str | None = None  # a node of a multi-node job: where its exit status shows


class _NoMeter:
    """The CPU seconds of a bridge's jobs are Slurm's to count (sacct): none in heartbeats."""

    def seconds(self) -> float | None:
        return None


class SlurmBridge:
    def __init__(
        self,
        state_dir: Path,
        spool: Spool,
        emit: Callable[[p.AttemptUpdate], None],
        target: Target,
        run: slurmcli.Run,
        poll_s: float = DEFAULT_SLURM_POLL_S,
    ) -> None:
        self.spool = spool
        self.emit = emit
        self.target = target
        self.run = run
        self.poll_ms = max(MIN_POLL_MS, int(poll_s * 1000))
        self.logs_dir = state_dir / "logs"
        self.work_dir = state_dir / "work"
        for directory in (self.logs_dir, self.work_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, Tracked] = {}
        self.unresolved: set[str] = set()  # intents without a Slurm id (recovery)
        self.polled: set[str] = set()  # the runner's adopted-job polling: none here
        self.cpu = _NoMeter()
        self.on_other_child: Callable[[int, int], None] | None = None
        self.trouble: str | None = None  # why the last poll could not read Slurm
        self.view: p.Message | None = None  # the partitions as the head was last told
        self.on_view: Callable[[p.Message], None] | None = None  # tells the head (server.py)
        self._nodes: list[dict[str, Any]] = []
        self._switch: dict[str, RunAs] = {}  # this launch's jobs run as another user
        choice = os.environ.get(slurmlib.API_VAR, "auto")
        self.reader, how = slurmlib.load(run, choice)  # pyslurm where it matches, else the CLI
        log(f"reading Slurm through {how}")
        self.accounting: bool | None = None  # Slurm keeps it in slurmdbd (None: not asked yet)
        self.gangs: dict[str, Gang] = {}  # nodes of multi-node jobs until all are in hand
        self._mpi: str | None = None  # srun's --mpi for gangs (pmix where Slurm has it)
        self._mpi_known = False
        self._next_poll_ms = 0
        self._next_sinfo_ms = 0

    # --- reporting --------------------------------------------------------------------------

    def log_path(self, attempt_id: str) -> str:
        """Where the attempt's log is: the user's own file in ``work/`` for a job run as
        another user (Slurm opens it as that user), else in ``logs/``."""
        theirs = self._user_log_path(attempt_id)
        return theirs if os.path.lexists(theirs) else self._own_log_path(attempt_id)

    def _own_log_path(self, attempt_id: str) -> str:
        """Named without ``%`` (``=`` in its place), which an array's ``-o`` could not hold
        beside its ``%a``."""
        return str(self.logs_dir / f"{bridge_name(attempt_id)}.log")

    def _user_log_path(self, attempt_id: str) -> str:
        """A job run as another user: its log in ``work/`` (0711, reachable by path, not
        listable), made by the bridge, owned by the user, before Slurm opens it as them."""
        return str(self.work_dir / f"{bridge_name(attempt_id)}.log")

    def _work_path(self, attempt_id: str) -> str:
        return str(self.work_dir / safe_name(attempt_id))

    def current_update(self, attempt_id: str) -> p.AttemptUpdate | None:
        record = self.spool.records.get(attempt_id)
        if record is None:
            return None
        if record.get("result") is not None:
            result: p.AttemptUpdate = record["result"]
            return result
        tracked = self.running.get(attempt_id)
        if tracked is not None and tracked.started_ms is not None:
            return p.attempt_update(
                attempt_id, p.RUNNING, tracked.log_path, started_at_ms=tracked.started_ms
            )
        gang = slurmgangs.waiting_of(self.gangs, attempt_id)
        if tracked is not None:
            reason = tracked.reason or f"submitted to Slurm as job {tracked.slurm_id}"
        elif gang is not None:
            reason = f"waiting for the other nodes of its job ({len(gang.specs)} of "
            reason += f"{gang.num_nodes} here) to submit them to Slurm as one job"
        else:
            reason = UNRESOLVED_REASON
        return p.attempt_update(attempt_id, p.QUEUED, record["log_path"], reason=reason)

    def all_updates(self) -> list[p.AttemptUpdate]:
        found = (self.current_update(aid) for aid in list(self.spool.records))
        return [update for update in found if update is not None]

    # --- submitting -------------------------------------------------------------------------

    def launch_batch(self, specs: Iterable[p.AttemptSpec]) -> None:
        batch: list[p.AttemptSpec] = []
        for spec in specs:
            attempt_id = spec["attempt_id"]
            known = self.current_update(attempt_id)
            if known is not None:  # a re-sent launch: report, never submit twice
                self.emit(known)
            elif all(other["attempt_id"] != attempt_id for other in batch):
                batch.append(spec)
        batch = self._users_of(batch)
        if not batch:
            return
        for spec in batch:
            work = spec["cwd"] or self._work_path(spec["attempt_id"])
            self.spool.record_intent(spec["attempt_id"], self.log_path(spec["attempt_id"]), work)
        self.spool.flush()  # an interrupted submission is found by name, never made twice
        gangs, rest = slurmgangs.collect(self.gangs, batch)
        for gang in gangs:
            self._submit_gang(gang)
        arrays, singles = slurmarrays.group(rest)
        for array in arrays:
            self._submit_array(array)
        for spec in singles:
            self._submit(spec)
        self.spool.flush()
        self._poll_soon()

    def _users_of(self, batch: list[p.AttemptSpec]) -> list[p.AttemptSpec]:
        """The batch, each job naming another user made ready to run as them (``--uid``):
        its log and work dir made and given to them, their HOME, USER and LOGNAME in its
        variables. A user unknown here, or any user but the bridge's own when it is not root,
        fails to start, never runs as the bridge's user."""
        users: dict[str, RunAs | str] = {}
        ready: list[p.AttemptSpec] = []
        waiting = (aid for aid in self._switch if slurmgangs.waiting_of(self.gangs, aid))
        self._switch = {aid: self._switch[aid] for aid in list(waiting)}  # kept for its gang
        for spec in batch:
            attempt_id = spec["attempt_id"]
            who = run_as_cached(spec.get("user"), users)
            if isinstance(who, str):
                self.fail_to_start(attempt_id, self._own_log_path(attempt_id), who)
                continue
            if who is None:
                ready.append(spec)
                continue
            try:
                if who.switch:
                    self._give(self._user_log_path(attempt_id), who, directory=False)
                    if spec["cwd"] is None:
                        self._give(self._work_path(attempt_id), who, directory=True)
                    self._switch[attempt_id] = who
            except OSError as error:
                reason = f"CannotStartContainerError: cannot prepare its files for {who.name}: "
                self.fail_to_start(attempt_id, self._own_log_path(attempt_id), reason + str(error))
                continue
            ready.append({**spec, "env": {**spec["env"], **who.env}})
        return ready

    @staticmethod
    def _give(path: str, who: RunAs, directory: bool) -> None:
        """Make ``path`` (a 0600 file or a 0700 dir, never through a symlink) and hand it to
        ``who``."""
        if directory:
            os.makedirs(path, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_APPEND, 0o600)
        try:
            os.fchown(fd, who.uid, who.gid)
        finally:
            os.close(fd)

    def _as_user(self, attempt_id: str) -> list[str]:
        """sbatch's options that run the attempt as its user (root's privilege in Slurm)."""
        who = self._switch.get(attempt_id)
        return [] if who is None else [f"--uid={who.uid}", f"--gid={who.gid}"]

    def _submit(self, spec: p.AttemptSpec) -> None:
        attempt_id, log_path = spec["attempt_id"], self.log_path(spec["attempt_id"])
        work = spec["cwd"]
        try:
            if work is None:
                work = self._work_path(attempt_id)
                os.makedirs(work, mode=0o700, exist_ok=True)
            options = sbatch_options(spec, self.target, log_path, work) + self._as_user(attempt_id)
            slurm_id = slurmcli.sbatch(self.run, batch_script(spec), options)
        except SlurmError as error:
            reason = f"CannotStartContainerError: Slurm refused the job: {error.message}"
            self.fail_to_start(attempt_id, log_path, reason)
            return
        except OSError as error:
            reason = f"CannotStartContainerError: cannot make its work directory: {error}"
            self.fail_to_start(attempt_id, log_path, reason)
            return
        tracked = Tracked(attempt_id, slurm_id, log_path, spec["timeout_s"])
        self._journal(tracked, work)
        self.running[attempt_id] = tracked
        self.emit(self._queued(tracked, f"submitted to Slurm as job {slurm_id}"))

    def _submit_array(self, array: ArrayGroup) -> None:
        """One ``sbatch --array`` for the group; if its children's paths cannot be written as
        one pattern (a state dir holding ``%``), each is submitted on its own."""
        children = array.children()
        spec = array.specs[0]
        logs = {index: self.log_path(child["attempt_id"]) for index, child in children}
        theirs = spec["attempt_id"] in self._switch
        marker = (self._user_log_path if theirs else self._own_log_path)(array.attempt_id("@"))
        # "@" is quoted as %40 (the log's "=40"): never a part of an attempt id's own name
        output = slurmarrays.split_path(logs, marker, "=40")
        work_dirs = None
        if spec["cwd"] is None:
            works = {index: self._work_path(child["attempt_id"]) for index, child in children}
            marked = self._work_path(array.attempt_id("@"))
            work_dirs = slurmarrays.split_path(works, marked, "%40")
        if output is None or "%" in "".join(output) or (spec["cwd"] is None and not work_dirs):
            for _, child in children:
                self._submit(child)
            return
        try:
            if work_dirs is not None:
                for _, child in children:
                    os.makedirs(self._work_path(child["attempt_id"]), mode=0o700, exist_ok=True)
            options = sbatch_options(
                spec,
                self.target,
                logs[array.indexes[0]],
                spec["cwd"] or str(self.work_dir),
                name=array.name,
                output=f"{output[0]}%a{output[1]}",
            )
            options += self._as_user(spec["attempt_id"])
            options.append(f"--array={slurmarrays.array_ranges(array.indexes)}")
            script = slurmarrays.array_script(array, work_dirs)
            array_id = slurmcli.sbatch(self.run, script, options)
        except (SlurmError, OSError) as error:
            said = error.message if isinstance(error, SlurmError) else str(error)
            for index, child in children:
                reason = f"CannotStartContainerError: Slurm refused the job: {said}"
                self.fail_to_start(child["attempt_id"], logs[index], reason)
            return
        for index, child in children:
            slurm_id = f"{array_id}_{index}"
            tracked = Tracked(child["attempt_id"], slurm_id, logs[index], child["timeout_s"])
            self._journal(tracked, child["cwd"] or self._work_path(child["attempt_id"]))
            self.running[tracked.attempt_id] = tracked
            said = f"submitted to Slurm as task {index} of array job {array_id}"
            self.emit(self._queued(tracked, said))

    def _gang_dir(self, name: str) -> str:
        return str(self.work_dir / safe_name(name))

    def _mpi_type(self) -> str | None:
        """``pmix`` where this cluster's srun has it, else None (its own ``MpiDefault``)."""
        if not self._mpi_known:
            try:
                self._mpi = "pmix" if "pmix" in slurmcli.mpi_types(self.run) else None
            except SlurmError as error:
                log(f"srun --mpi=list: {error.message}")
            self._mpi_known = True
        return self._mpi

    def _submit_gang(self, gang: Gang) -> None:
        """One ``sbatch -N`` for every node of a multi-node job (slurmgangs.py)."""
        nodes = gang.ordered()
        logs = {index: self.log_path(spec["attempt_id"]) for index, spec in nodes}
        works = {index: spec["cwd"] or self._work_path(spec["attempt_id"]) for index, spec in nodes}
        gang_dir = self._gang_dir(gang.name)
        main_id = nodes[0][1]["attempt_id"]
        who = self._switch.get(main_id)
        try:
            if any(self._switch.get(s["attempt_id"]) != who for _, s in nodes):
                raise OSError("its nodes name different users")
            os.makedirs(gang_dir, mode=0o700, exist_ok=True)
            for index, spec in nodes:
                if spec["cwd"] is None:
                    os.makedirs(works[index], mode=0o700, exist_ok=True)
            script = slurmgangs.nodes_script(gang, logs, works, gang_dir)
            with open(f"{gang_dir}/{slurmgangs.NODES_SCRIPT}", "w", encoding="utf-8") as out:
                out.write(script)
            if who is not None:  # the nodes write their exit files there as the user
                for path in (gang_dir, f"{gang_dir}/{slurmgangs.NODES_SCRIPT}"):
                    os.chown(path, who.uid, who.gid, follow_symlinks=False)
            options = slurmgangs.sbatch_options(gang, self.target, logs[gang.main], gang_dir)
            options += self._as_user(main_id)
            batch = slurmgangs.batch_script(gang, gang_dir, self._mpi_type())
            slurm_id = slurmcli.sbatch(self.run, batch, options)
        except (SlurmError, OSError) as error:
            said = error.message if isinstance(error, SlurmError) else str(error)
            for index, spec in nodes:
                reason = f"CannotStartContainerError: Slurm refused the job: {said}"
                self.fail_to_start(spec["attempt_id"], logs[index], reason)
            return
        for index, spec in nodes:
            exit_file = slurmgangs.exit_path(gang_dir, index)
            tracked = Tracked(
                spec["attempt_id"], slurm_id, logs[index], spec["timeout_s"], exit_file=exit_file
            )
            self._journal(tracked, works[index])
            self.running[tracked.attempt_id] = tracked
            said = f"submitted to Slurm as node {index} of job {slurm_id} ({gang.num_nodes} nodes)"
            self.emit(self._queued(tracked, said))

    def _journal(self, tracked: Tracked, work_dir: str | None) -> None:
        record: dict[str, Any] = {
            "attempt_id": tracked.attempt_id,
            "pid": None,
            "slurm_id": tracked.slurm_id,
            "log_path": tracked.log_path,
            "work_dir": work_dir,
            "timeout_s": tracked.timeout_s,
            "started_at_ms": tracked.started_ms,
            "kill_reason": tracked.kill_reason,
        }
        if tracked.exit_file is not None:
            record["exit_file"] = tracked.exit_file
        self.spool.record_start(record)

    def _queued(self, tracked: Tracked, reason: str) -> p.AttemptUpdate:
        tracked.reason = reason
        return p.attempt_update(tracked.attempt_id, p.QUEUED, tracked.log_path, reason=reason)

    def fail_to_start(self, attempt_id: str, log_path: str, reason: str) -> None:
        """FAILED_TO_START; the reason also goes to the attempt's log (never via a symlink)."""
        try:
            with open(os.open(log_path, LOG_FLAGS, LOG_MODE), "a", encoding="utf-8") as out:
                out.write(reason + "\n")
        except OSError:
            pass
        self.running.pop(attempt_id, None)
        self.unresolved.discard(attempt_id)
        result = p.attempt_update(
            attempt_id, p.FAILED_TO_START, log_path, stopped_at_ms=now_ms(), reason=reason
        )
        self.spool.record_end(result)
        self.emit(result)

    # --- killing and timers -----------------------------------------------------------------

    def kill(self, attempt_id: str, reason: str) -> None:
        tracked = self.running.get(attempt_id)
        gang = slurmgangs.waiting_of(self.gangs, attempt_id) if tracked is None else None
        if gang is not None:  # never submitted: it ends here, its gang waits no more for it
            parts = slurmgangs.node_parts(attempt_id)
            gang.specs.pop(parts[1] if parts is not None else -1, None)
            self._ended_unsent(attempt_id, reason)
            return
        if tracked is None and attempt_id in self.unresolved:
            record = self.spool.records[attempt_id]
            if record.get("kill_reason") is None:  # cancelled once it is found (_resolve)
                self.spool.record_kill(attempt_id, reason)
            return
        if tracked is None or tracked.kill_reason is not None:
            return  # unknown, finished, or already being cancelled
        tracked.kill_reason = reason
        self.spool.record_kill(attempt_id, reason)
        self._cancel(tracked)

    def kill_all(self, reason: str) -> None:
        for attempt_id in list(self.running):
            self.kill(attempt_id, reason)

    def _cancel(self, tracked: Tracked) -> None:
        if tracked.exit_file is not None and self._gang_cancelled(tracked.slurm_id):
            tracked.cancelled = True  # one node of a gang: its whole job went already
            return
        try:
            slurmcli.scancel(self.run, tracked.slurm_id)
        except SlurmError as error:  # tried again at the next poll
            log(f"scancel {tracked.slurm_id} ({tracked.attempt_id}): {error.message}")
            return
        tracked.cancelled = True
        self._poll_soon()

    def _gang_cancelled(self, slurm_id: str) -> bool:
        return any(t.cancelled and t.slurm_id == slurm_id for t in self.running.values())

    def _poll_soon(self) -> None:
        """The next poll in ``SOON_MS`` at the latest, not in this same turn: what Slurm was
        just told shows there a moment later."""
        now = now_ms()
        if not now < self._next_poll_ms <= now + SOON_MS:
            self._next_poll_ms = now + SOON_MS

    def next_timer_ms(self) -> int | None:
        if not self.running and not self.unresolved:
            return self._next_sinfo_ms
        dues = [self._next_poll_ms, self._next_sinfo_ms]
        dues += [due for t in self.running.values() if (due := _timeout_due(t)) is not None]
        return min(dues)

    def run_timers(self) -> None:
        now = now_ms()
        for tracked in list(self.running.values()):
            due = _timeout_due(tracked)
            if due is not None and now >= due:
                self.kill(tracked.attempt_id, p.TIMEOUT_REASON)
        if (self.running or self.unresolved) and now >= self._next_poll_ms:
            self._next_poll_ms = now + self.poll_ms
            self.poll()
        if now >= self._next_sinfo_ms:
            self._next_sinfo_ms = now + SINFO_EVERY_POLLS * self.poll_ms
            self._read_nodes()

    def _read_nodes(self) -> None:
        try:
            found = slurmcli.sinfo_nodes(self.run, self.target.partitions)
        except SlurmError as error:
            self._troubled(error.message)
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

    def _publish(self) -> None:
        view = p.slurm_view(self._nodes, self.trouble)
        if view != self.view:
            self.view = view
            if self.on_view is not None:
                self.on_view(view)

    # --- polling ----------------------------------------------------------------------------

    def poll(self) -> None:
        try:
            listed = self.reader.queue() if self.reader else slurmcli.squeue(self.run)
            queue = {job.slurm_id: job for job in listed}
        except SlurmError as error:
            self._troubled(error.message)
            return
        self._troubled(None)
        if self.unresolved:
            self._resolve(queue)
        ended: list[Tracked] = []
        for tracked in list(self.running.values()):
            if tracked.kill_reason is not None and not tracked.cancelled:
                self._cancel(tracked)
            job = queue.get(tracked.slurm_id)
            if job is not None and job.active:
                self._seen(tracked, job)
                if tracked.exit_file is not None and tracked.started_ms is not None:
                    self._node_done(tracked)
            else:
                ended.append(tracked)
        if ended:
            self._read_ends(ended)

    def _read_ends(self, ended: list[Tracked]) -> None:
        """How each job that left the queue ended: from Slurm's accounting where it runs (one
        ``sacct`` for them all, whatever their age), else (or while sacct has not heard of the
        end yet) one ``scontrol show job`` each, or, for more than ``BULK_ENDS`` at once, one
        for everything Slurm remembers."""
        try:
            booked = self._accounted(ended)
            rest = [t for t in ended if t.slurm_id not in booked]
            ends = [(t, [booked[t.slurm_id]]) for t in ended if t.slurm_id in booked]
            if len(rest) > BULK_ENDS:
                remembered = {job.slurm_id: [job] for job in self._show_jobs()}
                ends += [(t, remembered.get(t.slurm_id, [])) for t in rest]
            else:
                shown: dict[str, list[SlurmJob]] = {}  # a gang's nodes share one Slurm job
                for t in rest:
                    if t.slurm_id not in shown:
                        shown[t.slurm_id] = self._show_job(t.slurm_id)
                ends += [(t, shown[t.slurm_id]) for t in rest]
        except SlurmError as error:
            self._troubled(error.message)
            return
        for tracked, jobs in ends:
            self._ended(tracked, jobs)

    def _show_job(self, slurm_id: str) -> list[SlurmJob]:
        return (
            self.reader.show_job(slurm_id) if self.reader else slurmcli.show_job(self.run, slurm_id)
        )

    def _show_jobs(self) -> list[SlurmJob]:
        return self.reader.show_jobs() if self.reader else slurmcli.show_jobs(self.run)

    def _accounted(self, ended: list[Tracked]) -> dict[str, SlurmJob]:
        """The ends that Slurm's accounting holds, where Slurm keeps it (asked once)."""
        if self.accounting is None:
            reader = self.reader
            self.accounting = reader.accounting() if reader else slurmcli.accounting(self.run)
            log(f"Slurm accounting: {'slurmdbd (sacct)' if self.accounting else 'none'}")
        if not self.accounting:
            return {}
        ids = sorted({t.slurm_id for t in ended})
        return {job.slurm_id: job for job in slurmcli.accounted(self.run, ids) if not job.active}

    def _troubled(self, message: str | None) -> None:
        if message != self.trouble:
            log(f"Slurm: {message}" if message is not None else "Slurm answers again")
            self.trouble = message
            self._publish()

    def _seen(self, tracked: Tracked, job: SlurmJob) -> None:
        if job.started_at_ms is None:
            said = f": {job.reason}" if job.reason not in ("", "None") else ""
            reason = f"waiting in Slurm partition {job.partition}{said}"
            if reason != tracked.reason:
                self.emit(self._queued(tracked, reason))
        elif tracked.started_ms is None:
            self._started(tracked, job.started_at_ms)

    def _started(self, tracked: Tracked, started_ms: int) -> None:
        tracked.started_ms = started_ms
        record = self.spool.records.get(tracked.attempt_id, {})
        self._journal(tracked, record.get("work_dir"))
        update = p.attempt_update(
            tracked.attempt_id, p.RUNNING, tracked.log_path, started_at_ms=started_ms
        )
        self.emit(update)

    def _ended(self, tracked: Tracked, remembered: list[SlurmJob]) -> None:
        if remembered and remembered[0].active:
            return  # it changed between the two reads: the next poll sees it
        job = remembered[0] if remembered else None
        # a job cancelled while pending gets a StartTime too (its end): only one given nodes ran
        ran = job is not None and job.nodes != ""
        started = tracked.started_ms or (job.started_at_ms if ran and job is not None else None)
        exit_code, signum, reason = outcome(job, tracked)
        if tracked.exit_file is not None:  # a node that ended by itself says how
            code = slurmgangs.read_exit(tracked.exit_file)
            if code is not None:
                exit_code, signum, reason = code, None, None
            elif job is not None and job.state in ("COMPLETED", "FAILED"):
                exit_code, signum = None, None  # the job's status is srun's, not this node's
                reason = slurmgangs.unfinished_reason(job.state, job.exit_code, job.signal)
        result = p.attempt_update(
            tracked.attempt_id,
            p.EXITED,
            tracked.log_path,
            started_at_ms=started,
            stopped_at_ms=(job.ended_at_ms if job is not None else None) or now_ms(),
            exit_code=exit_code,
            signal=signum,
            reason=reason,
        )
        del self.running[tracked.attempt_id]
        self.spool.record_end(result)
        self.emit(result)

    def _node_done(self, tracked: Tracked) -> None:
        """A node of a running gang whose own command ended (its exit file is there): reported
        now, while the job's other nodes may run on (the head stops them if it was the main
        node, or a failure)."""
        assert tracked.exit_file is not None
        code = slurmgangs.read_exit(tracked.exit_file)
        if code is None:
            return
        try:
            stopped = int(os.lstat(tracked.exit_file).st_mtime * 1000)
        except OSError:
            stopped = now_ms()
        result = p.attempt_update(
            tracked.attempt_id,
            p.EXITED,
            tracked.log_path,
            started_at_ms=tracked.started_ms,
            stopped_at_ms=stopped,
            exit_code=code,
        )
        del self.running[tracked.attempt_id]
        self.spool.record_end(result)
        self.emit(result)

    def _ended_unsent(self, attempt_id: str, reason: str) -> None:
        """A node killed before its gang was submitted: it ends, never started."""
        record = self.spool.records.get(attempt_id, {})
        log_path = record.get("log_path") or self.log_path(attempt_id)
        result = p.attempt_update(
            attempt_id, p.EXITED, log_path, stopped_at_ms=now_ms(), reason=reason
        )
        self.spool.record_end(result)
        self.emit(result)

    # --- acks and recovery ------------------------------------------------------------------

    def ack(self, attempt_ids: Iterable[str]) -> None:
        gang_dirs: set[str] = set()
        for attempt_id in attempt_ids:
            record = self.spool.records.get(attempt_id)
            if record is None or record.get("result") is None:
                continue
            if record.get("work_dir") == self._work_path(attempt_id):
                shutil.rmtree(record["work_dir"], ignore_errors=True)
            if record.get("exit_file"):
                gang_dirs.add(os.path.dirname(record["exit_file"]))
            self.spool.record_ack(attempt_id)
        if gang_dirs:  # a gang's dir goes with the last of its nodes
            for record in self.spool.records.values():
                gang_dirs.discard(os.path.dirname(record.get("exit_file") or ""))
            for directory in gang_dirs:
                shutil.rmtree(directory, ignore_errors=True)

    def recover(self) -> None:
        for attempt_id, record in self.spool.records.items():
            if record.get("result") is not None:
                continue
            if record.get("slurm_id"):
                self.running[attempt_id] = Tracked(
                    attempt_id,
                    record["slurm_id"],
                    record["log_path"],
                    record.get("timeout_s"),
                    record.get("started_at_ms"),
                    kill_reason=record.get("kill_reason"),
                    exit_file=record.get("exit_file"),
                )
            else:
                self.unresolved.add(attempt_id)
        if self.running or self.unresolved:
            log(f"tracking {len(self.running)} Slurm job(s) again, {len(self.unresolved)} to find")

    def _resolve(self, queue: dict[str, SlurmJob]) -> None:
        """Interrupted submissions, by job name: in the queue, else in what Slurm remembers."""
        named = {attempt_of(job.name, job.slurm_id): job for job in queue.values()}
        if not self.unresolved <= named.keys():
            try:
                remembered = self._show_jobs()
                named.update({attempt_of(j.name, j.slurm_id): j for j in remembered})
            except SlurmError as error:
                self._troubled(error.message)
                return
        for attempt_id in sorted(self.unresolved):
            self.unresolved.discard(attempt_id)
            record = self.spool.records[attempt_id]
            job = named.get(attempt_id)
            exit_file = None
            key = slurmgangs.gang_key(attempt_id)
            if job is None and key is not None and key in named:  # a node of a gang's job
                job = named[key]
                parts = slurmgangs.node_parts(attempt_id)
                assert parts is not None
                gang_dir = self._gang_dir(NAME_PREFIX + key)
                exit_file = slurmgangs.exit_path(gang_dir, parts[1])
            if job is None:
                self.fail_to_start(attempt_id, record["log_path"], NEVER_SUBMITTED_REASON)
                continue
            kill_reason = record.get("kill_reason")  # a kill that came while it was looked for
            tracked = Tracked(
                attempt_id,
                job.slurm_id,
                record["log_path"],
                None,
                kill_reason=kill_reason,
                exit_file=exit_file,
            )
            self._journal(tracked, record.get("work_dir"))
            self.running[attempt_id] = tracked
            log(f"attempt {attempt_id!r}: found as Slurm job {job.slurm_id}")

    # --- what the runner does that a bridge has no need of ----------------------------------

    def reap_children(self) -> None:
        pass

    def poll_adopted(self) -> None:
        pass

    def sweep_stale_cgroups(self) -> None:
        pass

    def remove_stale_reaped(self) -> None:
        pass

    def close(self) -> None:
        pass


def _timeout_due(tracked: Tracked) -> int | None:
    if tracked.timeout_s is None or tracked.started_ms is None or tracked.kill_reason:
        return None
    return tracked.started_ms + tracked.timeout_s * 1000
