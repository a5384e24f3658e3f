"""The nodes of one multi-node job, submitted as ONE Slurm job of N nodes (standard library).

The head places a gang on a SLURM compute environment as N node attempts on the bridge, all
launched at once (hpcbatch/core/slurm_gang.py); the bridge hands them to Slurm together:
``sbatch -N N --ntasks-per-node=1``, whose batch script starts one task per node with ``srun``
(``--mpi=pmix`` where Slurm has it: an MPI program run as every node's command is then one
``MPI_COMM_WORLD`` of N ranks). Node ``i`` of the job is Slurm's ``SLURM_NODEID`` ``i``.

Vocabulary:
    node       an attempt ``<parent>#<i>/<number>`` whose environment says so the way the head
               does (``AWS_BATCH_JOB_NODE_INDEX=i``, ``AWS_BATCH_JOB_NUM_NODES=N``).
    gang       the N nodes of one parent and try. The bridge keeps the nodes it has until all
               N are in hand (the head launches them in one message), then submits them.
    name       ``hb-<parent>#*/<number>``: how a restarted bridge finds the job again.
    gang dir   ``<state>/work/<name, quoted>``: the nodes' script, the hostfiles, and each
               node's exit status (``exit.<i>``), on the filesystem the bridge shares with the
               compute nodes (as the logs are).
    batch      runs on the job's first node: reads each allocated node's address
               (``scontrol show hostnames`` for the order, ``scontrol show node -o`` for each
               ``NodeAddr``), writes the hostfiles (main node first, as on every compute
               environment), exports ``HPCBATCH_HOSTS``, ``HPCBATCH_MAIN_NODE``,
               ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``, the hostfiles' paths and
               ``HPCBATCH_NUM_SLOTS``, then ``exec srun``. Its own output (srun's messages)
               goes to the main node's log.
    nodes.sh   what srun runs on each node: that node's log (appended), its work directory,
               its own variables and command (``env --``, as a single attempt's script), and
               then its exit status written to ``exit.<i>``, so the bridge sees a node end
               (the main node's above all) while the others still run.
    resources  Slurm gives every node of one job the same shape: each node asks for the
               largest range's vCPUs, memory and GPUs (``--gpus-per-node``).
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from .hostfiles import FILE_NAMES, HOSTFILE, HOSTFILE_MPICH, HOSTFILE_PLAIN, HOSTS, NUM_SLOTS
from .slurmscript import NAME_PREFIX, Target, backstop_minutes, no_patterns, script_env
from .wiretypes import AttemptSpec

NODE_VAR = "AWS_BATCH_JOB_NODE_INDEX"
NODES_VAR = "AWS_BATCH_JOB_NUM_NODES"
MAIN_VAR = "AWS_BATCH_JOB_MAIN_NODE_INDEX"
MAIN_ADDRESS_VARS = ("HPCBATCH_MAIN_NODE", "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS")
NODE_MARK = "*"
NODES_SCRIPT = "nodes.sh"

# The allocation, from "scontrol show hostnames" (one name a line), a "--" line, then
# "scontrol show node -o" (NodeName=... NodeAddr=...): writes the three hostfiles (main node
# first) and prints "<HPCBATCH_HOSTS> <main node's address>".
_ALLOCATION_AWK = r"""
$0 == "--" { table = 1; next }
!table { order[++n] = $1; next }
{
  name = ""; addr = ""
  for (i = 1; i <= NF; i++) {
    if (index($i, "NodeName=") == 1) name = substr($i, 10)
    else if (index($i, "NodeAddr=") == 1) addr = substr($i, 10)
  }
  if (name != "" && addr != "") address[name] = addr
}
END {
  hosts = ""
  for (i = 1; i <= n; i++) {
    a[i] = (order[i] in address) ? address[order[i]] : order[i]
    hosts = hosts (i > 1 ? "," : "") a[i] ":" slots
  }
  m = main + 1
  for (k = 0; k <= n; k++) {
    i = (k == 0) ? m : k
    if (k > 0 && k == m) continue
    printf "%s slots=%s\n", a[i], slots > (dir "/" openmpi)
    printf "%s:%s\n", a[i], slots > (dir "/" mpich)
    printf "%s\n", a[i] > (dir "/" plain)
  }
  print hosts, a[m]
}
"""


@dataclass
class Gang:
    parent: str
    number: str
    num_nodes: int
    main: int
    specs: dict[int, AttemptSpec] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return gang_name(self.parent, self.number)

    @property
    def complete(self) -> bool:
        return len(self.specs) == self.num_nodes

    def ordered(self) -> list[tuple[int, AttemptSpec]]:
        return sorted(self.specs.items())


def gang_name(parent: str, number: str) -> str:
    return f"{NAME_PREFIX}{parent}#{NODE_MARK}/{number}"


def node_parts(attempt_id: str) -> tuple[str, int, str] | None:
    """``(parent, index, number)`` of a node's attempt id ``<parent>#<i>/<number>``, or None."""
    job, slash, number = attempt_id.rpartition("/")
    parent, hash_, index = job.rpartition("#")
    if not (slash and hash_ and parent and index.isascii() and index.isdigit()):
        return None
    return (parent, int(index), number) if number.isascii() and number.isdigit() else None


