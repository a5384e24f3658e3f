"""``DevCluster``: bring a dev cluster up, look at it, cut hosts off, and take it all down.

``up`` plans every name first (``descriptor.plan``), makes its directory (root's alone:
``ownership.py``), writes the descriptor, then makes the network, the keys and the sshds, and
rolls everything back if any step fails. ``down`` does not trust the descriptor alone: it acts
only on a descriptor whose names and paths are its own (``descriptor.not_its_own``) in a
directory only root can change, and finds what belongs to the cluster by its prefix
(namespaces, links) and by the sshd command lines that name its files, so a half-built
cluster goes too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from hpcbatch.devcluster import descriptor as desc
from hpcbatch.devcluster import disks, keys, naming, network, ownership, processes, sshd
from hpcbatch.devcluster.descriptor import Descriptor, DevHost
from hpcbatch.devcluster.errors import DevClusterError

READY_TIMEOUT = 10.0
REACH_TIMEOUT = 0.5
REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "ssh-keygen", "mount", "hostname")


class DevCluster:
    def __init__(self, descriptor: Descriptor, runner: network.Runner | None = None) -> None:
        self.descriptor = descriptor
        self.runner = runner or network.Runner()

    # -- what it is ------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return self.descriptor.base_dir

    @property
    def prefix(self) -> str:
        return self.descriptor.prefix

    @property
    def subnet(self) -> str:
        return self.descriptor.subnet

    @property
    def bridge(self) -> str:
        return self.descriptor.bridge

    @property
    def hosts(self) -> list[DevHost]:
        return list(self.descriptor.hosts)

    @property
    def key_path(self) -> Path:
        return self.descriptor.key_path

    @property
    def known_hosts_path(self) -> Path:
        return self.descriptor.known_hosts_path

    def host(self, name: str) -> DevHost:
        for host in self.descriptor.hosts:
            if name in (host.name, host.namespace):
                return host
        raise DevClusterError(f"no host {name!r} in dev cluster {self.prefix}")

    def head_config(self, ce_name: str = "devcluster") -> str:
        return desc.head_config(self.descriptor.hosts, ce_name)

    # -- up ------------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        base_dir: Path,
        hosts: int = 4,
        prefix: str | None = None,
        disk_mib: int = disks.DEFAULT_MIB,
    ) -> DevCluster:
        """Build ``hosts`` hosts in ``base_dir``, each with its own ``disk_mib`` MiB disk
        (0: none; where the machine cannot make one, none, and ``disk_problem`` says why)."""
        base_dir = Path(base_dir).absolute()
        reasons = [naming.check_host_count(hosts), sshd.unsafe_path_reason(base_dir)]
        reasons.append(network.alias_problem(str(base_dir)))
        reasons.append(disks.check_size(disk_mib))
        reasons.append(None if prefix is None else naming.check_prefix(prefix))
        for reason in reasons:
            if reason:
                raise DevClusterError(reason)
        check_can_run()
        if os.path.lexists(base_dir):
            ownership.check_private_dir(base_dir)
            refuse_occupied(base_dir)
        runner = network.Runner()
        prefix = pick_prefix(prefix, runner)
        taken = naming.routed_networks(runner.output(network.routes_argv()))
        subnet = naming.choose_subnet(prefix, taken)
        created_dir = ownership.make_private_dir(base_dir)
        plan = desc.plan(base_dir, prefix, subnet, hosts, created_dir, disk_mib)
        desc.claim(plan)
        cluster = cls(plan, runner)
        try:
            cluster._build(subnet)
        except BaseException:
            cluster._roll_back()
            raise
        return cluster

    @classmethod
    def load(cls, base_dir: Path) -> DevCluster:
        return cls(desc.load(Path(base_dir).absolute()))

    def _build(self, subnet: IPv4Network) -> None:
        self._make_network(subnet)
        self._make_disks()
        self._write_files()
        procs = self._start_sshds()
        self.descriptor = self.descriptor.with_pids({n: p.pid for n, p in procs.items()})
        desc.save(self.descriptor)
        self._wait_ready(procs)
        self.descriptor = dataclasses.replace(self.descriptor, state="ready")
        desc.save(self.descriptor)
        (self.base_dir / desc.HEAD_CONFIG).write_text(self.head_config())

    def _make_network(self, subnet: IPv4Network) -> None:
        d = self.descriptor
        argvs = network.bridge_argvs(d.bridge, IPv4Address(d.bridge_address), subnet)
        argvs.append(network.alias_argv(d.bridge, str(d.base_dir)))  # whose prefix this is
        for host in d.hosts:
            argvs += network.host_argvs(
                host.namespace, host.veth, d.bridge, IPv4Address(host.address), subnet
            )
        for argv in argvs:
            self.runner.run(argv)

    def _make_disks(self) -> None:
        """Every host its own disk, or (if any cannot have one) none of them."""
        d = self.descriptor
        wanted = [h for h in d.hosts if h.disk_image is not None]
        if not wanted:
            return

        def make(host: DevHost) -> str | None:
            assert host.disk_image is not None
            mountpoint = host.host_dir / disks.MOUNT_DIR
            return disks.make(self.runner, host.disk_image, mountpoint, d.disk_mib, host.name)

        with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
            problems = [p for p in pool.map(make, wanted) if p is not None]
        if problems:
            stuck = disks.unmount_all(self.runner, self.base_dir / desc.HOSTS_DIR)
            if stuck:
                raise DevClusterError(f"cannot unmount {', '.join(stuck)}")
            for host in wanted:
                assert host.disk_image is not None
                host.disk_image.unlink(missing_ok=True)
            self.descriptor = d.without_disks(f"no disk of their own: {problems[0]}")
            desc.save(self.descriptor)

    def _write_files(self) -> None:
        d = self.descriptor
        for host in d.hosts:
            host.agent_state_dir.mkdir(parents=True, exist_ok=True)
        keys.generate(
            [(d.key_path, f"hpcbatch-devcluster-{d.prefix}")]
            + [(sshd_files(d, h).host_key, h.name) for h in d.hosts]
        )
        client_key = keys.public_key(d.key_path)
        (d.base_dir / desc.EMPTY_FILE).write_text("")
        entries = [(h.address, h.port, keys.public_key(sshd_files(d, h).host_key)) for h in d.hosts]
        d.known_hosts_path.write_text(keys.known_hosts_text(entries))
        for host in d.hosts:
            files = sshd_files(d, host)
            address = IPv4Address(host.address)
            text = sshd.sshd_config(host.name, address, host.port, files, client_key)
            files.config.write_text(text)
            fd = os.open(files.authorized_keys, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)

    def _start_sshds(self) -> dict[str, subprocess.Popen[bytes]]:
        os.makedirs(sshd.PRIVSEP_DIR, mode=0o755, exist_ok=True)
        procs = {}
        empty = self.base_dir / desc.EMPTY_FILE
        for host in self.descriptor.hosts:
            files = sshd_files(self.descriptor, host)
            argv = sshd.start_argv(host.name, network.netns_path(host.namespace), files, empty)
            procs[host.name] = processes.spawn(argv, files.log)
        return procs

    def _wait_ready(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        """Poll until every sshd has written its pid file (it does so once it listens) and
        accepts a connection through the bridge, or fail naming the host and its log."""
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = {h.name: h for h in self.descriptor.hosts}
        while waiting:
            for name, host in list(waiting.items()):
                files = sshd_files(self.descriptor, host)
                if procs[name].poll() is not None:
                    raise DevClusterError(
                        f"sshd of {name} exited {procs[name].returncode}: {log_tail(files.log)}"
                    )
                if files.pid_file.exists() and reachable(host.address, host.port):
                    del waiting[name]
            if waiting and time.monotonic() > deadline:
                raise DevClusterError(
                    f"sshd did not answer within {READY_TIMEOUT:.0f} s on: {', '.join(waiting)}"
                )
            if waiting:
                time.sleep(processes.POLL_INTERVAL)

    def _roll_back(self) -> None:
        try:
            self.down()
        except Exception as exc:  # the original failure matters more; say what is left
            sys.stderr.write(f"hpcbatch dev-cluster: rolling back failed too: {exc}\n")

    # -- down ----------------------------------------------------------------------------

    def down(self) -> None:
        """Stop every process of every host, delete links and namespaces, remove the files;
        safe to repeat. Raises if something could not be removed (and says what), and before
        removing anything if the descriptor names what is not its own or its directory could
        be changed by someone other than root."""
        self._check_own()
        survivors = processes.stop(self._pids())
        for link in self._links():
            self.runner.run(network.delete_link_argv(link), check=False)
        for namespace in self._namespaces():
            self.runner.run(network.delete_netns_argv(namespace), check=False)
        mounted = disks.unmount_all(self.runner, self.base_dir / desc.HOSTS_DIR)
        if not mounted:  # never delete through a mount that is still there
            self._remove_files()
        left = [f"mount {point}" for point in mounted]
        left += [f"process {pid}" for pid in survivors]
        left += [f"link {name}" for name in self._links()]
        left += [f"namespace {name}" for name in self._namespaces()]
        if left:
            raise DevClusterError(f"dev cluster {self.prefix}: could not remove {', '.join(left)}")

    def _check_own(self) -> None:
        problem = desc.not_its_own(self.descriptor, self.base_dir)
        if problem:
            raise DevClusterError(
                f"dev cluster {self.prefix}: {problem}; refusing to remove anything"
            )
        if os.path.lexists(self.base_dir):
            ownership.check_private_dir(self.base_dir)
        aliases = network.link_aliases(self.runner.output(network.links_argv()))
        owner = aliases.get(self.bridge)
        if owner is not None and owner != str(self.base_dir):
            raise DevClusterError(
                f"prefix {self.prefix} belongs to the dev cluster in {owner} (its bridge "
                f"{self.bridge} says so), not to {self.base_dir}; refusing to remove anything"
            )

    def _pids(self) -> set[int]:
        """Every process on the cluster's hosts: its sshds (recorded, from pid files, and by
        the config path in their argv, each checked against its argv) and whatever else runs
        in its namespaces (ssh sessions, agents, jobs)."""
        d = self.descriptor
        every_files = [sshd_files(d, host) for host in d.hosts]
        pids: set[int] = set()
        for host, files in zip(d.hosts, every_files, strict=True):
            for pid in (host.sshd_pid, read_pid(files.pid_file)):
                if pid is not None and sshd.is_our_sshd(processes.cmdline(pid), files):
                    pids.add(pid)
        pids.update(processes.find(functools.partial(is_sshd_of_any, every_files)))
        for namespace in self._namespaces():
            listed = self.runner.run(network.netns_pids_argv(namespace), check=False).stdout
            pids.update(int(pid) for pid in listed.split() if pid.isdigit())
        pids.discard(os.getpid())
        return pids

    def _links(self) -> list[str]:
        names = network.link_names(self.runner.output(network.links_argv()))
        return [name for name in names if naming.owns_name(self.prefix, name)]

    def _namespaces(self) -> list[str]:
        return [ns for ns in network.namespace_names() if naming.owns_name(self.prefix, ns)]

    def _remove_files(self) -> None:
        base = self.base_dir
        shutil.rmtree(base / desc.HOSTS_DIR, ignore_errors=True)
        for name in (*desc.TOP_LEVEL_FILES, desc.DESCRIPTOR + ".tmp"):
            (base / name).unlink(missing_ok=True)
        if self.descriptor.created_dir:
            with contextlib.suppress(OSError):  # gone already, or someone else's files are there
                base.rmdir()

    # -- looking at it and breaking it ----------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per host: name, namespace, address, port, sshd_pid, alive (that sshd runs),
        reachable (its port 22 answers from the root namespace), link ("up"/"down"), disk
        ("own": its disk is mounted; "missing": it should be but is not; "none")."""
        hosts = self.descriptor.hosts
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(hosts)))) as pool:
            answers = list(pool.map(lambda h: reachable(h.address, h.port, REACH_TIMEOUT), hosts))
        links = set(self._links())
        return [
            {
                "name": h.name,
                "namespace": h.namespace,
                "address": h.address,
                "port": h.port,
                "sshd_pid": h.sshd_pid,
                "alive": h.sshd_pid is not None
                and processes.is_alive(h.sshd_pid)
                and sshd.is_our_sshd(processes.cmdline(h.sshd_pid), sshd_files(self.descriptor, h)),
                "reachable": answer,
                "link": link_state(h.veth, links),
                "disk": disk_state(h),
            }
            for h, answer in zip(hosts, answers, strict=True)
        ]

    def link_down(self, host: str) -> None:
        """Cut ``host`` off the bridge (a pulled cable: packets to and from it are dropped)."""
        self.runner.run(network.link_state_argv(self.host(host).veth, up=False))

    def link_up(self, host: str) -> None:
        self.runner.run(network.link_state_argv(self.host(host).veth, up=True))

    def run(
        self, host: str, argv: list[str], timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host``'s network namespace (only that: same filesystem, same
        hostname as the caller), capturing its output as text."""
        path = network.netns_path(self.host(host).namespace)
        return subprocess.run(
            ["nsenter", f"--net={path}", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )


def sshd_files(d: Descriptor, host: DevHost) -> sshd.SshdFiles:
    return sshd.SshdFiles.in_dir(host.host_dir)


def is_sshd_of_any(every_files: list[sshd.SshdFiles], argv: list[str]) -> bool:
    return any(sshd.is_our_sshd(argv, files) for files in every_files)


def check_can_run() -> None:
    if not sys.platform.startswith("linux"):
        raise DevClusterError(f"dev-cluster needs Linux (network namespaces), not {sys.platform}")
    if os.geteuid() != 0:
        raise DevClusterError(
            "dev-cluster needs root: it creates network namespaces, a bridge and veth pairs "
            "and starts sshd (run it as root, e.g. with sudo)"
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    missing += [path for path in (sshd.SSHD, sshd.KEYS_COMMAND) if not os.access(path, os.X_OK)]
    try:
        pwd.getpwnam(sshd.KEYS_COMMAND_USER)
    except KeyError:
        missing.append(f"a user {sshd.KEYS_COMMAND_USER!r} (sshd's AuthorizedKeysCommandUser)")
    if missing:
        raise DevClusterError(
            f"dev-cluster needs {', '.join(missing)}; on Debian: "
            "apt-get install openssh-server openssh-client iproute2 util-linux"
        )


def refuse_occupied(base_dir: Path) -> None:
    if (base_dir / desc.DESCRIPTOR).exists():
        raise desc.already_holds_cluster(base_dir)
    leftovers = [n for n in (*desc.TOP_LEVEL_FILES, desc.HOSTS_DIR) if (base_dir / n).exists()]
    if leftovers:
        raise DevClusterError(
            f"{base_dir} holds files of a dev cluster ({', '.join(leftovers)}) but no "
            f"{desc.DESCRIPTOR}: remove them or choose another --dir"
        )


def pick_prefix(prefix: str | None, runner: network.Runner) -> str:
    in_use = network.link_names(runner.output(network.links_argv())) + network.namespace_names()

    def used(candidate: str) -> bool:
        return any(naming.owns_name(candidate, name) for name in in_use)

    if prefix is not None:
        if used(prefix):
            raise DevClusterError(f"prefix {prefix!r} is in use by another dev cluster here")
        return prefix
    for _ in range(100):
        candidate = naming.random_prefix()
        if not used(candidate):
            return candidate
    raise DevClusterError("could not find an unused prefix")


def link_state(link: str, existing: set[str]) -> str:
    """``up``, ``down`` (set down, e.g. by ``link_down``) or ``missing``."""
    if link not in existing:
        return "missing"
    try:
        flags = int(Path(f"/sys/class/net/{link}/flags").read_text(), 16)
    except (OSError, ValueError):
        return "missing"
    return "up" if flags & 0x1 else "down"  # IFF_UP


def disk_state(host: DevHost) -> str:
    if host.disk_image is None:
        return "none"
    return "own" if disks.is_mounted(host.host_dir / disks.MOUNT_DIR) else "missing"


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def reachable(address: str, port: int, timeout: float = REACH_TIMEOUT) -> bool:
    """Whether something accepts a TCP connection at ``address:port`` from here."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
