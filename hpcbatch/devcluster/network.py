"""The dev cluster's network: one namespace per host, one bridge, one veth pair per host.

The ``ip`` command lines are built by pure functions (tests compare them with ``==``); ``Runner``
is the only thing here that starts a process. Inside each namespace the interface is ``eth0``
and there is no default route, so nothing a host does can leave the machine; the root namespace
reaches every host through the bridge's address.

The bridge's alias (``ip link set BR alias DIR``, which only root can set) records the
directory of the cluster that made it, so ``down`` can tell its own prefix from another
cluster's before it deletes anything by that prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from hpcbatch.devcluster.errors import DevClusterError

IP = "ip"
NETNS_DIR = "/run/netns"
MAX_ALIAS = 255  # IFALIASZ less its NUL

Argv = list[str]


def netns_path(namespace: str) -> str:
    return os.path.join(NETNS_DIR, namespace)


def bridge_argvs(bridge: str, address: IPv4Address, subnet: IPv4Network) -> list[Argv]:
    return [
        [IP, "link", "add", bridge, "type", "bridge"],
        [IP, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", bridge],
        [IP, "link", "set", bridge, "up"],
    ]


def host_argvs(
    namespace: str, veth: str, bridge: str, address: IPv4Address, subnet: IPv4Network
) -> list[Argv]:
    """Make one host: its namespace, a veth pair (``eth0`` born inside the namespace, ``veth``
    left in the root namespace on the bridge), its address, ``lo`` and ``eth0`` up."""
    return [
        [IP, "netns", "add", namespace],
        [IP, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace],
        [IP, "link", "set", veth, "master", bridge, "up"],
        [IP, "-n", namespace, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"],
        [IP, "-n", namespace, "link", "set", "lo", "up"],
        [IP, "-n", namespace, "link", "set", "eth0", "up"],
    ]


def link_state_argv(link: str, up: bool) -> Argv:
    return [IP, "link", "set", link, "up" if up else "down"]


def alias_argv(link: str, alias: str) -> Argv:
    return [IP, "link", "set", "dev", link, "alias", alias]


def alias_problem(alias: str) -> str | None:
    if len(alias.encode()) > MAX_ALIAS:
        return f"{alias}: the dev cluster's directory may be at most {MAX_ALIAS} bytes long"
    return None


def delete_link_argv(link: str) -> Argv:
    return [IP, "link", "del", link]


def delete_netns_argv(namespace: str) -> Argv:
    return [IP, "netns", "del", namespace]


def netns_pids_argv(namespace: str) -> Argv:
    return [IP, "netns", "pids", namespace]


def routes_argv() -> Argv:
    return [IP, "-j", "-4", "route", "show", "table", "all"]


def links_argv() -> Argv:
    return [IP, "-j", "link", "show"]


def link_names(ip_link_json: str) -> list[str]:
    return [link["ifname"] for link in json.loads(ip_link_json or "[]") if "ifname" in link]


def link_aliases(ip_link_json: str) -> dict[str, str]:
    """Each link's alias (links without one are left out)."""
    return {
        link["ifname"]: link["ifalias"]
        for link in json.loads(ip_link_json or "[]")
        if "ifname" in link and link.get("ifalias")
    }


def namespace_names() -> list[str]:
    """The named network namespaces (what ``ip netns list`` shows), read from the directory."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class Runner:
    """Runs ``ip`` (and friends) and turns a failure into a ``DevClusterError`` naming the
    command and its stderr."""

    timeout: float = 30.0

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevClusterError(f"`{' '.join(argv)}` failed: {exc}") from exc
        if check and result.returncode != 0:
            raise DevClusterError(
                f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def output(self, argv: Sequence[str]) -> str:
        return self.run(argv).stdout


def as_host_argv(namespace: str, hostname: str) -> list[str]:
    """argv prefix that runs a command as if on a dev host: in its network namespace (entered
    with nsenter, so /sys and its cgroups stay visible) and with its own host name (a UTS
    namespace), the filesystem shared as on every dev host."""
    script = f'hostname {hostname} && exec "$@"'
    return [
        "nsenter",
        f"--net={netns_path(namespace)}",
        "unshare",
        "--uts",
        "sh",
        "-c",
        script,
        "sh",
    ]
