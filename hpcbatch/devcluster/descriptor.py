"""What a dev cluster is, on disk: ``DIR/cluster.json``, and the head configuration it implies.

Vocabulary: a ``DevHost`` is one compute host (a network namespace with its own sshd); the
``Descriptor`` is the whole cluster as ``up`` planned it and ``down`` needs it. The descriptor
is written before the first namespace exists (``state: "building"``) and rewritten once every
sshd answers (``state: "ready"``), so ``down`` can remove a cluster whose ``up`` died midway.
The file layout and the TOML text are built by pure functions.

``down`` deletes, as root, what the descriptor names, so ``load`` trusts it only when the
directory and the file can be changed by root alone (``ownership.py``), and ``not_its_own``
checks that every name and path in it is exactly what ``plan`` gives for its own prefix in its
own directory (nothing outside the directory, no namespace or link of another prefix).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from hpcbatch.devcluster import disks, naming, ownership
from hpcbatch.devcluster.errors import DevClusterError

DESCRIPTOR_VERSION = 1
DESCRIPTOR = "cluster.json"
HEAD_CONFIG = "head-ce.toml"
CLIENT_KEY = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
EMPTY_FILE = "empty"  # bind-mounted over /root/.bashrc inside each host
HOSTS_DIR = "hosts"
# Everything ``up`` writes at the top of DIR (``hosts/`` holds the rest).
TOP_LEVEL_FILES = (
    DESCRIPTOR,
    HEAD_CONFIG,
    CLIENT_KEY,
    CLIENT_KEY + ".pub",
    KNOWN_HOSTS,
    EMPTY_FILE,
)
SSH_PORT = 22
SSH_USER = "root"


@dataclass(frozen=True)
class DevHost:
    name: str
    namespace: str
    address: str
    port: int
    user: str
    key_path: Path
    known_hosts_path: Path
    agent_state_dir: Path
    sshd_pid: int | None
    veth: str  # its end of the veth pair in the root namespace, on the bridge
    host_dir: Path  # DIR/hosts/<name>: host key, sshd_config, sshd.pid, sshd.log, agent state
    disk_image: Path | None = None  # its own disk (disks.py), mounted on host_dir/disk


@dataclass(frozen=True)
class Descriptor:
    base_dir: Path
    prefix: str
    subnet: str
    bridge: str
    bridge_address: str
    key_path: Path
    known_hosts_path: Path
    created_dir: bool  # ``up`` made base_dir, so ``down`` removes it (when empty)
    hosts: tuple[DevHost, ...] = field(default_factory=tuple)
    state: str = "building"
    disk_mib: int = 0  # each host's own disk (0: none asked for)
    disk_problem: str | None = None  # why the hosts have no disk of their own after all

    def without_disks(self, problem: str) -> Descriptor:
        """The hosts keep their state on the cluster's filesystem instead."""
        hosts = tuple(
            replace(h, disk_image=None, agent_state_dir=h.host_dir / "agent") for h in self.hosts
        )
        return replace(self, hosts=hosts, disk_problem=problem)

    def with_pids(self, pids: dict[str, int]) -> Descriptor:
        hosts = tuple(replace(h, sshd_pid=pids.get(h.name, h.sshd_pid)) for h in self.hosts)
        return replace(self, hosts=hosts)


def plan(
    base_dir: Path,
    prefix: str,
    subnet: IPv4Network,
    hosts: int,
    created_dir: bool,
    disk_mib: int = 0,
) -> Descriptor:
    """Every name, address and path of a cluster, before anything is made."""
    key_path = base_dir / CLIENT_KEY
    known_hosts_path = base_dir / KNOWN_HOSTS
    planned = []
    for index in range(1, hosts + 1):
        name = naming.host_name(prefix, index)
        host_dir = base_dir / HOSTS_DIR / name
        state_dir = host_dir / disks.MOUNT_DIR / "agent" if disk_mib else host_dir / "agent"
        planned.append(
            DevHost(
                name=name,
                namespace=name,
                address=str(naming.host_address(subnet, index)),
                port=SSH_PORT,
                user=SSH_USER,
                key_path=key_path,
                known_hosts_path=known_hosts_path,
                agent_state_dir=state_dir,
                sshd_pid=None,
                veth=naming.veth_name(prefix, index),
                host_dir=host_dir,
                disk_image=host_dir / disks.IMAGE if disk_mib else None,
            )
        )
    return Descriptor(
        base_dir=base_dir,
        prefix=prefix,
        subnet=str(subnet),
        bridge=naming.bridge_name(prefix),
        bridge_address=str(naming.bridge_address(subnet)),
        key_path=key_path,
        known_hosts_path=known_hosts_path,
        created_dir=created_dir,
        hosts=tuple(planned),
        disk_mib=disk_mib,
    )


