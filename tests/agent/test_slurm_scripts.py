"""What the SLURM bridge hands sbatch (slurmscript.py, slurmarrays.py), run by a real shell:
the script runs the command with the attempt's environment, whatever its names and values
hold; children of one array that differ only in their index become one ``--array`` whose task
id gives each child its own variables and work directory; anything else stays on its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from agent_harness import array_child, attempt_spec
from hpcbatch_agent import slurmarrays
from hpcbatch_agent.slurmscript import (
    Target,
    attempt_of,
    backstop_minutes,
    batch_script,
    sbatch_options,
)


def spec(attempt_id: str, **fields: Any) -> Any:
    return attempt_spec(attempt_id, "printenv", **fields)


def child(parent: str, index: int, number: int = 1, **fields: Any) -> Any:
    return array_child(parent, index, "printenv", number=number, **fields)


def run_script(script: str, cwd: Path, task: int | None = None) -> str:
    env = {"PATH": os.defpath}
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=env, cwd=cwd, check=True
    )
    return done.stdout


def test_a_script_sets_any_variable_and_runs_the_command_without_a_shell_between(
    tmp_path: Path,
) -> None:
    odd = {"A.B": "x y", "QUOTE": 'it\'s "$HOME" `id`', "NL": "a\nb"}
    script = batch_script(spec("j/1", env=odd, command=["printenv", "A.B", "QUOTE", "NL"]))
    assert script.startswith("#!/bin/sh\nexec env -- ")
    assert run_script(script, tmp_path) == 'x y\nit\'s "$HOME" `id`\na\nb\n'


def test_options_name_the_attempt_and_keep_slurm_from_rerunning_or_expanding_the_log() -> None:
    options = sbatch_options(
        spec("j%1/1", vcpus=2, memory_mib=512, timeout_s=61),
        Target(("batch", "debug"), "physics", "long"),
        "/s/logs/j=251=2F1.log",
        "/s/work/j",
    )
    assert options == [
        "--no-requeue", "-J", "hb-j%1/1", "-o", "/s/logs/j=251=2F1.log", "-D", "/s/work/j",
        "-c", "2", "-p", "batch,debug", "-A", "physics", "-q", "long", "--mem=512M",
        "--time=3",
    ]  # fmt: skip
    with_percent = sbatch_options(spec("j/1"), Target(), "/s%x/l.log", "/w")
    assert with_percent[4] == "/s\\%x/l.log"  # a backslash turns Slurm's patterns off
    assert backstop_minutes(0) == 1 and backstop_minutes(60) == 2 and backstop_minutes(61) == 3


def test_names_lead_back_to_attempts_and_array_tasks() -> None:
    assert attempt_of("hb-abc/2") == "abc/2"
    assert attempt_of("hb-abc:_/2", "77_13") == "abc:13/2"
    assert attempt_of("hb-abc:_/2", "77") == "abc:_/2"  # not a task: taken as it is
    assert attempt_of("someone-else") is None


def test_children_differing_only_in_their_index_become_one_array(tmp_path: Path) -> None:
    launch = [child("P", i, env={"X": "1"}) for i in (0, 1, 2, 5)]
    launch.append(child("P", 3, env={"X": "other"}))  # a different child: on its own
    launch.append(child("Q", 0))  # the only one of its array
    launch.append(spec("single/1"))
    arrays, singles = slurmarrays.group(launch)
    assert [(a.parent, a.indexes) for a in arrays] == [("P", [0, 1, 2, 5])]
    assert [s["attempt_id"] for s in singles] == ["P:3/1", "Q:0/1", "single/1"]
    (array,) = arrays
    assert array.name == "hb-P:_/1"
    assert slurmarrays.array_ranges(array.indexes) == "0-2,5"
    assert slurmarrays.array_ranges([9, 1, 2, 3, 7]) == "1-3,7,9"
    for index in (0, 5):
        (tmp_path / f"w{index}x").mkdir()
    script = slurmarrays.array_script(array, (str(tmp_path / "w"), "x"))
    out = run_script(script.replace("printenv", "sh -c 'pwd; printenv'"), tmp_path, task=5)
    lines = out.splitlines()
    assert lines[0] == str(tmp_path / "w5x")
    assert {"AWS_BATCH_JOB_ID=P:5", "AWS_BATCH_JOB_ARRAY_INDEX=5", "X=1"} <= set(lines)


def test_an_attempt_whose_variables_do_not_name_it_is_no_child() -> None:
    lying = spec("P:1/1", env={"AWS_BATCH_JOB_ID": "P:2", "AWS_BATCH_JOB_ARRAY_INDEX": "1"})
    assert slurmarrays.child_parts(lying) is None
    assert slurmarrays.child_parts(child("P", 4, 3)) == ("P", 4, "3")


def test_paths_split_only_where_every_child_fits_the_pattern() -> None:
    paths = {1: "/l/P=3A1=2F1.log", 12: "/l/P=3A12=2F1.log"}
    assert slurmarrays.split_path(paths, "/l/P=3A=40=2F1.log", "=40") == ("/l/P=3A", "=2F1.log")
    assert slurmarrays.split_path({1: "/l/other"}, "/l/P=3A=40=2F1.log", "=40") is None
    assert slurmarrays.split_path(paths, "/=40/=40", "=40") is None
