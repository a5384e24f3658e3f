"""The head's settings: defaults, overridden by a TOML file, overridden by the command line.

```toml
listen = "127.0.0.1:7650"          # TCP for boto3 and remote CLIs (""): none; a non-loopback
                                   # address needs [tls] and signed requests (docs/security.md)
socket = "/run/hpcbatch/head.sock" # the local CLI's Unix socket (SO_PEERCRED); default as root,
                                   # "" otherwise; $HPCBATCH_SOCKET or --socket override
admin_group = "hpcadmin"           # Unix group whose members are admins (root always is)
insecure = false                   # true: allow plain HTTP on a non-loopback listen (labs only;
                                   # requests must still be signed)
region = "us-east-1"               # optional: the one region signatures must name, and
                                   # every ARN's; unset: any region a signature names, each
                                   # caller seeing ARNs in its own (unsigned callers: "local")
account = "000000000000"
min_timeout_seconds = 60           # AWS's minimum; lower it for test clusters
retention_days = 7                 # finished jobs and journal lines are forgotten after this
                                   # (checked every tenth of it, at most every 10 minutes)
heartbeat_timeout_s = 30           # an agent silent this long is DOWN (its jobs are held)
node_lost_timeout_s = 120          # DOWN this long: its jobs fail as "Host lost" and retry
host_idle_release_s = 60           # a host pool's host above its CE's floor, idle this long,
                                   # is released (docs/compute-environments.md)
host_retry_s = 30                  # a host pool's host that did not connect is tried again
                                   # after this long
agent_message_rate = 10000         # messages a second one agent may send, sustained, and in
agent_message_burst = 50000        # a burst; more: its link is cut and its node goes DOWN
                                   # (head/flood.py says why these numbers)

[local]                            # the embedded LOCAL compute environment
nodes = 1                          # virtual nodes (one agent each) on this machine
vcpus = 0                          # per node; 0 = this machine's CPUs
memory_mib = 0                     # per node; 0 = this machine's memory
gpus = []                          # this machine's GPU indices or UUIDs, split between the nodes in
                                   # order (nodes = 2, gpus = [0, 1, 2, 3]: local-1 offers 0,1,
                                   # local-2 offers 2,3); [] with nodes = 1: nvidia-smi's, with
                                   # nodes > 1: none (each node would offer every board)
fabric = "tcp"                     # tcp (default), efa, ucx, verbs: MPI variables for gangs
network_interface = "lo"           # optional: the interface the nodes reach each other on
placement_group = "g1"             # optional: every local node's placement group

[scheduler]
backfill_depth = 200               # blocked jobs examined per queue per pass

[metrics]
listen = "127.0.0.1:9650"          # Prometheus' /metrics (HOST:PORT); "" turns it off

[tls]                              # HTTPS on `listen` (uvicorn serves it)
cert = "/etc/hpcbatch/tls/head.crt"
key = "/etc/hpcbatch/tls/head.key"

[[compute_environments]]           # SSH-managed hosts: see hpcbatch/head/hosts.py
name = "cluster"
kind = "SSH"
hosts = [...]

[[host_pools]]                     # hosts that API-made SSH CEs take and release (instanceTypes
name = "gpu"                       # names the pools); host tables as a compute environment's
hosts = [...]
```
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hpcbatch.errors import ValidationError
from hpcbatch.head.auth.sigv4 import REGION_RE
from hpcbatch.head.flood import DEFAULT_LIMIT, FloodLimit
from hpcbatch.head.gpu_config import GpuName, check_gpu_list
from hpcbatch.head.hosts import (
    CeConfig,
    check_fabric,
    check_placement_group,
    parse_compute_environments,
    parse_host_pools,
)
from hpcbatch.mpi.fabric import Fabric, fabric_environment


@dataclass(frozen=True)
class LocalConfig:
    nodes: int = 1
    vcpus: int = 0
    memory_mib: int = 0
    gpus: tuple[GpuName, ...] = ()
    fabric: Fabric = Fabric()
    placement_group: str | None = None

    def node_gpus(self, index: int) -> tuple[GpuName, ...] | None:
        """The GPUs virtual node ``index`` (0-based) offers, its own share of ``gpus`` so no
        board is offered twice; None: the node's agent offers what nvidia-smi finds."""
        if not self.gpus:
            return None if self.nodes == 1 else ()
        share = len(self.gpus) // self.nodes
        return self.gpus[index * share : (index + 1) * share]

    @property
    def fabric_environment(self) -> tuple[tuple[str, str], ...]:
        return tuple(fabric_environment(self.fabric).items())


