"""What a job can do to the agent that starts it: nothing runs as root with the job's
environment, jobs inherit no ignored signal and no agent fd, and the job's log is never
reached through a symlink. Through real agent processes; most need a root agent."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import Cgroups

NOBODY = 65534
# Signals 32 and 33 (SIGCANCEL, SIGSETXID), which glibc keeps for itself: its posix_spawn
# sets them to SIG_IGN in every child (glibc 2.36), and glibc installs its own handlers
# when it uses them. No caller can ask otherwise (sigaddset refuses them).
GLIBC_INTERNAL = (1 << 31) | (1 << 32)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="jobs as another user need root")

PRELOAD_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    const char *path = getenv("HB_MARKER");
    FILE *out = path ? fopen(path, "a") : NULL;
    if (out) { fprintf(out, "%d %d\n", (int)getuid(), (int)geteuid()); fclose(out); }
}
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can write (a job running as nobody leaves its marks here)."""
    directory = Path(tempfile.mkdtemp(prefix="hb-spawn-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def agent_popen(
    monkeypatch: pytest.MonkeyPatch, prefix: list[str], pass_fds: tuple[int, ...] = ()
) -> Iterator[None]:
    """While inside, agents start under ``prefix`` and inherit ``pass_fds``."""
    real = subprocess.Popen

    def popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return real([*prefix, *argv], pass_fds=pass_fds, **kwargs)  # type: ignore[call-overload]

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", popen)
        yield


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _uid_lines(path: Path) -> set[str]:
    return set(_lines(path))


@needs_root
def test_ld_preload_runs_only_in_the_job_as_its_user(client: Client, shared_dir: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        if os.environ.get("CI") == "true":  # scripts/test.sh installs gcc: this must run there
            pytest.fail("no C compiler, though scripts/test.sh installs gcc")
        pytest.skip("no C compiler to build the LD_PRELOAD library (the loader test still runs)")
    source = shared_dir / "mark.c"
    source.write_text(PRELOAD_C)
    library = shared_dir / "mark.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    library.chmod(0o755)
    marker = shared_dir / "marker"
    env = {"LD_PRELOAD": str(library), "HB_MARKER": str(marker), "GREETING": "hi"}
    script = 'echo "$GREETING $(id -u) ${LD_PRELOAD##*/}"'
    client.send(p.launch([p.attempt_spec("pre", ["sh", "-c", script], env=env, user="nobody")]))
    done = client.wait_state("pre", p.EXITED)
    assert done["exit_code"] == 0
    assert Path(done["log_path"]).read_text() == f"hi {NOBODY} mark.so\n"
    # sh and id load it as nobody; no process with uid 0 ever did.
    assert _uid_lines(marker) == {f"{NOBODY} {NOBODY}"}


@needs_root
def test_the_loader_acts_on_the_job_env_only_as_the_job_user(
    client: Client, shared_dir: Path
) -> None:
    # No compiler needed: with LD_DEBUG_OUTPUT ld.so writes a file per dynamically linked
    # process that sees the variable, owned by whoever that process runs as.
    prefix = shared_dir / "ld"
    env = {"LD_DEBUG": "statistics", "LD_DEBUG_OUTPUT": str(prefix)}
    client.send(p.launch([p.attempt_spec("dbg", ["sh", "-c", "id -u"], env=env, user="nobody")]))
    done = client.wait_state("dbg", p.EXITED)
    owners = {path.stat().st_uid for path in shared_dir.glob("ld.*")}
    assert owners == {NOBODY}
    assert done["exit_code"] == 0
    assert Path(done["log_path"]).read_text().splitlines()[-1] == str(NOBODY)


@needs_root
def test_bash_functions_in_the_env_never_run_as_root_while_joining_cgroups(
    host: Cgroups, start_agent: Callable[..., AgentProcess], shared_dir: Path, monkeypatch
) -> None:
    # /bin/sh is bash in the agent's own mount namespace, and jobs join their cgroups from
    # their own first process (as every v2 host does).
    bash = os.path.realpath(shutil.which("bash") or "/bin/bash")
    bind = f'mount --bind {bash} {os.path.realpath("/bin/sh")} && exec "$@"'
    with agent_popen(monkeypatch, ["unshare", "--mount", "--", "sh", "-c", bind, "bind"]):
        agent = start_agent("--cgroup-join", "shim")
    client = Client(agent.state_dir)
    client.hello()
    marker = shared_dir / "marker"
    function = f'() {{ builtin echo "$(id -u)" >>{marker}; builtin echo "$@"; }}'
    env = {"BASH_FUNC_echo%%": function, "GREETING": "hi"}
    spec = p.attempt_spec("fn", ["sh", "-c", 'echo "$GREETING"'], env=env, user="nobody")
    client.send(p.launch([{**spec, "memory_mib": 64}]))
    done = client.wait_state("fn", p.EXITED)
    assert (done["exit_code"], Path(done["log_path"]).read_text()) == (0, "hi\n")
    assert _lines(marker) == [str(NOBODY)]  # the job's own bash, as nobody; nothing as root
    client.close()


@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_job_starts_with_default_signals_and_only_fds_0_to_2(
    user: str | None, start_agent: Callable[..., AgentProcess], monkeypatch
) -> None:
    if user is not None and os.geteuid() != 0:
        pytest.skip("jobs as another user need root")
    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, True)
    try:
        with agent_popen(monkeypatch, [], pass_fds=(read_end,)):
            agent = start_agent()
    finally:
        os.close(read_end)
        os.close(write_end)
    client = Client(agent.state_dir)
    client.hello()
    # The job's first process itself reads them (a shell blocks signals while it waits).
    signals = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]
    fds = ["ls", "/proc/self/fd"]
    client.send(
        p.launch(
            [
                p.attempt_spec("sig", signals, user=user),
                p.attempt_spec("fds", fds, user=user),
            ]
        )
    )
    done = client.wait_state("sig", p.EXITED)
    lines = Path(done["log_path"]).read_text().splitlines()
    assert lines[0] == "SigBlk:\t0000000000000000"
    assert lines[1].startswith("SigIgn:\t")
    ignored = int(lines[1].split()[1], 16)
    if user is None:  # posix_spawn: glibc itself leaves its two internal signals ignored
        ignored &= ~GLIBC_INTERNAL
    assert ignored == 0, f"ignored signals: {ignored:#x}"
    done = client.wait_state("fds", p.EXITED)
    listed = Path(done["log_path"]).read_text().split()
    assert sorted(listed) == ["0", "1", "2", "3"]  # 3: the listing's own
    client.close()


