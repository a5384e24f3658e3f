"""SSH compute environments from the head's config file: which hosts, and how to reach them.

```toml
[[compute_environments]]
name = "cluster"                 # created on start if it does not exist (kind SSH)
kind = "SSH"
fabric = "tcp"                   # tcp (default), efa, ucx or verbs: MPI variables on every node
network_interface = "eth0"       # optional: the interface nodes reach each other on
[[compute_environments.hosts]]
name = "node1"                   # the node's name in hpcbatch (unique)
address = "10.0.0.11"            # IP address or host name (unique)
port = 22
user = "root"
key = "/etc/hpcbatch/id_ed25519" # must exist, readable by its owner only
known_hosts = "/etc/hpcbatch/known_hosts" # required (trust on first use records keys here)
trust_on_first_use = false       # true: record an unknown host key in known_hosts (labs only)
state_dir = "/var/lib/hpcbatch-agent"
python = "python3"
vcpus = 8                        # optional capacity overrides
memory_mib = 32000
gpus = [0, 1]                    # optional: the GPUs it offers (indices or "GPU-…" UUIDs);
                                 # default: every GPU nvidia-smi lists
nvidia_smi = "/usr/bin/nvidia-smi"  # optional: where nvidia-smi is when not on sshd's PATH
labels = { rack = "a", placement_group = "g1" }  # placement_group: gangs kept inside one
agent_durability = "process"     # "power": the agent fsyncs its spool each turn (see docs)
```

A SLURM compute environment (docs/slurm.md) whose bridge runs on a login node over SSH:

```toml
[[compute_environments]]
name = "hpc"
kind = "SLURM"
max_vcpus = 512                  # required: the most vCPUs its jobs hold in Slurm at once
partitions = ["batch"]           # optional (Slurm's default partition); account, qos too
account = "physics"
qos = "normal"
slurm_conf = "/etc/slurm/slurm.conf"  # optional: SLURM_CONF on the login node
[[compute_environments.hosts]]   # exactly one: the login node (a host table as above)
name = "login1"
...
```

Every problem is a ValidationError naming the host and the rule; one bad host refuses the whole
file (a head must not start half-configured).

Removing a host from this file (and restarting the head) retires it rather than abandoning it:
the head remembers every host it was configured with (``host_memory.py``), drains a host it no
longer finds here with the reason "removed from the head's config", lets its running jobs finish
over the remembered connection, then removes the node and stops its agent (``retire.py``,
docs/states.md). Listing it again before it is gone keeps it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpcbatch_agent.slurmscript import Target

from hpcbatch.errors import ValidationError
from hpcbatch.head.gpu_config import check_gpu_list
from hpcbatch.head.slurm_target import check_slurm_name, slurm_agent_options
from hpcbatch.mpi.fabric import Fabric, FabricError, fabric_environment, parse_fabric
from hpcbatch.transport.ssh import SshHost

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# One DNS label; a host name is checked label by label (``is_host_name``), in linear time: a
# single pattern for the whole name, with its optional dots, backtracked exponentially (seconds
# for a 26-character typo such as "aaaaaaaaaaaaaaaaaaaaaaaaa!").
LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_HOST_NAME = 253
HOST_KEYS = {
    "name",
    "address",
    "port",
    "user",
    "key",
    "known_hosts",
    "trust_on_first_use",
    "state_dir",
    "python",
    "vcpus",
    "memory_mib",
    "gpus",
    "nvidia_smi",
    "labels",
    "agent_durability",
}
AGENT_DURABILITIES = ("process", "power")


PLACEMENT_GROUP_LABEL = "placement_group"
CE_KEYS = {"name", "kind", "hosts", "fabric", "network_interface"}
SLURM_KEYS = {"max_vcpus", "partitions", "account", "qos", "slurm_conf"}


@dataclass(frozen=True)
class CeConfig:
    name: str
    kind: str
    hosts: tuple[SshHost, ...]
    fabric: Fabric = Fabric()

    @property
    def fabric_environment(self) -> tuple[tuple[str, str], ...]:
        return tuple(fabric_environment(self.fabric).items())


def check_fabric(where: str, raw: dict[str, Any]) -> Fabric:
    """``fabric`` and ``network_interface`` of a compute environment's table, checked; the
    error names the field."""
    kind = raw.get("fabric", "tcp")
    try:
        parse_fabric(kind)
    except FabricError as exc:
        raise ValidationError(f"{where}.fabric", str(exc)) from None
    try:
        return parse_fabric(kind, raw.get("network_interface"))
    except FabricError as exc:
        raise ValidationError(f"{where}.network_interface", str(exc)) from None


def check_placement_group(where: str, group: Any) -> str | None:
    if group is None:
        return None
    if not isinstance(group, str) or not NAME_RE.fullmatch(group):
        raise ValidationError(
            where, f"must be 1-63 letters, digits, '.', '_' or '-' (got {group!r})"
        )
    return group


def _check_address(where: str, address: Any) -> str:
    if not isinstance(address, str) or not address:
        raise ValidationError(f"{where}.address", "is required: an IP address or a host name")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not is_host_name(address) or address.replace(".", "").isdigit():
            raise ValidationError(
                f"{where}.address", f"is not an IP address or a host name (got {address!r})"
            ) from None
    return address


def is_host_name(text: str) -> bool:
    """Whether ``text`` is a DNS host name: labels of 1-63 letters, digits and inner hyphens,
    joined by dots (one trailing dot allowed), 253 characters at most."""
    if not 1 <= len(text) <= MAX_HOST_NAME:
        return False
    labels = text.removesuffix(".").split(".")
    return all(LABEL_RE.fullmatch(label) for label in labels)


def _check_key(where: str, key: Any) -> Path:
    if not isinstance(key, str) or not key:
        raise ValidationError(f"{where}.key", "is required: the path of a private key")
    path = Path(key)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValidationError(f"{where}.key", f"cannot be read: {exc.strerror} ({key})") from None
    if mode & 0o077:
        raise ValidationError(
            f"{where}.key",
            f"{key} is readable by others (mode {oct(mode & 0o777)}); chmod 600 it",
        )
    return path


def _int(where: str, raw: dict[str, Any], key: str, default: int | None, low: int) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValidationError(f"{where}.{key}", f"must be an integer >= {low} (got {value!r})")
    return value


def _check_trust(where: str, raw: dict[str, Any]) -> tuple[str, bool]:
    """``(known_hosts, trust_on_first_use)``: a known_hosts file is always required, since
    trusting on first use means recording the key there (without one, every key would be
    accepted and none remembered)."""
    known = raw.get("known_hosts")
    tofu = raw.get("trust_on_first_use", False)
    if not isinstance(tofu, bool):
        raise ValidationError(
            f"{where}.trust_on_first_use", f"must be true or false (got {tofu!r})"
        )
    if not isinstance(known, str) or not known:
        rule = (
            "is required with trust_on_first_use = true: a first-seen host key is recorded "
            "there and checked on every later connection"
            if tofu
            else "is required to verify the host key (trust_on_first_use = true records it "
            "there on first connection)"
        )
        raise ValidationError(f"{where}.known_hosts", rule)
    return known, tofu


def parse_host(where: str, raw: Any) -> SshHost:
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be a table of host settings")
    unknown = sorted(set(raw) - HOST_KEYS)
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "is not a known host setting")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationError(
            f"{where}.name", f"must be 1-63 letters, digits, '.', '_' or '-' (got {name!r})"
        )
    where = f"{where} ({name})"
    known, tofu = _check_trust(where, raw)
    gpus = raw.get("gpus")
    if gpus is not None:
        gpus = check_gpu_list(gpus, f"{where}.gpus")
    nvidia_smi = raw.get("nvidia_smi")
    if nvidia_smi is not None and not (
        isinstance(nvidia_smi, str) and nvidia_smi.startswith("/") and "\0" not in nvidia_smi
    ):
        raise ValidationError(
            f"{where}.nvidia_smi", f"must be an absolute path on the host (got {nvidia_smi!r})"
        )
    durability = raw.get("agent_durability", "process")
    if durability not in AGENT_DURABILITIES:
        raise ValidationError(
            f"{where}.agent_durability", f"must be 'process' or 'power' (got {durability!r})"
        )
    labels = raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValidationError(f"{where}.labels", f"must be a table of strings (got {labels!r})")
    check_placement_group(
        f"{where}.labels.{PLACEMENT_GROUP_LABEL}", labels.get(PLACEMENT_GROUP_LABEL)
    )
    return SshHost(
        name=name,
        address=_check_address(where, raw.get("address")),
        key=_check_key(where, raw.get("key")),
        port=_int(where, raw, "port", 22, 1) or 22,
        user=str(raw.get("user", "root")),
        known_hosts=Path(known),
        trust_on_first_use=tofu,
        state_dir=str(raw.get("state_dir", SshHost.state_dir)),
        python=str(raw.get("python", SshHost.python)),
        vcpus=_int(where, raw, "vcpus", None, 1),
        memory_mib=_int(where, raw, "memory_mib", None, 4),
        gpus=tuple(gpus) if gpus is not None else None,
        nvidia_smi=nvidia_smi,
        labels=dict(labels),
        agent_durability=durability,
    )


def parse_compute_environments(
    raw: Any, taken: set[str], endpoints: dict[tuple[str, int], str] | None = None
) -> tuple[CeConfig, ...]:
    """``[[compute_environments]]`` tables; ``taken`` holds node names already in use, and
    gets this file's added (as ``endpoints``, address:port -> host, when given)."""
    if not isinstance(raw, list):
        raise ValidationError("config.compute_environments", "must be a list of tables")
    ces: list[CeConfig] = []
    addresses = {} if endpoints is None else endpoints
    for i, table in enumerate(raw):
        where = f"config.compute_environments[{i}]"
        if not isinstance(table, dict) or not NAME_RE.fullmatch(str(table.get("name", ""))):
            raise ValidationError(f"{where}.name", "is required: 1-63 letters, digits, '_' or '-'")
        kind = table.get("kind", "SSH")
        if kind not in ("SSH", "SLURM"):
            raise ValidationError(f"{where}.kind", f"must be SSH or SLURM (got {kind!r})")
        unknown = sorted(set(table) - CE_KEYS - (SLURM_KEYS if kind == "SLURM" else set()))
        if unknown:
            raise ValidationError(f"{where}.{unknown[0]}", "is not a known setting")
        fabric = check_fabric(where, table)
        hosts = _hosts(where, table.get("hosts", []), taken, addresses, "listed twice")
        if kind == "SLURM":
            hosts = (login_bridge(where, table, hosts),)
        ces.append(CeConfig(table["name"], kind, hosts, fabric))
    return tuple(ces)