def gang_key(attempt_id: str) -> str | None:
    """What ``attempt_of`` reads from the gang's job name, for a node's attempt id."""
    parts = node_parts(attempt_id)
    return None if parts is None else f"{parts[0]}#{NODE_MARK}/{parts[2]}"


def _shape(spec: AttemptSpec) -> tuple[str, int, str, int, int] | None:
    """``(parent, index, number, num_nodes, main)`` of a node of a multi-node job, or None."""
    parts = node_parts(spec["attempt_id"])
    env = spec["env"]
    if parts is None or env.get(NODE_VAR) != str(parts[1]):
        return None
    nodes, main = env.get(NODES_VAR, ""), env.get(MAIN_VAR, "0")
    if not (nodes.isascii() and nodes.isdigit() and main.isascii() and main.isdigit()):
        return None
    if not parts[1] < int(nodes) or not int(main) < int(nodes):
        return None
    return (*parts, int(nodes), int(main))


def collect(
    waiting: dict[str, Gang], specs: Iterable[AttemptSpec]
) -> tuple[list[Gang], list[AttemptSpec]]:
    """Add the nodes among ``specs`` to ``waiting`` (by gang name); the gangs now complete
    (taken out of ``waiting``), and every attempt that is no node, in launch order."""
    others: list[AttemptSpec] = []
    touched: list[str] = []
    for spec in specs:
        shape = _shape(spec)
        if shape is None:
            others.append(spec)
            continue
        parent, index, number, num_nodes, main = shape
        name = gang_name(parent, number)
        gang = waiting.setdefault(name, Gang(parent, number, num_nodes, main))
        if gang.num_nodes != num_nodes or gang.main != main:
            others.append(spec)  # it contradicts its gang: Slurm runs it as a single job
            continue
        gang.specs[index] = spec
        if name not in touched:
            touched.append(name)
    complete = [waiting.pop(name) for name in touched if waiting[name].complete]
    return complete, others


def waiting_of(waiting: dict[str, Gang], attempt_id: str) -> Gang | None:
    """The incomplete gang that holds ``attempt_id``, if any."""
    key = gang_key(attempt_id)
    gang = waiting.get(NAME_PREFIX + key) if key is not None else None
    parts = node_parts(attempt_id)
    if gang is None or parts is None:
        return None
    spec = gang.specs.get(parts[1])
    return gang if spec is not None and spec["attempt_id"] == attempt_id else None


def _largest(gang: Gang) -> tuple[int, int, int]:
    specs = [spec for _, spec in gang.ordered()]
    return (
        max(max(1, spec["vcpus"]) for spec in specs),
        max(spec["memory_mib"] for spec in specs),
        max(len(spec["gpus"]) for spec in specs),
    )


def sbatch_options(gang: Gang, target: Target, main_log: str, gang_dir: str) -> list[str]:
    vcpus, memory_mib, gpus = _largest(gang)
    options = [
        "--no-requeue",
        "-J",
        gang.name,
        "-o",
        no_patterns(main_log),
        "--open-mode=append",  # the main node's own output joins it there (nodes.sh)
        "-D",
        gang_dir,
        "-N",
        str(gang.num_nodes),
        "--ntasks-per-node=1",
        "-c",
        str(vcpus),
        *target.options(),
    ]
    if memory_mib > 0:
        options.append(f"--mem={memory_mib}M")
    if gpus:
        options.append(f"--gpus-per-node={gpus}")
    timeouts = [spec["timeout_s"] for _, spec in gang.ordered()]
    if all(timeout is not None for timeout in timeouts):
        options.append(f"--time={backstop_minutes(max(t for t in timeouts if t is not None))}")
    return options


