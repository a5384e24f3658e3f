"""A real Slurm 22.05 for tests: munged, slurmctld and one slurmd per host of a dev cluster.

The dev cluster (hpcbatch.devcluster) gives the hosts: network namespaces on a bridge. Here:

- **munged** in the root namespace with a fresh key and its own socket; every Slurm daemon and
  client finds it through ``AuthInfo=socket=`` (the namespaces share the filesystem).
- **slurmctld** in the root namespace, on the bridge's address, and one **slurmd** per host,
  started with ``nsenter --net`` (``ip netns exec`` remounts /sys and slurmd dies:
  ../shared/reference/testbed.md), each with its own spool, PMIx temp dir and ``TmpFS`` (where
  ``srun --mpi=pmix`` makes each step's client dir: in a shared /tmp the nodes' collide).
- no accounting (``accounting_storage/none``), ``proctrack/linuxproc`` (no cgroups), jobs as root.
- ``GPUS`` GPUs per host in ``gres.conf``, their device files character devices like
  /dev/null's: Slurm allocates and accounts them and sets ``CUDA_VISIBLE_DEVICES``, as on a GPU
  cluster, with no GPU in sight.

Clients (sbatch, squeue, ...) need ``SLURM_CONF``: ``SlurmCluster.env`` holds it. Every process
is stopped by its PID at ``stop``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hpcbatch_agent.slurmlib import API_VAR

from hpcbatch.devcluster import DevCluster
from hpcbatch.devcluster.processes import cmdline, signal_all, spawn, stop, wait_gone
from tests.head.headproc import wait_for
from tests.slurm.slurmdbd import Accounting

CPUS = 2  # each dev host declares 2 CPUs to Slurm (as to hpcbatch's SSH hosts)
MEMORY_MIB = 1024
GPUS = 2  # each host's gres/gpu (device files that are /dev/null's twins: nothing to bind)
PARTITION = "batch"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sacct", "scancel")

SLURM_CONF = """\
ClusterName=hb
SlurmctldHost={ctl_host}({ctl_address})
MailProg=/bin/true
SlurmctldPort={ctl_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={dir}/ctld
SlurmdSpoolDir={dir}/nodes/%n/spool
TmpFS={dir}/nodes/%n/tmp
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/nodes/%n/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/nodes/%n/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
{accounting}JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdTimeout=10
GresTypes=gpu
InactiveLimit=0
MinJobAge={min_job_age}
KillWait=2
SlurmctldTimeout=30
{nodes}
PartitionName={partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def require_slurm() -> None:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing: scripts/test.sh installs slurm-wlm, munge")
        pytest.skip(f"Slurm is not installed (apt-get install slurm-wlm munge): {missing}")


@dataclass
class SlurmCluster:
    cluster: DevCluster
    dir: Path
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)  # daemon ("slurmd h1") -> PID
    accounting: Accounting | None = None

    @classmethod
    def start(
        cls,
        cluster: DevCluster,
        directory: Path,
        ctl_port: int,
        node_port: int,
        accounting: bool = False,
        min_job_age: int = 300,
    ) -> SlurmCluster:
        """``accounting``: with a slurmdbd (slurmdbd.py), else none; ``min_job_age``: how
        long slurmctld remembers an ended job (seconds)."""
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # munged refuses a socket dir others may write
        key = directory / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        nodes = "\n".join(
            f"NodeName={h.name} NodeAddr={h.address} CPUs={CPUS} RealMemory={MEMORY_MIB} "
            f"Gres=gpu:{GPUS} State=UNKNOWN"
            for h in cluster.hosts
        )
        # GPUs as Slurm sees them: device files (copies of /dev/null's char device) in gres.conf
        # beside slurm.conf; Slurm allocates them and sets CUDA_VISIBLE_DEVICES, nothing binds
        for index in range(GPUS):
            device = directory / f"gpu{index}"
            if not device.exists():
                os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        gres = f"Name=gpu File={directory}/gpu[0-{GPUS - 1}]\n"
        (directory / "gres.conf").write_text(gres)
        conf = directory / "slurm.conf"
        books = Accounting(directory / "dbd", directory / "munge.sock") if accounting else None
        conf.write_text(
            SLURM_CONF.format(
                ctl_host=socket.gethostname().split(".")[0],  # slurmctld must be on it
                ctl_address=cluster.descriptor.bridge_address,
                ctl_port=ctl_port,
                node_port=node_port,
                munge_socket=directory / "munge.sock",
                dir=directory,
                nodes=nodes,
                partition=PARTITION,
                accounting=(
                    books.slurm_conf_lines()
                    if books
                    else "AccountingStorageType=accounting_storage/none\n"
                ),
                min_job_age=min_job_age,
            )
        )
        (directory / "ctld").mkdir(exist_ok=True)
        # the CLI tests read Slurm through its CLI even where pyslurm is installed
        env = {**os.environ, "SLURM_CONF": str(conf), API_VAR: "cli"}
        slurm = cls(cluster, directory, env, accounting=books)
        try:
            slurm._start_daemons()
        except BaseException:
            slurm.stop()
            raise
        return slurm

    def _start_daemons(self) -> None:
        d = self.dir
        self.pids["munged"] = spawn(
            [
                "munged", "-F", "-f", f"--key-file={d / 'munge.key'}",
                f"--socket={d / 'munge.sock'}", f"--pid-file={d / 'munged.pid'}",
                f"--log-file={d / 'munged.log'}", f"--seed-file={d / 'munged.seed'}",
            ],
            d / "munged.out",
        ).pid  # fmt: skip
        wait_for(lambda: (d / "munge.sock").exists(), 10, f"munged's socket (see {d}/munged.out)")
        if self.accounting is not None:
            self.accounting.start("hb", self.env)
        self.start_controller()
        for host in self.cluster.hosts:
            self.start_slurmd(host.name)
        wait_for(self.all_idle, 30, f"every node idle in Slurm (see {d}/slurmctld.log)")

    def start_controller(self) -> None:
        d = self.dir
        self.pids["slurmctld"] = spawn(
            ["slurmctld", "-D", "-i", "-f", str(d / "slurm.conf")], d / "slurmctld.out"
        ).pid

    def stop_controller(self) -> None:
        stop([self.pids.pop("slurmctld")])

    def start_slurmd(self, name: str) -> None:
        d = self.dir
        host = next(h for h in self.cluster.hosts if h.name == name)
        node_dir = d / "nodes" / host.name
        (node_dir / "spool").mkdir(parents=True, exist_ok=True)
        (node_dir / "pmix").mkdir(exist_ok=True)
        (node_dir / "tmp").mkdir(exist_ok=True)  # TmpFS: srun --mpi=pmix's per-step dirs
        argv = [
            "nsenter", f"--net=/run/netns/{host.namespace}",
            "env", f"SLURM_CONF={d / 'slurm.conf'}", f"PMIX_SERVER_TMPDIR={node_dir / 'pmix'}",
            "slurmd", "-D", "-N", host.name, "-f", str(d / "slurm.conf"),
        ]  # fmt: skip
        self.pids[f"slurmd {host.name}"] = spawn(argv, node_dir / "slurmd.out").pid

    def fail_node(self, name: str) -> None:
        """The node dies as a machine would: its slurmd and everything it ran, killed (the
        controller declares it DOWN after SlurmdTimeout, and its jobs NODE_FAIL)."""
        host = next(h for h in self.cluster.hosts if h.name == name)
        doomed = [self.pids.pop(f"slurmd {name}")]
        doomed += [
            pid
            for pid in pids_in_namespaces([host.namespace])
            if pid != host.sshd_pid and not is_agent(pid)
        ]
        signal_all(doomed, signal.SIGKILL)  # no SIGTERM: a slurmstepd would end its job cleanly
        wait_gone(doomed, 10)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, check=check, timeout=30
        )

    def node_states(self) -> dict[str, str]:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def all_idle(self) -> bool:
        states = self.node_states()
        return len(states) == len(self.cluster.hosts) and set(states.values()) == {"idle"}

    def stop(self) -> None:
        """The slurmds, then whatever still runs in the hosts' namespaces (slurmstepd outlives
        its slurmd, and the jobs with it; sshd and agents are the dev cluster's to stop), then
        the controller, then munged: each by its PID."""
        stop([self.pids.pop(k) for k in list(self.pids) if k.startswith("slurmd ")])
        namespaces = [h.namespace for h in self.cluster.hosts]
        sshds = {h.sshd_pid for h in self.cluster.hosts}
        stop(
            [
                pid
                for pid in pids_in_namespaces(namespaces)
                if pid not in sshds and not is_agent(pid)
            ]
        )
        pid = self.pids.pop("slurmctld", None)
        if pid is not None:
            stop([pid])
        if self.accounting is not None:
            self.accounting.stop()
        pid = self.pids.pop("munged", None)
        if pid is not None:
            stop([pid])


def pids_in_namespaces(namespaces: list[str]) -> list[int]:
    """Every process in one of these network namespaces (slurmstepd and the jobs it ran)."""
    inodes = set()
    for name in namespaces:
        try:
            inodes.add(os.stat(f"/run/netns/{name}").st_ino)
        except OSError:
            continue
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def is_agent(pid: int) -> bool:
    return any("hpcbatch" in part for part in cmdline(pid))
