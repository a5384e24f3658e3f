"""The SLURM bridge's recovery logic against a scripted Slurm (the real one: tests/slurm): a
kill that comes while a restarted bridge still looks for an interrupted submission is not lost,
it cancels the job once found."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hpcbatch_agent import protocol as p
from hpcbatch_agent.slurmbridge import SlurmBridge
from hpcbatch_agent.slurmscript import Target
from hpcbatch_agent.spool import Spool


class ScriptedSlurm:
    """Answers squeue with one running job named for ``lost/1``; records every command."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[0] == "squeue":
            return 0, "41|RUNNING|None|2026-12-01T05:00:00|h1|batch|hb-lost/1\n", ""
        if argv[0] == "sinfo":
            return 0, "h1|idle|2|1024|batch*|(null)\n", ""
        return 0, "", ""


def test_a_kill_while_an_interrupted_submission_is_looked_for_cancels_it_once_found(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.record_intent("lost/1", str(tmp_path / "lost.log"), None)
    spool.commit()
    slurm = ScriptedSlurm()
    sent: list[p.AttemptUpdate] = []
    bridge = SlurmBridge(tmp_path, spool, sent.append, Target(), slurm)
    bridge.recover()
    assert bridge.unresolved == {"lost/1"}
    bridge.kill("lost/1", "terminated by the user")
    bridge.poll()
    assert ["scancel", "41"] in slurm.calls
    assert bridge.running["lost/1"].kill_reason == "terminated by the user"
