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


class ScriptedGang(ScriptedSlurm):
    """Answers squeue with the running job of gang ``g``'s first try, Slurm id 42."""

    def __call__(self, argv: Sequence[str], stdin: str | None) -> tuple[int, str, str]:
        if argv[0] == "squeue":
            self.calls.append(list(argv))
            return 0, "42|RUNNING|None|2026-12-01T05:00:00|h[1-2]|batch|hb-g#*/1\n", ""
        return super().__call__(argv, stdin)


def test_a_gang_submitted_before_a_restart_is_found_by_name_and_its_nodes_end_one_by_one(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    for index in (0, 1):
        spool.record_intent(f"g#{index}/1", str(tmp_path / f"n{index}.log"), None)
    spool.commit()
    slurm = ScriptedGang()
    sent: list[p.AttemptUpdate] = []
    bridge = SlurmBridge(tmp_path, spool, sent.append, Target(), slurm)
    bridge.recover()
    bridge.poll()
    assert {t.slurm_id for t in bridge.running.values()} == {"42"}
    exit_file = bridge.running["g#1/1"].exit_file
    assert exit_file is not None and exit_file.endswith("/exit.1")
    Path(exit_file).parent.mkdir(parents=True)
    Path(exit_file).write_text("3\n")  # node 1's command ended; the job runs on
    bridge.poll()
    ended = [u for u in sent if u["state"] == p.EXITED]
    assert [(u["attempt_id"], u["exit_code"]) for u in ended] == [("g#1/1", 3)]
    assert list(bridge.running) == ["g#0/1"]
    bridge.kill("g#0/1", "stopped: node 1 failed")
    assert slurm.calls.count(["scancel", "42"]) == 1  # the gang's one Slurm job