def _hosts(
    where: str,
    raw: Any,
    names: set[str],
    addresses: dict[tuple[str, int], str],
    twice: str,
) -> tuple[SshHost, ...]:
    if not isinstance(raw, list):
        raise ValidationError(f"{where}.hosts", "must be a list of host tables")
    hosts = []
    for j, host_raw in enumerate(raw):
        host = parse_host(f"{where}.hosts[{j}]", host_raw)
        if host.name in names:
            raise ValidationError(f"{where}.hosts[{j}].name", f"{host.name!r} is {twice}")
        endpoint = (host.address, host.port)
        if endpoint in addresses:
            raise ValidationError(
                f"{where}.hosts[{j}].address",
                f"{host.address}:{host.port} is already host {addresses[endpoint]!r}",
            )
        names.add(host.name)
        addresses[endpoint] = host.name
        hosts.append(host)
    return tuple(hosts)


POOL_KEYS = {"name", "hosts", "fabric", "network_interface"}


def parse_host_pools(
    raw: Any, taken: set[str], endpoints: dict[tuple[str, int], str]
) -> tuple[CeConfig, ...]:
    """``[[host_pools]]``: named lists of SSH hosts (same host tables as a compute
    environment's) that MANAGED SSH compute environments made through the API draw on, naming
    them in ``computeResources.instanceTypes``. A host in two pools, or in a pool and a compute
    environment, is refused (``taken``/``endpoints``: the names and addresses already used)."""
    if not isinstance(raw, list):
        raise ValidationError("config.host_pools", "must be a list of tables")
    pools: list[CeConfig] = []
    for i, table in enumerate(raw):
        where = f"config.host_pools[{i}]"
        if not isinstance(table, dict) or not NAME_RE.fullmatch(str(table.get("name", ""))):
            raise ValidationError(f"{where}.name", "is required: 1-63 letters, digits, '_' or '-'")
        if table["name"] in {p.name for p in pools}:
            raise ValidationError(f"{where}.name", f"{table['name']!r} is listed twice")
        unknown = sorted(set(table) - POOL_KEYS)
        if unknown:
            raise ValidationError(f"{where}.{unknown[0]}", "is not a known setting")
        fabric = check_fabric(where, table)
        twice = "already in another host pool or compute environment (a host is in one)"
        hosts = _hosts(where, table.get("hosts", []), taken, endpoints, twice)
        pools.append(CeConfig(table["name"], "SSH", hosts, fabric))
    return tuple(pools)


