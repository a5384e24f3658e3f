"""The SLURM bridge: an agent whose attempts run as Slurm jobs (docs/slurm.md). It takes the
runner's place in the agent's loop (server.py): the head sends it launches, kills and acks as
to any agent and hears back the same updates, so queues, retries, dependencies and
explanations work unchanged in front of Slurm.

Vocabulary:
    submit     one ``sbatch`` per attempt (slurmscript.py), per array in one launch
               (slurmarrays.py), per multi-node job (slurmgangs.py); its intent journaled
               first, its Slurm id once sbatch answers. A refusal fails the attempt to start
               with Slurm's own words. Jobs naming a user: slurmusers.py.
    queued     submitted, not yet running: reported as QUEUED with Slurm's pending reason
               (``waiting in Slurm partition batch: Priority``), again when it changes.
    poll       every ``poll_s`` while anything is in flight: Slurm's queue, once
               (slurmreads.py); a job it lists as running is reported RUNNING (Slurm's
               StartTime); one it no longer lists has ended, and Slurm says how (sacct where
               it keeps accounting, else scontrol while it remembers): slurmoutcome.py.
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
from pathlib import Path

from . import protocol as p
from . import slurmarrays, slurmcli, slurmgangs, slurmusers
from .agentlog import log
from .forkexec import LOG_FLAGS, LOG_MODE
from .runner import now_ms
from .slurmarrays import ArrayGroup
from .slurmcli import SlurmError, SlurmJob
from .slurmgangs import Gang
from .slurmnode import bridge_name
from .slurmoutcome import outcome
from .slurmreads import SlurmReads
from .slurmrunnerless import Runnerless
from .slurmscript import NAME_PREFIX, Target, attempt_of, batch_script, sbatch_options
from .slurmtracked import Tracked, record_of, timeout_due, tracked_of
from .slurmview import PartitionsView
from .spool import Spool, safe_name
from .users import RunAs

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


class SlurmBridge(Runnerless):
    def __init__(
        self,
        state_dir: Path,
        spool: Spool,
        emit: Callable[[p.AttemptUpdate], None],
        target: Target,
        run: slurmcli.Run,
        poll_s: float = DEFAULT_SLURM_POLL_S,
    ) -> None:
        super().__init__()
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
        self.partitions = PartitionsView()  # Slurm's nodes and trouble, as the head sees them
        self._switch: dict[str, RunAs] = {}  # this launch's jobs run as another user
        self.reads = SlurmReads(run)  # pyslurm where it matches, else the CLI
        self.gangs: dict[str, Gang] = {}  # nodes of multi-node jobs until all are in hand
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
        """The batch, its jobs that name a user made ready to run as them (slurmusers.py)."""
        waiting = (aid for aid in self._switch if slurmgangs.waiting_of(self.gangs, aid))
        self._switch = {aid: self._switch[aid] for aid in list(waiting)}  # kept for its gang

        def fail(attempt_id: str, reason: str) -> None:
            self.fail_to_start(attempt_id, self._own_log_path(attempt_id), reason)

        kept, switch = slurmusers.ready(batch, self._user_log_path, self._work_path, fail)
        self._switch.update(switch)
        return kept

    def _as_user(self, attempt_id: str) -> list[str]:
        return slurmusers.sbatch_options(self._switch.get(attempt_id))

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
            self._refused([(c["attempt_id"], logs[i]) for i, c in children], error)
            return
        for index, child in children:
            slurm_id = f"{array_id}_{index}"
            tracked = Tracked(child["attempt_id"], slurm_id, logs[index], child["timeout_s"])
            self._journal(tracked, child["cwd"] or self._work_path(child["attempt_id"]))
            self.running[tracked.attempt_id] = tracked
            said = f"submitted to Slurm as task {index} of array job {array_id}"
            self.emit(self._queued(tracked, said))

    def _refused(self, attempts: list[tuple[str, str]], error: SlurmError | OSError) -> None:
        """Every attempt of one sbatch (id, log path) fails to start with Slurm's words."""
        said = error.message if isinstance(error, SlurmError) else str(error)
        for attempt_id, log_path in attempts:
            reason = f"CannotStartContainerError: Slurm refused the job: {said}"
            self.fail_to_start(attempt_id, log_path, reason)

    def _gang_dir(self, name: str) -> str:
        return str(self.work_dir / safe_name(name))

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
            owner = None if who is None else (who.uid, who.gid)
            slurmgangs.write_gang_dir(gang, logs, works, gang_dir, owner)
            options = slurmgangs.sbatch_options(gang, self.target, logs[gang.main], gang_dir)
            options += self._as_user(main_id)
            batch = slurmgangs.batch_script(gang, gang_dir, self.reads.mpi_type())
            slurm_id = slurmcli.sbatch(self.run, batch, options)
        except (SlurmError, OSError) as error:
            self._refused([(s["attempt_id"], logs[i]) for i, s in nodes], error)
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
        self.spool.record_start(record_of(tracked, work_dir))

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
        self.unresolved.discard(attempt_id)
        self._end(
            p.attempt_update(
                attempt_id, p.FAILED_TO_START, log_path, stopped_at_ms=now_ms(), reason=reason
            )
        )

    def _end(self, result: p.AttemptUpdate) -> None:
        """The attempt is over: tracked no more, its result journaled and reported."""
        self.running.pop(result["attempt_id"], None)
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
        dues += [due for t in self.running.values() if (due := timeout_due(t)) is not None]
        return min(dues)

    def run_timers(self) -> None:
        now = now_ms()
        for tracked in list(self.running.values()):
            due = timeout_due(tracked)
            if due is not None and now >= due:
                self.kill(tracked.attempt_id, p.TIMEOUT_REASON)
        if (self.running or self.unresolved) and now >= self._next_poll_ms:
            self._next_poll_ms = now + self.poll_ms
            self.poll()
        if now >= self._next_sinfo_ms:
            self._next_sinfo_ms = now + SINFO_EVERY_POLLS * self.poll_ms
            self.partitions.read_nodes(self.run, self.target)

    # --- polling ----------------------------------------------------------------------------

    def poll(self) -> None:
        try:
            queue = {job.slurm_id: job for job in self.reads.queue()}
        except SlurmError as error:
            self.partitions.troubled(error.message)
            return
        self.partitions.troubled(None)
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
            booked = self.reads.ended([t.slurm_id for t in ended])
            rest = [t for t in ended if t.slurm_id not in booked]
            ends = [(t, [booked[t.slurm_id]]) for t in ended if t.slurm_id in booked]
            if len(rest) > BULK_ENDS:
                remembered = {job.slurm_id: [job] for job in self.reads.show_jobs()}
                ends += [(t, remembered.get(t.slurm_id, [])) for t in rest]
            else:
                shown: dict[str, list[SlurmJob]] = {}  # a gang's nodes share one Slurm job
                for t in rest:
                    if t.slurm_id not in shown:
                        shown[t.slurm_id] = self.reads.show_job(t.slurm_id)
                ends += [(t, shown[t.slurm_id]) for t in rest]
        except SlurmError as error:
            self.partitions.troubled(error.message)
            return
        for tracked, jobs in ends:
            self._ended(tracked, jobs)

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
        self._end(result)

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
        self._end(result)

    def _ended_unsent(self, attempt_id: str, reason: str) -> None:
        """A node killed before its gang was submitted: it ends, never started."""
        record = self.spool.records.get(attempt_id, {})
        log_path = record.get("log_path") or self.log_path(attempt_id)
        result = p.attempt_update(
            attempt_id, p.EXITED, log_path, stopped_at_ms=now_ms(), reason=reason
        )
        self._end(result)

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
                self.running[attempt_id] = tracked_of(attempt_id, record)
            else:
                self.unresolved.add(attempt_id)
        if self.running or self.unresolved:
            log(f"tracking {len(self.running)} Slurm job(s) again, {len(self.unresolved)} to find")

    def _resolve(self, queue: dict[str, SlurmJob]) -> None:
        """Interrupted submissions, by job name: in the queue, else in what Slurm remembers."""
        named = {attempt_of(job.name, job.slurm_id): job for job in queue.values()}
        if not self.unresolved <= named.keys():
            try:
                remembered = self.reads.show_jobs()
                named.update({attempt_of(j.name, j.slurm_id): j for j in remembered})
            except SlurmError as error:
                self.partitions.troubled(error.message)
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
