"""An mpirun that never connects: the job's timeout kills every node's processes, through a real
head with two LOCAL virtual nodes (real agents, real launch servers). The main node's command
blocks with work it started on node 1 through $HPCBATCH_LAUNCHER (a plain remote command, or
Open MPI's daemon and its rank); past its ``--timeout`` the gang FAILED with the timeout reason,
and no process of either node, launched ones included, is left."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
OPENMPI = "/usr/bin/mpirun.openmpi"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"

# The address of the node that is not the main node, from the gang's launch peers.
OTHER = (
    'for p in $(echo "$HPCBATCH_LAUNCH_PEERS" | tr , " "); do a="${p%%=*}"; '
    '[ "$a" != "$HPCBATCH_MAIN_NODE" ] && other="$a"; done; '
)


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=1, memory=2048)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _submit(head: HeadProcess, script: str, timeout: int) -> str:
    """``timeout`` must cover the start of everything the test waits for before the kill, on a
    loaded 2-core CI machine too: Open MPI's daemons and ranks took over 3 s there once."""
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    argv = [HPCBATCH, "submit", "--nodes", "2", "--timeout", str(timeout), "--", "sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout.strip()


def _gang_pids(parent: str) -> dict[int, str]:
    """Every live process whose environment names one of ``parent``'s node jobs."""
    wanted = (f"AWS_BATCH_JOB_ID={parent}#".encode(),)
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours
        if any(w in environ for w in wanted) and cmdline:  # a zombie has no cmdline
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _job_of(pid: int) -> str | None:
    environ = Path(f"/proc/{pid}/environ").read_text(errors="replace").split("\0")
    return next((v[17:] for v in environ if v.startswith("AWS_BATCH_JOB_ID=")), None)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_started(head: HeadProcess, parent: str, started: Callable[[], bool], what: str) -> None:
    """Wait for ``started``; fail at once, with the job's story, if the job ended first."""

    def check() -> bool:
        if started():
            return True
        job = head.describe(parent)
        assert job["status"] not in ("SUCCEEDED", "FAILED"), (
            f"{parent} ended before {what}: {job['status']} {job.get('statusReason')}"
        )
        return False

    wait_for(check, 60, what)


def _check_all_killed(head: HeadProcess, parent: str, pid_files: list[Path]) -> None:
    done = head.wait_status(parent, "SUCCEEDED", "FAILED", timeout=30)
    assert done["status"] == "FAILED", done
    assert TIMEOUT_REASON in done.get("statusReason", ""), done.get("statusReason")
    for index in range(2):
        node = head.describe(f"{parent}#{index}")
        assert node["status"] == "FAILED", (index, node.get("statusReason"))
    pids = [int(path.read_text()) for path in pid_files]
    wait_for(lambda: not any(_alive(pid) for pid in pids), 15, f"{pids} to be killed")
    wait_for(lambda: not _gang_pids(parent), 15, f"no process of {parent}: {_gang_pids(parent)}")


def test_a_blocked_main_node_and_its_launched_command_on_node_1_are_killed_by_the_timeout(
    head: HeadProcess, tmp_path: Path
) -> None:
    main_pid, remote_pid = tmp_path / "main.pid", tmp_path / "remote.pid"
    remote = f"echo \\$\\$ > {remote_pid}.tmp && mv {remote_pid}.tmp {remote_pid} && exec sleep 60"
    script = OTHER + f'echo $$ > {main_pid}; "$HPCBATCH_LAUNCHER" "$other" "{remote}"; sleep 60'
    parent = _submit(head, script, timeout=5)
    # both nodes run, and the remote command is in: node 1's job and node 0's launch are live
    _wait_started(head, parent, lambda: remote_pid.exists() and main_pid.exists(), "both pid files")
    launched = int(remote_pid.read_text())
    assert _job_of(launched) == f"{parent}#1"
    assert {_job_of(pid) for pid in _gang_pids(parent)} == {f"{parent}#0", f"{parent}#1"}
    _check_all_killed(head, parent, [main_pid, remote_pid])


def test_an_mpirun_whose_ranks_never_finish_is_killed_on_every_node(
    head: HeadProcess, tmp_path: Path
) -> None:
    if not os.access(OPENMPI, os.X_OK):
        pytest.skip("no Open MPI: scripts/test.sh installs openmpi-bin")
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    rank_file = f"{ranks}/\\$OMPI_COMM_WORLD_RANK"
    rank = f"echo \\$\\$ > {rank_file}.tmp && mv {rank_file}.tmp {rank_file}; exec sleep 60"
    parent = _submit(head, f'{OPENMPI} -n 2 sh -c "{rank}"', timeout=10)
    started = lambda: len([p for p in ranks.iterdir() if p.suffix != ".tmp"]) == 2  # noqa: E731
    _wait_started(head, parent, started, "both ranks to start")
    pids = sorted(ranks.iterdir())  # the ranks are still running: no .tmp is left
    jobs = {_job_of(int(p.read_text())) for p in pids}
    assert jobs == {f"{parent}#0", f"{parent}#1"}, "a rank on each node's job"
    _check_all_killed(head, parent, pids)
