"""What ``vagrant`` prints about the VMs of ``vagrant/Vagrantfile``, parsed, and the head's SSH
compute environment built from it. Pure: no I/O; ``hpcbatch vagrant`` runs vagrant.

Vocabulary: a *machine* is one VM of the Vagrantfile (``head``, ``compute1`` .. ``computeN``);
its *state* is Vagrant's state id (``running``, ``not_created``, ``poweroff``, libvirt's
``shutoff`` ...); an *SSH entry* is one ``Host`` block of ``vagrant ssh-config``: how this
machine (the one running vagrant) reaches that VM.

``vagrant ssh-config`` prints, per machine (Vagrant 2.3.4's ``config.erb``)::

    Host compute1
      HostName 192.168.121.37
      User vagrant
      Port 22
      UserKnownHostsFile /dev/null
      ...
      IdentityFile /path/.vagrant/machines/compute1/libvirt/private_key   (quoted if it has a space)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from hpcbatch.errors import HpcbatchError

COMPUTE_RE = re.compile(r"compute([0-9]+)")
RUNNING = "running"
# A regular expression as Vagrant takes a target: every compute VM, in one vagrant call.
COMPUTE_TARGET = "/^compute[0-9]+$/"


class VagrantError(HpcbatchError):
    """Vagrant could not be run, or its VMs are not as ``hpcbatch vagrant`` needs them."""


class HasState(Protocol):
    """One machine in ``vagrant status``: python-vagrant's ``Status``."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str | None: ...


@dataclass(frozen=True)
class SshEntry:
    name: str
    hostname: str | None
    port: int
    user: str
    identity_file: str | None


def compute_names(statuses: Iterable[HasState]) -> list[str]:
    """The compute machines' names, compute1 first (compute10 after compute9)."""
    found = [(int(m.group(1)), s.name) for s in statuses if (m := COMPUTE_RE.fullmatch(s.name))]
    return [name for _, name in sorted(found)]


def check_running(statuses: Iterable[HasState], names: Iterable[str]) -> None:
    """Raise unless every machine in ``names`` is running, naming each that is not."""
    state_of = {s.name: s.state for s in statuses}
    idle = [f"{n} is {state_of.get(n) or 'unknown'}" for n in names if state_of.get(n) != RUNNING]
    if idle:
        raise VagrantError(
            f"{', '.join(idle)}: only running VMs have an SSH address "
            "(`hpcbatch vagrant up` creates and starts them)"
        )


def parse_ssh_config(text: str) -> tuple[SshEntry, ...]:
    """Every ``Host`` block of ``vagrant ssh-config``; keywords are case-insensitive, as in
    ssh_config(5), and a value may be double-quoted."""
    blocks: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.lower(), unquote(value.strip())
        if keyword == "host":
            blocks.append((value, {}))
        elif blocks:
            blocks[-1][1].setdefault(keyword, value)  # ssh's rule: the first value wins
    return tuple(entry_of(name, options) for name, options in blocks)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def entry_of(name: str, options: dict[str, str]) -> SshEntry:
    port = options.get("port", "22")
    if not port.isdigit():
        raise VagrantError(f"vagrant ssh-config gave {name} the port {port!r}, not a number")
    return SshEntry(
        name=name,
        hostname=options.get("hostname"),
        port=int(port),
        user=options.get("user", "vagrant"),
        identity_file=options.get("identityfile"),
    )


@dataclass(frozen=True)
class HeadSettings:
    """What the head's host entries need beyond vagrant's answer."""

    known_hosts: str
    state_dir: str = "/var/lib/hpcbatch-agent"
    ce_name: str = "vagrant"


def head_hosts_toml(entries: Iterable[SshEntry], names: list[str], settings: HeadSettings) -> str:
    """The head's ``[[compute_environments]]`` for the compute machines ``names`` (in that
    order), from their SSH entries: address = HostName, key = IdentityFile. Host keys are
    trusted on first use (recorded in ``known_hosts``): a Vagrant lab is throwaway."""
    by_name = {e.name: e for e in entries}
    lines = [
        "[[compute_environments]]",
        f"name = {toml_string(settings.ce_name)}",
        'kind = "SSH"',
    ]
    for name in names:
        entry = checked_entry(by_name.get(name), name)
        lines += [
            "[[compute_environments.hosts]]",
            f"name = {toml_string(name)}",
            f"address = {toml_string(entry.hostname or '')}",
            f"port = {entry.port}",
            f"user = {toml_string(entry.user)}",
            f"key = {toml_string(entry.identity_file or '')}",
            f"known_hosts = {toml_string(settings.known_hosts)}",
            "trust_on_first_use = true",
            f"state_dir = {toml_string(settings.state_dir)}",
        ]
    return "\n".join(lines) + "\n"


def checked_entry(entry: SshEntry | None, name: str) -> SshEntry:
    if entry is None:
        raise VagrantError(f"vagrant ssh-config printed nothing for {name}: is it created?")
    if not entry.hostname:
        raise VagrantError(
            f"{name} has no HostName in vagrant ssh-config: the VM is not created or not "
            "running (`hpcbatch vagrant up`)"
        )
    if not entry.identity_file:
        raise VagrantError(f"{name} has no IdentityFile in vagrant ssh-config: no key to log in")
    return entry


def toml_string(value: str) -> str:
    # A JSON string is a TOML basic string (same escapes), which keeps odd paths safe.
    return json.dumps(value)
