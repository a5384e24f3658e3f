"""The SSH hosts the head remembers: every host it was configured with, kept in its store.

Vocabulary: a **remembered host** is everything the head needs to reach a host's agent after
the config stops listing it: its ``SshHost`` (address, port, user, key, known_hosts, state dir,
python, capacity overrides...), its compute environment and its ``NodeProfile`` (placement group,
fabric variables), and the host keys its known_hosts file held for it then (``host_keys``): the
provisioner that took the host out of the config took its key out of that file too, and a
retiring host is still reached with the key the head trusted (``reachable``, never trust on
first use). The set lives in the store's meta under ``ssh_hosts`` as one JSON document,
written at start (the configured hosts plus those still retiring) and again as each retiring host
is gone (``retire.py``), so a head restarted mid-retirement picks up where it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import paramiko

from hpcbatch.head.agents import NodeProfile
from hpcbatch.head.hosts import CeConfig
from hpcbatch.head.node_profiles import ssh_profile
from hpcbatch.store import Store, WriteBatch
from hpcbatch.transport.ssh import SshHost

META_KEY = "ssh_hosts"


@dataclass(frozen=True)
class RememberedHost:
    host: SshHost
    ce: str
    profile: NodeProfile
    host_keys: tuple[str, ...] = ()  # "<type> <base64>": what known_hosts held for it


def configured(ces: tuple[CeConfig, ...]) -> dict[str, RememberedHost]:
    """Every host the config lists, by node name, with its keys from its known_hosts (each
    file read once: a thousand hosts usually share one)."""
    files: dict[Path, paramiko.HostKeys | None] = {}
    return {
        host.name: RememberedHost(host, ce.name, ssh_profile(ce, host), known_keys(host, files))
        for ce in ces
        for host in ce.hosts
    }


def host_pattern(host: SshHost) -> str:
    """How known_hosts names ``host``: its address, or ``[address]:port`` off port 22."""
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def known_keys(
    host: SshHost, files: dict[Path, paramiko.HostKeys | None] | None = None
) -> tuple[str, ...]:
    """The keys ``host``'s known_hosts file holds for it (hashed names included); ``files``:
    the files read so far, by path."""
    if host.known_hosts is None:
        return ()
    files = {} if files is None else files
    if host.known_hosts not in files:
        files[host.known_hosts] = _read_known_hosts(host.known_hosts)
    keys = files[host.known_hosts]
    if keys is None:
        return ()
    found = keys.lookup(host_pattern(host)) or {}
    return tuple(sorted(f"{key.get_name()} {key.get_base64()}" for key in found.values()))


def _read_known_hosts(path: Path) -> paramiko.HostKeys | None:
    if not path.is_file():
        return None
    try:
        return paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException):
        return None


def reachable(remembered: RememberedHost, keys_dir: Path) -> SshHost:
    """``remembered.host``, checked against the keys remembered for it (a known_hosts file of
    its own in ``keys_dir``, written now) rather than against the config's file, which may no
    longer list it. A host remembered with no key keeps its own file."""
    host = remembered.host
    if not remembered.host_keys:
        return host
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / f"{host.name}.known_hosts"
    lines = "".join(f"{host_pattern(host)} {key}\n" for key in remembered.host_keys)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(lines)
    return replace(host, known_hosts=path, trust_on_first_use=False)


def to_doc(remembered: RememberedHost) -> dict[str, Any]:
    host = asdict(remembered.host)
    host["key"] = str(remembered.host.key)
    known = remembered.host.known_hosts
    host["known_hosts"] = None if known is None else str(known)
    return {
        "host": host,
        "ce": remembered.ce,
        "profile": asdict(remembered.profile),
        "host_keys": list(remembered.host_keys),
    }


def from_doc(doc: dict[str, Any]) -> RememberedHost:
    raw = dict(doc["host"])
    raw["key"] = Path(raw["key"])
    raw["known_hosts"] = None if raw.get("known_hosts") is None else Path(raw["known_hosts"])
    raw["gpus"] = None if raw.get("gpus") is None else tuple(raw["gpus"])
    raw["agent_options"] = tuple(raw.get("agent_options", ()))  # absent: stored by an older head
    profile = dict(doc["profile"])
    profile["fabric_environment"] = tuple((k, v) for k, v in profile.get("fabric_environment", ()))
    keys = tuple(doc.get("host_keys", ()))
    return RememberedHost(SshHost(**raw), doc["ce"], NodeProfile(**profile), keys)


def load(store: Store) -> dict[str, RememberedHost]:
    text = store.get_meta(META_KEY)
    if not text:
        return {}
    return {name: from_doc(doc) for name, doc in json.loads(text).items()}


def save(store: Store, hosts: dict[str, RememberedHost]) -> None:
    batch = WriteBatch()
    doc = {name: to_doc(hosts[name]) for name in sorted(hosts)}
    batch.set_meta(META_KEY, json.dumps(doc, separators=(",", ":")))
    store.write(batch)
