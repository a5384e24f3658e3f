"""The launch client's start: one per remote MPI daemon, on the main node, inside the job's CPU
allowance, so it must start light (issue 8's speed row) and stay isolated (-I) whatever the
job's user puts in its environment or working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from hpcbatch_agent import jobs, launchclient, launchwire
from hpcbatch_agent.bootstrap import package_root

# What the client may import beyond a bare `python -I -S`: the wire and what the wire needs.
HEAVY = {"typing", "secrets", "argparse", "dataclasses", "ipaddress", "pathlib", "zipfile"}
OURS = {"hpcbatch_agent", "hpcbatch_agent.launchclient", "hpcbatch_agent.launchwire"}


def _client(args: list[str], cwd: Path, env: dict[str, str], root: str | None = None):
    argv = launchclient.client_command(sys.executable, root or package_root())
    return subprocess.run([*argv, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=30)  # fmt: skip


def test_the_client_imports_only_the_wire_and_nothing_heavy(tmp_path: Path) -> None:
    probe = "import atexit, sys, json; atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))"
    argv = launchclient.client_command(sys.executable, package_root())
    boot = argv[4]
    argv[4] = probe + "; " + boot
    done = subprocess.run([*argv, "-x", "10.9.9.9", "true"], cwd=tmp_path, env={},
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == launchclient.FAILED  # no gang here: refused, as it must be
    modules = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert {m for m in modules if m.startswith("hpcbatch_agent")} == OURS
    assert not modules & HEAVY, modules & HEAVY
    assert "site" not in modules  # -S


def test_the_client_command_is_isolated_and_siteless() -> None:
    argv = launchclient.client_command("/usr/bin/python3", "/opt/agent.pyz")
    assert argv[:4] == ["/usr/bin/python3", "-I", "-S", "-c"]
    assert argv[5] == "/opt/agent.pyz"


def test_a_planted_package_in_cwd_or_pythonpath_is_never_imported(tmp_path: Path) -> None:
    planted = tmp_path / "hpcbatch_agent"
    planted.mkdir()
    (planted / "__init__.py").write_text("raise SystemExit(77)\n")
    (planted / "launchclient.py").write_text("raise SystemExit(77)\n")
    for shadow in ("socket.py", "json.py", "hmac.py"):  # stdlib names the client imports
        (tmp_path / shadow).write_text("raise SystemExit(77)\n")
    env = {"PYTHONPATH": str(tmp_path), "PYTHONSTARTUP": str(planted / "__init__.py")}
    done = _client(["-x", "10.9.9.9", "true"], tmp_path, env)
    assert done.returncode == launchclient.FAILED, done.stderr
    assert "HPCBATCH_LAUNCH_PEERS" in done.stderr


def test_the_client_runs_from_a_zipapp(tmp_path: Path) -> None:
    pyz = tmp_path / "agent.pyz"
    source = Path(package_root()) / "hpcbatch_agent"
    with zipfile.ZipFile(pyz, "w") as archive:
        for path in source.glob("*.py"):
            archive.write(path, f"hpcbatch_agent/{path.name}")
    env = {launchwire.LAUNCH_PEERS: "10.9.9.8=7000"}
    done = _client(["-x", "10.9.9.9", "true"], tmp_path, env, root=str(pyz))
    assert done.returncode == launchclient.FAILED
    assert "'10.9.9.9' is not a node of this job's allocation" in done.stderr


def test_the_clients_variable_names_are_the_agents() -> None:
    assert launchwire.ATTEMPT_VAR == jobs.ATTEMPT_VAR
    assert os.sep == "/"  # the launcher script and key paths are POSIX paths


def test_the_runner_and_the_served_agent_launch_the_light_client(tmp_path: Path) -> None:
    import selectors

    from hpcbatch_agent import main
    from hpcbatch_agent.runner import Runner
    from hpcbatch_agent.spool import Spool

    runner = Runner(tmp_path, Spool(tmp_path / "spool"), selectors.DefaultSelector(), print)
    assert runner.launcher == launchclient.client_command(sys.executable, package_root())
    assert main._self_path() == package_root()  # a zipapp: its own path (the zipapp test)