LOCAL_KEYS = {"nodes", "vcpus", "memory_mib", "gpus", "fabric", "network_interface"}
LOCAL_KEYS |= {"placement_group"}


@dataclass(frozen=True)
class HeadConfig:
    data_dir: Path = Path("/var/lib/hpcbatch")
    listen: str = "127.0.0.1:7650"
    region: str | None = None  # None: the caller's, from its signature's scope (module doc)
    account: str = "000000000000"
    min_timeout_seconds: int = 60
    retention_days: float = 7.0
    heartbeat_timeout_s: float = 30.0
    node_lost_timeout_s: float = 120.0
    host_idle_release_s: float = 60.0
    host_retry_s: float = 30.0
    agent_message_rate: int = DEFAULT_LIMIT.rate  # messages/s one agent may send (flood.py)
    agent_message_burst: int = DEFAULT_LIMIT.burst
    backfill_depth: int = 200
    metrics_listen: str = "127.0.0.1:9650"  # [metrics] listen; "": no /metrics
    socket: str = ""  # the Unix socket; load_config's default: ROOT_SOCKET as root, else ""
    admin_group: str = ""  # "": root alone is an admin
    insecure: bool = False
    tls_cert: str = ""  # [tls] cert
    tls_key: str = ""  # [tls] key
    local: LocalConfig = field(default_factory=LocalConfig)
    compute_environments: tuple[CeConfig, ...] = ()  # SSH hosts: see hpcbatch/head/hosts.py
    host_pools: tuple[CeConfig, ...] = ()  # [[host_pools]]: hosts API-made SSH CEs draw on

    @property
    def stored_region(self) -> str:
        """The region the head's stored ARNs carry: the configured one, else ``local``, which
        each signed caller sees replaced by its own signature's region (api/app.py)."""
        return self.region or "local"

    @property
    def retention_ms(self) -> int:
        return int(self.retention_days * 86_400_000)

    @property
    def purge_every_s(self) -> float:
        """How often finished jobs and journal lines past the retention are dropped: a tenth
        of the retention, at most every 10 minutes, at least a second apart (a short
        retention under a steady stream would otherwise hold ten minutes of jobs)."""
        return min(600.0, max(1.0, self.retention_ms / 10_000))

    @property
    def agent_message_limit(self) -> FloodLimit:
        return FloodLimit(self.agent_message_rate, self.agent_message_burst)