def to_json(descriptor: Descriptor) -> str:
    document: dict[str, Any] = {
        "version": DESCRIPTOR_VERSION,
        "state": descriptor.state,
        "prefix": descriptor.prefix,
        "subnet": descriptor.subnet,
        "bridge": descriptor.bridge,
        "bridge_address": descriptor.bridge_address,
        "base_dir": str(descriptor.base_dir),
        "created_dir": descriptor.created_dir,
        "disk_mib": descriptor.disk_mib,
        "disk_problem": descriptor.disk_problem,
        "key_path": str(descriptor.key_path),
        "known_hosts_path": str(descriptor.known_hosts_path),
        "head_config_path": str(descriptor.base_dir / HEAD_CONFIG),
        "hosts": [
            {
                "name": h.name,
                "namespace": h.namespace,
                "address": h.address,
                "port": h.port,
                "user": h.user,
                "agent_state_dir": str(h.agent_state_dir),
                "sshd_pid": h.sshd_pid,
                "veth": h.veth,
                "host_dir": str(h.host_dir),
                "disk_image": None if h.disk_image is None else str(h.disk_image),
            }
            for h in descriptor.hosts
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def from_json(text: str) -> Descriptor:
    document = json.loads(text)
    if document.get("version") != DESCRIPTOR_VERSION:
        raise ValueError(f"unknown descriptor version {document.get('version')!r}")
    key_path = Path(document["key_path"])
    known_hosts_path = Path(document["known_hosts_path"])
    hosts = tuple(
        DevHost(
            name=h["name"],
            namespace=h["namespace"],
            address=h["address"],
            port=int(h["port"]),
            user=h["user"],
            key_path=key_path,
            known_hosts_path=known_hosts_path,
            agent_state_dir=Path(h["agent_state_dir"]),
            sshd_pid=h["sshd_pid"],
            veth=h["veth"],
            host_dir=Path(h["host_dir"]),
            disk_image=Path(h["disk_image"]) if h.get("disk_image") else None,
        )
        for h in document["hosts"]
    )
    return Descriptor(
        base_dir=Path(document["base_dir"]),
        prefix=document["prefix"],
        subnet=document["subnet"],
        bridge=document["bridge"],
        bridge_address=document["bridge_address"],
        key_path=key_path,
        known_hosts_path=known_hosts_path,
        created_dir=bool(document["created_dir"]),
        hosts=hosts,
        state=document["state"],
        disk_mib=int(document.get("disk_mib") or 0),
        disk_problem=document.get("disk_problem"),
    )


def claim(descriptor: Descriptor) -> None:
    """Write the first descriptor, failing if DIR already holds one (two ``up``s racing for one
    directory: exactly one wins)."""
    path = descriptor.base_dir / DESCRIPTOR
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise already_holds_cluster(descriptor.base_dir) from None
    with os.fdopen(fd, "w") as out:
        out.write(to_json(descriptor))


def save(descriptor: Descriptor) -> None:
    path = descriptor.base_dir / DESCRIPTOR
    temporary = path.with_name(DESCRIPTOR + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(to_json(descriptor))
    os.replace(temporary, path)


def load(base_dir: Path) -> Descriptor:
    """The descriptor in ``base_dir``, once the directory and the file are root's alone and
    everything it names is its own."""
    path = base_dir / DESCRIPTOR
    if not os.path.lexists(path):
        raise DevClusterError(
            f"no dev cluster in {base_dir} (no {DESCRIPTOR}); start one with "
            f"`hpcbatch dev-cluster up --dir {base_dir}`"
        )
    ownership.check_private_dir(base_dir)
    ownership.check_root_file(path)
    try:
        descriptor = from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise DevClusterError(f"{path} is not a dev cluster descriptor: {exc!r}") from exc
    problem = not_its_own(descriptor, base_dir)
    if problem:
        raise DevClusterError(f"{path} names what is not its own: {problem}; refusing to use it")
    return descriptor


HOST_FIELDS = ("name", "namespace", "veth", "host_dir", "agent_state_dir", "disk_image")
CLUSTER_FIELDS = ("bridge", "key_path", "known_hosts_path")


def not_its_own(descriptor: Descriptor, base_dir: Path) -> str | None:
    """What in ``descriptor`` (found in ``base_dir``) is not what ``plan`` gives for its prefix
    there, or None: its directory, every path (all inside it) and every name (all made from
    its prefix)."""
    d = descriptor
    if d.base_dir != base_dir:
        return f"its directory is {d.base_dir}, but it lies in {base_dir}"
    problem = naming.check_prefix(d.prefix)
    if problem:
        return problem
    try:
        subnet = IPv4Network(d.subnet)
    except ValueError as exc:
        return f"subnet: {exc}"
    expected = plan(base_dir, d.prefix, subnet, len(d.hosts), d.created_dir, d.disk_mib)
    if d.disk_problem is not None:
        expected = expected.without_disks(d.disk_problem)
    wanted = [(name, getattr(d, name), getattr(expected, name)) for name in CLUSTER_FIELDS]
    for index, (got, want) in enumerate(zip(d.hosts, expected.hosts, strict=True)):
        wanted += [
            (f"hosts[{index}].{name}", getattr(got, name), getattr(want, name))
            for name in HOST_FIELDS
        ]
    for name, got_value, want_value in wanted:
        if got_value != want_value:
            return f"{name} is {str(got_value)!r}, not {str(want_value)!r}"
    return None


def already_holds_cluster(base_dir: Path) -> DevClusterError:
    return DevClusterError(
        f"{base_dir} already holds a dev cluster; remove it first with "
        f"`hpcbatch dev-cluster down --dir {base_dir}`, or choose another --dir"
    )


def toml_string(value: str) -> str:
    # A JSON string is a TOML basic string (same escapes), which keeps odd paths safe.
    return json.dumps(value)


def head_config(hosts: tuple[DevHost, ...] | list[DevHost], ce_name: str = "devcluster") -> str:
    """The head's compute environment for these hosts, in TOML."""
    lines = [
        "[[compute_environments]]",
        f"name = {toml_string(ce_name)}",
        'kind = "SSH"',
    ]
    for host in hosts:
        lines += [
            "[[compute_environments.hosts]]",
            f"name = {toml_string(host.name)}",
            f"address = {toml_string(host.address)}",
            f"port = {host.port}",
            f"user = {toml_string(host.user)}",
            f"key = {toml_string(str(host.key_path))}",
            f"known_hosts = {toml_string(str(host.known_hosts_path))}",
            f"state_dir = {toml_string(str(host.agent_state_dir))}",
        ]
    return "\n".join(lines) + "\n"