@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_symlink_in_place_of_the_log_is_not_followed(
    user: str | None, client: Client, agent: AgentProcess, tmp_path: Path
) -> None:
    if user is not None and os.geteuid() != 0:
        pytest.skip("jobs as another user need root")
    target = tmp_path / "precious"
    target.write_text("keep\n")
    (agent.state_dir / "logs" / "planted.log").symlink_to(target)
    client.send(p.launch([p.attempt_spec("planted", ["echo", "written"], user=user)]))
    failed = client.wait_state("planted", p.FAILED_TO_START)
    assert "cannot open the log" in failed["reason"]
    assert target.read_text() == "keep\n"


def test_the_path_cache_keeps_relative_entries_per_working_directory(
    client: Client, tmp_path: Path
) -> None:
    specs = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        program = directory / "prog"
        program.write_text(f"#!/bin/sh\necho {name}\n")
        program.chmod(0o755)
        env = {"PATH": ".:/usr/bin:/bin"}
        specs.append(p.attempt_spec(f"in-{name}", ["prog"], env=env, cwd=str(directory)))
    client.send(p.launch(specs))
    for name in ("a", "b"):
        done = client.wait_state(f"in-{name}", p.EXITED)
        assert Path(done["log_path"]).read_text() == f"{name}\n"