def _typed(name: str, value: Any, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
        raise ValidationError(name, f"must be {expected.__name__} (got {value!r})")
    return value


def load_config(path: Path | None, **overrides: Any) -> HeadConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValidationError(f"config {path}", str(error)) from error
    local_raw = raw.pop("local", {})
    ces_raw = raw.pop("compute_environments", [])
    pools_raw = raw.pop("host_pools", [])
    scheduler = raw.pop("scheduler", {})
    if "backfill_depth" in scheduler:
        raw["backfill_depth"] = scheduler.pop("backfill_depth")
    raw.update(_metrics(raw.pop("metrics", {})))
    raw.update(_tls(raw.pop("tls", {})))
    if "socket" not in raw and overrides.get("socket") is None:
        raw["socket"] = ROOT_SOCKET if os.geteuid() == 0 else ""
    known = {f.name: f for f in fields(HeadConfig)}
    values: dict[str, Any] = {}
    for key, value in {**raw, **{k: v for k, v in overrides.items() if v is not None}}.items():
        if key not in known or key in ("local", "compute_environments", "host_pools"):
            raise ValidationError(f"config.{key}", "is not a known setting")
        if key == "data_dir":
            values[key] = Path(value)
            continue
        if key == "region":
            values[key] = _region(value)
            continue
        expected = type(getattr(HeadConfig(), key))
        values[key] = _typed(f"config.{key}", value, expected)
    values["local"] = _local(local_raw)
    local_names = set(local_node_names(values["local"].nodes))
    endpoints: dict[tuple[str, int], str] = {}
    values["compute_environments"] = parse_compute_environments(ces_raw, local_names, endpoints)
    values["host_pools"] = parse_host_pools(pools_raw, local_names, endpoints)
    config = replace(HeadConfig(), **values)
    if config.min_timeout_seconds < 1:
        raise ValidationError("config.min_timeout_seconds", "must be at least 1")
    if not config.retention_days > 0:  # (NaN too) 0 or less would forget every job as it ends
        raise ValidationError(
            "config.retention_days", f"must be more than 0 days (got {config.retention_days})"
        )
    _check_agent_messages(config)
    if config.metrics_listen.startswith("unix:"):
        raise ValidationError("config.metrics.listen", "must be HOST:PORT (Prometheus scrapes TCP)")
    _check_listeners(config)
    return config


ROOT_SOCKET = "/run/hpcbatch/head.sock"


def _check_agent_messages(config: HeadConfig) -> None:
    """Both at least 1: a bucket that holds nothing, or never refills, would cut every agent."""
    if config.agent_message_rate < 1:
        raise ValidationError(
            "config.agent_message_rate",
            f"must be at least 1 message a second (got {config.agent_message_rate})",
        )
    if config.agent_message_burst < 1:
        raise ValidationError(
            "config.agent_message_burst",
            f"must be at least 1 message (got {config.agent_message_burst})",
        )


def _region(value: Any) -> str:
    if not isinstance(value, str) or not REGION_RE.fullmatch(value):
        raise ValidationError(
            "config.region",
            f"must be a region name: letters, digits and hyphens, 1-63 (got {value!r})",
        )
    return value


def _tls(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError("config.tls", "must be a table")
    for key in raw:
        if key not in ("cert", "key"):
            raise ValidationError(f"config.tls.{key}", "is not a known setting")
    return {f"tls_{key}": value for key, value in raw.items()}


def is_loopback_listen(listen: str) -> bool:
    """``listen`` is a Unix socket or a loopback TCP address (no one else can connect)."""
    if listen.startswith("unix:"):
        return True
    host = listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _check_listeners(config: HeadConfig) -> None:
    if not config.listen and not config.socket:
        raise ValidationError(
            "config.listen", 'and socket are both "": the head would be unreachable'
        )
    if config.socket and not config.socket.startswith("/"):
        raise ValidationError("config.socket", f"must be an absolute path (got {config.socket!r})")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ValidationError("config.tls", "needs both cert and key (a PEM file each)")
    for name, path in (("cert", config.tls_cert), ("key", config.tls_key)):
        if path and not os.access(path, os.R_OK):
            raise ValidationError(f"config.tls.{name}", f"{path} does not exist or is not readable")
    if config.tls_cert and config.listen.startswith("unix:"):
        raise ValidationError("config.tls", "is for a TCP listen address, not a Unix socket")
    remote = config.listen and not is_loopback_listen(config.listen)
    if remote and not config.tls_cert and not config.insecure:
        raise ValidationError(
            "config.listen",
            f"{config.listen} is not a loopback address, so it needs TLS: set [tls] cert "
            "and key in the config (or, for a lab network only, insecure = true / --insecure)",
        )


def _metrics(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError("config.metrics", "must be a table")
    for key in raw:
        if key != "listen":
            raise ValidationError(f"config.metrics.{key}", "is not a known setting")
    return {"metrics_listen": raw["listen"]} if "listen" in raw else {}


def local_node_names(count: int) -> list[str]:
    return [f"local-{i + 1}" for i in range(count)]


def _local(raw: dict[str, Any]) -> LocalConfig:
    for key in raw:
        if key not in LOCAL_KEYS:
            raise ValidationError(f"config.local.{key}", "is not a known setting")
    gpus = check_gpu_list(raw.get("gpus", []), "config.local.gpus")
    nodes = _typed("config.local.nodes", raw.get("nodes", 1), int)
    if not 0 <= nodes <= 64:  # 0: a head that only manages SSH hosts
        raise ValidationError("config.local.nodes", f"must be 0 to 64 (got {nodes})")
    _check_gpu_split(gpus, nodes)
    return LocalConfig(
        nodes=nodes,
        vcpus=_typed("config.local.vcpus", raw.get("vcpus", 0), int),
        memory_mib=_typed("config.local.memory_mib", raw.get("memory_mib", 0), int),
        gpus=gpus,
        fabric=check_fabric("config.local", raw),
        placement_group=check_placement_group(
            "config.local.placement_group", raw.get("placement_group")
        ),
    )


def _check_gpu_split(gpus: tuple[GpuName, ...], nodes: int) -> None:
    """Every node gets as many (check_gpu_list has refused a GPU named twice)."""
    if gpus and (nodes == 0 or len(gpus) % nodes):
        raise ValidationError(
            "config.local.gpus",
            f"{len(gpus)} GPUs {list(gpus)} cannot be split evenly between {nodes} nodes "
            "(each node offers its own share of the list, in order)",
        )