def batch_script(gang: Gang, gang_dir: str, mpi: str | None) -> str:
    """Runs on the first node: the allocation's addresses and hostfiles, then one srun."""
    vcpus = _largest(gang)[0]
    q = shlex.quote
    awk = ["awk", "-v", f"slots={vcpus}", "-v", f"main={gang.main}", "-v", f"dir={gang_dir}"]
    awk += ["-v", f"openmpi={FILE_NAMES[HOSTFILE]}", "-v", f"mpich={FILE_NAMES[HOSTFILE_MPICH]}"]
    awk += ["-v", f"plain={FILE_NAMES[HOSTFILE_PLAIN]}", _ALLOCATION_AWK]
    srun = ["srun", *([f"--mpi={mpi}"] if mpi else []), "--ntasks-per-node=1"]
    srun += ["-N", str(gang.num_nodes), "-n", str(gang.num_nodes), "--kill-on-bad-exit=0"]
    srun += ["/bin/sh", f"{gang_dir}/{NODES_SCRIPT}"]
    main_vars = " ".join(f'{name}="$2"' for name in MAIN_ADDRESS_VARS)
    paths = " ".join(
        f"{name}={q(gang_dir + '/' + FILE_NAMES[name])}"
        for name in (HOSTFILE, HOSTFILE_MPICH, HOSTFILE_PLAIN)
    )
    lines = [
        "#!/bin/sh",
        f"# hpcbatch: multi-node job {gang.parent}, try {gang.number}: one task per node",
        'nodes="$SLURM_JOB_NODELIST"',
        f'allocation=$({{ scontrol show hostnames "$nodes"; echo --; '
        f'scontrol show node -o "$nodes"; }} | {" ".join(q(w) for w in awk)})',
        "set -- $allocation",
        f'export {HOSTS}="$1" {main_vars} {paths} {NUM_SLOTS}={vcpus * gang.num_nodes}',
        "exec " + " ".join(q(word) for word in srun),
    ]
    return "\n".join(lines) + "\n"


def write_gang_dir(
    gang: Gang,
    logs: dict[int, str],
    works: dict[int, str],
    gang_dir: str,
    owner: tuple[int, int] | None,
) -> None:
    """The gang's dir and its nodes.sh, and each node's own work dir where it has no working
    directory of its own; given to ``owner`` (uid, gid) where the job runs as a user: its
    nodes write their exit files there."""
    os.makedirs(gang_dir, mode=0o700, exist_ok=True)
    for index, spec in gang.ordered():
        if spec["cwd"] is None:
            os.makedirs(works[index], mode=0o700, exist_ok=True)
    script = f"{gang_dir}/{NODES_SCRIPT}"
    with open(script, "w", encoding="utf-8") as out:
        out.write(nodes_script(gang, logs, works, gang_dir))
    if owner is not None:
        for path in (gang_dir, script):
            os.chown(path, *owner, follow_symlinks=False)


def exit_path(gang_dir: str, index: int) -> str:
    return f"{gang_dir}/exit.{index}"


def nodes_script(gang: Gang, logs: dict[int, str], works: dict[int, str], gang_dir: str) -> str:
    """What srun runs on every node: node ``SLURM_NODEID``'s own command, its exit status
    then written where the bridge looks (``exit.<i>``, renamed into place whole)."""
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# hpcbatch: node $SLURM_NODEID of multi-node job {gang.parent}, try {gang.number}",
        'i="$SLURM_NODEID"',
        'case "$i" in',
    ]
    for index, spec in gang.ordered():
        words = ["env", "--", *(f"{k}={v}" for k, v in script_env(spec).items())]
        command = " ".join(q(word) for word in [*words, *spec["command"]])
        lines.append(
            f"{index}) exec >>{q(logs[index])} 2>&1 </dev/null; "
            f"cd -- {q(works[index])} && {command} ;;"
        )
    lines += [
        f'*) echo "hpcbatch: Slurm started node $i of a {gang.num_nodes}-node job" >&2; exit 1 ;;',
        "esac",
        "rc=$?",
        f"out={q(gang_dir)}/exit.$i",
        'printf \'%s\\n\' "$rc" >"$out.new" && mv -f -- "$out.new" "$out"',
        'exit "$rc"',
    ]
    return "\n".join(lines) + "\n"


def read_exit(path: str) -> int | None:
    """A node's exit status as nodes.sh wrote it; None while it has not ended. The gang's dir
    belongs to the job's user: a symlink there is not followed, and no more than a status is
    read (a FIFO or /dev/zero's twin cannot hold the bridge)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 16).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(text) if text.isascii() and text.isdigit() else None


def unfinished_reason(state: str, exit_code: int | None, signal: int | None) -> str:
    """A node whose command never reported its end, in a job Slurm says ended by itself (srun
    could not start it there, say): srun's words are in the main node's log."""
    status = f"signal {signal}" if signal else f"exit code {exit_code}"
    return (
        f"Slurm's job ended {state} ({status}) without this node's command ending: "
        "srun's words are in the main node's log"
    )