def login_bridge(where: str, table: dict[str, Any], hosts: tuple[SshHost, ...]) -> SshHost:
    """A SLURM CE's one host, the login node, whose agent is the bridge: sized ``max_vcpus``
    and started with the target's flags."""
    if len(hosts) != 1:
        raise ValidationError(
            f"{where}.hosts",
            f"a SLURM compute environment has exactly one host, the login node its bridge runs "
            f"on (got {len(hosts)})",
        )
    cap = table.get("max_vcpus")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValidationError(
            f"{where}.max_vcpus",
            f"is required: the most vCPUs its jobs may hold in Slurm at once, 1 or more "
            f"(got {cap!r})",
        )
    partitions = table.get("partitions", [])
    if not isinstance(partitions, list) or not all(isinstance(p, str) for p in partitions):
        raise ValidationError(f"{where}.partitions", "must be a list of Slurm partition names")
    names: dict[str, str] = {}
    for key in ("account", "qos", "slurm_conf"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{where}.{key}", f"must be a non-empty string (got {value!r})")
        if value is not None:
            names[key] = value
    for index, partition in enumerate(partitions):
        check_slurm_name(f"{where}.partitions[{index}]", "a Slurm partition", partition)
    for key in ("account", "qos"):
        if key in names:
            check_slurm_name(f"{where}.{key}", f"the Slurm {key}", names[key])
    target = Target(tuple(partitions), names.get("account"), names.get("qos"))
    options = slurm_agent_options(target)
    if "slurm_conf" in names:
        options += ["--slurm-conf", names["slurm_conf"]]
    return replace(hosts[0], vcpus=cap, agent_options=tuple(options))
