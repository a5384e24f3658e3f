"""A job starts in the working directory its spec names (the submission's), and always has
its private per-attempt directory in HPCBATCH_ATTEMPT_DIR; a directory missing on the host or
closed to the job's user fails the attempt with a reason naming it and the node."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.jobcwd import cwd_problem, enterable
from hpcbatch_agent.users import RunAs

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="jobs as another user need root")
SHOW = 'pwd; echo "$HPCBATCH_ATTEMPT_DIR"'


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path is 0700 root's under root)."""
    path = Path(tempfile.mkdtemp(prefix="hb-workdir-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _lines(done: dict[str, object]) -> list[str]:
    """The job's lines, and the mode and owner of the directory its second line names."""
    lines = Path(str(done["log_path"])).read_text().splitlines()
    if len(lines) == 2:
        info = os.stat(lines[1])
        lines.append(f"{stat.S_IMODE(info.st_mode):o} {pwd.getpwuid(info.st_uid).pw_name}")
    return lines


def test_a_job_starts_in_its_workdir_with_a_private_attempt_dir(
    client: Client, agent: AgentProcess, shared_dir: Path
) -> None:
    (shared_dir / "prepare.sh").write_text("#!/bin/sh\necho prepared in $(pwd)\n")
    (shared_dir / "prepare.sh").chmod(0o755)
    client.send(
        p.launch(
            [
                p.attempt_spec("here/1", ["sh", "-c", SHOW], cwd=str(shared_dir)),
                p.attempt_spec("rel/1", ["./prepare.sh"], cwd=str(shared_dir)),
                p.attempt_spec("auto/1", ["sh", "-c", SHOW]),
            ]
        )
    )
    me = pwd.getpwuid(os.geteuid()).pw_name
    here = _lines(client.wait_state("here/1", p.EXITED))
    work = agent.state_dir.resolve() / "work"
    assert here == [str(shared_dir), str(work / "here%2F1"), f"700 {me}"]
    rel = client.wait_state("rel/1", p.EXITED)
    assert (rel["exit_code"], _lines(rel)) == (0, [f"prepared in {shared_dir}"])
    auto = _lines(client.wait_state("auto/1", p.EXITED))
    assert auto[0] == auto[1] and Path(auto[0]).parent == work
    assert auto[2] == f"700 {me}"


def test_a_missing_workdir_fails_the_attempt_naming_it_and_the_node(
    client: Client, agent: AgentProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "gone" / "away"
    client.send(p.launch([p.attempt_spec("lost/1", ["true"], cwd=str(missing))]))
    failed = client.wait_state("lost/1", p.FAILED_TO_START)
    reason = f"CannotStartContainerError: working directory {missing} does not exist on n1"
    assert (failed["reason"], failed["pid"]) == (reason, None)
    assert Path(failed["log_path"]).read_text() == reason + "\n"
    client.send(p.ack(["lost/1"]))
    client.send(p.launch([p.attempt_spec("after/1", ["true"])]))  # a later one still starts
    client.wait_state("after/1", p.EXITED)
    assert not (agent.state_dir / "work" / "lost%2F1").exists()  # its attempt dir went back


@needs_root
def test_a_job_of_another_user_gets_its_own_attempt_dir_in_a_shared_workdir(
    client: Client, shared_dir: Path
) -> None:
    spec = p.attempt_spec("theirs/1", ["sh", "-c", SHOW], cwd=str(shared_dir), user="nobody")
    client.send(p.launch([spec]))
    done = client.wait_state("theirs/1", p.EXITED)
    lines = _lines(done)
    assert (done["exit_code"], lines[0], lines[2]) == (0, str(shared_dir), "700 nobody")


@needs_root
def test_a_workdir_behind_a_closed_parent_is_refused_for_the_user(
    client: Client, shared_dir: Path
) -> None:
    inner = shared_dir / "closed" / "inner"
    inner.mkdir(parents=True, mode=0o755)
    (shared_dir / "closed").chmod(0o700)  # root's alone: nobody cannot pass it
    client.send(p.launch([p.attempt_spec("shut/1", ["true"], cwd=str(inner), user="nobody")]))
    failed = client.wait_state("shut/1", p.FAILED_TO_START)
    assert failed["reason"] == (
        f"CannotStartContainerError: working directory {inner} cannot be entered by user "
        "nobody on n1"
    )


def _someone(uid: int, gid: int, groups: tuple[int, ...] = ()) -> RunAs:
    return RunAs("someone", uid, gid, (gid, *groups), {}, switch=True)


def test_enterable_reads_the_one_class_of_mode_bits_that_applies(shared_dir: Path) -> None:
    # Every directory above the leaf may be searched by all (/, /tmp, shared_dir).
    assert all(d.stat().st_mode & stat.S_IXOTH for d in [shared_dir, *shared_dir.parents])
    leaf = shared_dir / "leaf"
    leaf.mkdir()
    if os.geteuid() == 0:
        os.chown(leaf, 54322, -1)  # an owner who is not root (root may enter anything)
    info = leaf.stat()
    owner = _someone(info.st_uid, 54321)
    member = _someone(54320, 54321, (info.st_gid,))
    stranger = _someone(54320, 54321)
    cases = {0o700: (True, False, False), 0o710: (True, True, False), 0o601: (False, False, True)}
    for mode, expected in cases.items():
        leaf.chmod(mode)
        got = (
            enterable(str(leaf), owner),
            enterable(str(leaf), member),
            enterable(str(leaf), stranger),
        )
        assert got == expected, oct(mode)
    assert cwd_problem(str(leaf), stranger, "h1") is None  # 0o601: others may search
    leaf.chmod(0o700)
    assert cwd_problem(str(leaf), stranger, "h1") == (
        f"CannotStartContainerError: working directory {leaf} cannot be entered by user "
        "someone on h1"
    )
    assert cwd_problem(str(leaf), None, "h1") is None  # the agent's own user: its chdir decides
    assert cwd_problem("rel/dir", None, "h1") == (
        "CannotStartContainerError: working directory rel/dir is not an absolute path"
    )
