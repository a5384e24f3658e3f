"""The SSH hosts the head remembers: every host it was configured with, kept in its store.

Vocabulary: a **remembered host** is everything the head needs to reach a host's agent after
the config stops listing it: its ``SshHost`` (address, port, user, key, known_hosts, state dir,
python, capacity overrides...), its compute environment and its ``NodeProfile`` (placement group,
fabric variables). The set lives in the store's meta under ``ssh_hosts`` as one JSON document,
written at start (the configured hosts plus those still retiring) and again as each retiring host
is gone (``retire.py``), so a head restarted mid-retirement picks up where it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


def configured(ces: tuple[CeConfig, ...]) -> dict[str, RememberedHost]:
    """Every host the config lists, by node name."""
    return {
        host.name: RememberedHost(host, ce.name, ssh_profile(ce, host))
        for ce in ces
        for host in ce.hosts
    }


def to_doc(remembered: RememberedHost) -> dict[str, Any]:
    host = asdict(remembered.host)
    host["key"] = str(remembered.host.key)
    known = remembered.host.known_hosts
    host["known_hosts"] = None if known is None else str(known)
    return {"host": host, "ce": remembered.ce, "profile": asdict(remembered.profile)}


def from_doc(doc: dict[str, Any]) -> RememberedHost:
    raw = dict(doc["host"])
    raw["key"] = Path(raw["key"])
    raw["known_hosts"] = None if raw.get("known_hosts") is None else Path(raw["known_hosts"])
    raw["gpus"] = None if raw.get("gpus") is None else tuple(raw["gpus"])
    profile = dict(doc["profile"])
    profile["fabric_environment"] = tuple((k, v) for k, v in profile.get("fabric_environment", ()))
    return RememberedHost(SshHost(**raw), doc["ce"], NodeProfile(**profile))


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
