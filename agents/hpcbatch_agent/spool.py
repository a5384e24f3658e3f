"""The durable spool: what the agent must not forget across its own death.

Vocabulary:
    record     what the spool knows about one attempt: how it was started (pid, times,
               file paths, timeout) and, once decided, its final result (an update).
    journal    ``spool/journal.jsonl``, an append-only file of JSON lines, one per event:
               ``start``, ``kill``, ``end``, ``ack``. Replaying it rebuilds the records.
    commit     one write of every pending line (group commit): the agent commits once
               per loop turn, before it reports anything, so a result the head has seen
               is always in the journal. An intent is written before a job is spawned,
               its start once its launch message's jobs are (a restarted agent finds a
               job spawned in between by its environment). A write survives the agent's
               own death (kill -9, OOM) and the head's: the kernel holds it. So a
               restarted agent knows every job its predecessor spawned and every result
               it decided.
    durability ``process`` (the default, as the head's store): what the kernel holds is
               enough, nothing waits for the disk. ``power``: each commit that carries a
               start or a result also fsyncs (a few hundred fsyncs per 10,000 attempts),
               so it survives the host losing power too. Without that, a power loss can
               lose the last seconds of results, and the head then counts those attempts
               as lost with the host, as it does the jobs the power loss killed.
    compaction rewriting the journal as only the live records (tmp + rename, with fsyncs
               under ``power``) once acked history dominates it.

A torn last line (the agent died mid-write) is ignored: only the tail can be torn, and
nothing after it was ever reported. ``safe_name`` turns an attempt id into a file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from .protocol import AttemptUpdate
from .statedir import open_private

JOURNAL = "journal.jsonl"
_MAX_NAME = 200
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: none made per line


def safe_name(attempt_id: str) -> str:
    """A file name for an attempt id: reversible quoting, or a hash tail when too long."""
    quoted = urllib.parse.quote(attempt_id, safe="")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]  # never "." / ".." / a hidden file
    if len(quoted) <= _MAX_NAME:
        return quoted
    digest = hashlib.sha256(attempt_id.encode()).hexdigest()[:32]
    return f"{quoted[:100]}~{digest}"


def attempt_id_from_name(name: str) -> str | None:
    """Inverse of safe_name, or None for hashed (too long) names."""
    return None if "~" in name else urllib.parse.unquote(name)


DURABILITIES = ("process", "power")


class Spool:
    """Replays and appends the journal. Records are plain dicts keyed by attempt id."""

    def __init__(self, directory: Path, durability: str = "process") -> None:
        if durability not in DURABILITIES:
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        self.sync = durability == "power"
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / JOURNAL
        self.records: dict[str, dict[str, Any]] = {}
        self._pending: list[bytes] = []
        self._pending_durable = False
        self._lines = 0
        # Never through a symlink (statedir.open_private): the journal is read and written
        # by an agent that may be root.
        self._fd = open_private(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        self._load()

    def _load(self) -> None:
        with open(os.dup(self._fd), "rb") as journal:
            for line in journal:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the torn tail of a crash; never reported
                self._apply(entry)
                self._lines += 1

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        attempt_id = entry.get("attempt_id")
        if not isinstance(attempt_id, str):
            return
        if op == "start":
            record = dict(entry)
            del record["op"]
            record.setdefault("result", None)
            record.setdefault("kill_reason", None)
            self.records[attempt_id] = record
        elif op == "exited" and attempt_id in self.records:
            self.records[attempt_id]["exited"] = [entry.get("status"), entry.get("stopped_at_ms")]
        elif op == "kill" and attempt_id in self.records:
            self.records[attempt_id]["kill_reason"] = entry.get("reason")
        elif op == "end":
            record = self.records.setdefault(attempt_id, {"attempt_id": attempt_id})
            record["result"] = entry["result"]
        elif op == "ack":
            self.records.pop(attempt_id, None)

    def _append(self, entry: dict[str, Any], durable: bool) -> None:
        self._apply(entry)
        self._pending.append(_encode(entry).encode() + b"\n")
        self._pending_durable = self._pending_durable or durable

    def record_intent(
        self, attempt_id: str, log_path: str, work_dir: str | None, uid: int | None = None
    ) -> None:
        """A start record with no pid yet, flushed before the job is spawned. An agent killed
        during the spawn leaves this behind, so its successor knows the attempt may have
        started and never starts it a second time, and adopts its job only if it runs as
        ``uid`` (None, and records from before uids were journaled: the agent's own)."""
        intent: dict[str, Any] = {"attempt_id": attempt_id, "pid": None, "log_path": log_path}
        if uid is not None:
            intent["uid"] = uid
        self._append({"op": "start", **intent, "work_dir": work_dir}, durable=False)

    def record_start(self, record: dict[str, Any]) -> None:
        """``record`` needs attempt_id; the agent stores pid, times, paths and timeout_s.
        Flushed by the caller once the batch's jobs are spawned: until then a restarted agent
        finds them by their environment (jobs.find_jobs)."""
        self._append({"op": "start", **record}, durable=True)

    def record_exited(self, attempt_id: str, status: int, stopped_at_ms: int) -> None:
        """A child's wait status, written before the agent reaps it: an agent killed between
        the reap and its next commit would otherwise take the status with it (the zombie it
        has not reaped yet goes to the keeper instead)."""
        entry = {"op": "exited", "attempt_id": attempt_id, "status": status}
        self._append({**entry, "stopped_at_ms": stopped_at_ms}, durable=False)
        self.flush()

    def record_kill(self, attempt_id: str, reason: str) -> None:
        self._append({"op": "kill", "attempt_id": attempt_id, "reason": reason}, durable=False)

    def record_end(self, result: AttemptUpdate) -> None:
        entry = {"op": "end", "attempt_id": result["attempt_id"], "result": result}
        self._append(entry, durable=True)

    def record_ack(self, attempt_id: str) -> None:
        # Not forced to disk on its own: a lost ack only makes a result be re-sent.
        self._append({"op": "ack", "attempt_id": attempt_id}, durable=False)

    def flush(self) -> None:
        """Write pending lines, without waiting for the disk."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._lines += len(self._pending)
        self._pending.clear()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def commit(self) -> None:
        """Write pending lines; under ``power``, fsync when any of them is a start or a
        result."""
        self.flush()
        if self._pending_durable:
            if self.sync:
                os.fsync(self._fd)
            self._pending_durable = False
            if self._lines > 4 * len(self.records) + 20000:
                self.compact()

    def compact(self) -> None:
        """Rewrite the journal as the live records only, atomically."""
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with open(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as out:
            for record in self.records.values():
                for entry in _entries_for(record):
                    out.write(_encode(entry).encode() + b"\n")
            out.flush()
            if self.sync:
                os.fsync(out.fileno())
        os.replace(tmp, self.path)  # atomic: a reader sees the old journal or the new one
        if self.sync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        os.close(self._fd)
        self._fd = open_private(self.path, os.O_RDWR | os.O_APPEND)
        self._lines = sum(len(_entries_for(r)) for r in self.records.values())

    def close(self) -> None:
        self.commit()
        os.close(self._fd)


def _entries_for(record: dict[str, Any]) -> list[dict[str, Any]]:
    start = {k: v for k, v in record.items() if k not in ("result", "kill_reason")}
    entries: list[dict[str, Any]] = [{"op": "start", **start}]
    if record.get("kill_reason") is not None:
        entries.append(
            {"op": "kill", "attempt_id": record["attempt_id"], "reason": record["kill_reason"]}
        )
    if record.get("result") is not None:
        entries.append(
            {"op": "end", "attempt_id": record["attempt_id"], "result": record["result"]}
        )
    return entries
