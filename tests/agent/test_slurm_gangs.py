"""The nodes of a multi-node job as the SLURM bridge hands them to Slurm (slurmgangs.py): one
job of N nodes once all N are in hand; its batch script, run by a real shell with stand-ins for
``scontrol`` and ``srun``, finds the allocation's addresses, writes the hostfiles (main node
first) and runs each node's own command with its own variables, log and work directory, each
node's exit status left where the bridge looks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from agent_harness import array_child, attempt_spec
from agent_harness import gang_node as node
from hpcbatch_agent import slurmgangs
from hpcbatch_agent.slurmscript import Target, attempt_of


def test_a_gang_is_submitted_once_every_node_is_in_hand_and_nothing_else_joins_it() -> None:
    waiting: dict[str, slurmgangs.Gang] = {}
    single = attempt_spec("j/1")
    child = array_child("a", 0)
    complete, others = slurmgangs.collect(
        waiting, [node("p", 1, 3), single, node("p", 0, 3), child, node("q", 0, 2)]
    )
    assert complete == [] and others == [single, child]
    assert set(waiting) == {"hb-p#*/1", "hb-q#*/1"}
    assert slurmgangs.waiting_of(waiting, "p#1/1") is waiting["hb-p#*/1"]
    assert slurmgangs.waiting_of(waiting, "p#2/1") is None
    (gang,), others = slurmgangs.collect(waiting, [node("p", 2, 3)])
    assert others == [] and [i for i, _ in gang.ordered()] == [0, 1, 2]
    assert gang.name == "hb-p#*/1" and set(waiting) == {"hb-q#*/1"}
    # a node whose variables contradict its gang's is no part of it
    _, others = slurmgangs.collect(waiting, [node("q", 1, 3)])
    assert [spec["attempt_id"] for spec in others] == ["q#1/1"]
    assert attempt_of(gang.name) == "p#*/1" == slurmgangs.gang_key("p#2/1")


def test_options_ask_slurm_for_n_nodes_of_the_largest_ranges_shape() -> None:
    gang = slurmgangs.Gang("p", "1", 2, 0)
    gang.specs = {
        0: node("p", 0, 2, vcpus=1, memory_mib=100, timeout_s=30),
        1: node("p", 1, 2, vcpus=3, memory_mib=50, gpus=["g0", "g1"], timeout_s=30),
    }
    options = slurmgangs.sbatch_options(gang, Target(("batch",)), "/s/logs/m%.log", "/s/work/g")
    assert options == [
        "--no-requeue", "-J", "hb-p#*/1", "-o", "/s/logs/m\\%.log", "--open-mode=append",
        "-D", "/s/work/g", "-N", "2", "--ntasks-per-node=1", "-c", "3", "-p", "batch",
        "--mem=100M", "--gpus-per-node=2", "--time=2",
    ]  # fmt: skip


FAKE_SCONTROL = """#!/bin/sh
case "$1 $2" in
"show hostnames") printf 'c1\\nc2\\nc3\\n' ;;
"show node") printf 'NodeName=c2 Arch=x NodeAddr=10.0.0.12 NodeHostName=c2\\n'
             printf 'NodeName=c1 Arch=x NodeAddr=10.0.0.11 NodeHostName=c1\\n'
             printf 'NodeName=c3 Arch=x NodeAddr=10.0.0.13 NodeHostName=c3\\n' ;;
esac
"""
# srun's stand-in: its options are recorded, then the command runs once per node, in turn
FAKE_SRUN = """#!/bin/sh
echo "$@" > "$SRUN_ARGS"
while [ "$1" != /bin/sh ]; do shift; done
rc=0
for i in 0 1 2; do SLURM_NODEID=$i "$@" || rc=$?; done
exit $rc
"""


def test_the_scripts_run_every_nodes_own_command_with_the_allocations_addresses(
    tmp_path: Path,
) -> None:
    bin_dir, gang_dir = tmp_path / "bin", tmp_path / "gang"
    for directory in (bin_dir, gang_dir):
        directory.mkdir()
    for name, text in (("scontrol", FAKE_SCONTROL), ("srun", FAKE_SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    show = 'echo "$AWS_BATCH_JOB_ID $HPCBATCH_HOSTS $HPCBATCH_MAIN_NODE $PWD"; exit '
    gang = slurmgangs.Gang("p", "1", 3, 1)
    logs, works = {}, {}
    for i in range(3):
        works[i] = str(tmp_path / f"work{i}")
        os.mkdir(works[i])
        logs[i] = str(tmp_path / f"node{i}.log")
        odd = {"ODD": "it's $HOME"} if i == 2 else {}
        gang.specs[i] = node("p", i, 3, "sh", "-c", show + str(i), main=1, env=odd)
    (gang_dir / slurmgangs.NODES_SCRIPT).write_text(
        slurmgangs.nodes_script(gang, logs, works, str(gang_dir))
    )
    script = slurmgangs.batch_script(gang, str(gang_dir), "pmix")
    env = {
        "PATH": f"{bin_dir}:{os.defpath}",
        "SLURM_JOB_NODELIST": "c[1-3]",
        "SRUN_ARGS": str(tmp_path / "srun.args"),
    }
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr  # srun's: the last failing node's
    assert (tmp_path / "srun.args").read_text().startswith("--mpi=pmix --ntasks-per-node=1 -N 3")
    hosts = "10.0.0.11:1,10.0.0.12:1,10.0.0.13:1"
    for i in range(3):
        said = Path(logs[i]).read_text()
        assert said == f"p#{i} {hosts} 10.0.0.12 {works[i]}\n"
        assert slurmgangs.read_exit(slurmgangs.exit_path(str(gang_dir), i)) == i
    # the main node (1) first, as mpirun wants it, then the others in node order
    assert (gang_dir / "hosts").read_text() == "10.0.0.12\n10.0.0.11\n10.0.0.13\n"
    assert (gang_dir / "hostfile").read_text().splitlines()[0] == "10.0.0.12 slots=1"
    assert (gang_dir / "hostfile.mpich").read_text().splitlines()[2] == "10.0.0.13:1"
    assert slurmgangs.read_exit(str(gang_dir / "exit.9")) is None  # not ended (no file)
    (gang_dir / "exit.8").symlink_to(gang_dir / "exit.2")  # the user's dir: never followed
    assert slurmgangs.read_exit(str(gang_dir / "exit.8")) is None
    os.mkfifo(gang_dir / "exit.7")  # nor waited on
    assert slurmgangs.read_exit(str(gang_dir / "exit.7")) is None
