"""Names and addresses of one dev cluster, all derived from its prefix.

Vocabulary: the *prefix* (``hb3f2a``) is stamped on everything a cluster makes, so two clusters
(two test runs) never share a name and ``down`` can find every leftover by name alone. A *host*
is ``<prefix>-h<i>`` (its network namespace has the same name); its veth end in the root
namespace is ``<prefix>-v<i>`` and the bridge is ``<prefix>-br``. The *subnet* is a /24 inside
10.0.0.0/8 chosen from a hash of the prefix, skipping any network already routed here; the bridge
is ``.1`` and host ``i`` is ``.10+i``.

Everything here is pure: the random source and the routing table are arguments.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Iterable

IFNAMSIZ = 15  # the kernel's limit on an interface name, without the trailing NUL
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{1,9}")  # <prefix>-v244 stays within IFNAMSIZ
FIRST_HOST_OCTET = 11
MAX_HOSTS = 254 - FIRST_HOST_OCTET + 1  # .11 .. .254
POOL = ipaddress.IPv4Network("10.0.0.0/8")
SUBNETS_IN_POOL = 1 << (24 - POOL.prefixlen)


def random_prefix(token_hex: Callable[[int], str] = secrets.token_hex) -> str:
    return "hb" + token_hex(2)


def check_prefix(prefix: str) -> str | None:
    """Why ``prefix`` cannot name a cluster, or None when it can."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        return (
            f"prefix {prefix!r} must be 2 to 10 characters, lowercase letters and digits, "
            "starting with a letter (it goes into interface names, at most 15 characters)"
        )
    return None


def check_host_count(hosts: int) -> str | None:
    if not 1 <= hosts <= MAX_HOSTS:
        return f"hosts must be between 1 and {MAX_HOSTS}, not {hosts}"
    return None


def host_name(prefix: str, index: int) -> str:
    """Host ``index`` (1-based); also its namespace's name."""
    return f"{prefix}-h{index}"


def veth_name(prefix: str, index: int) -> str:
    return f"{prefix}-v{index}"


def bridge_name(prefix: str) -> str:
    return f"{prefix}-br"


def owns_name(prefix: str, name: str) -> bool:
    """Whether a namespace or link called ``name`` belongs to the cluster ``prefix``."""
    return re.fullmatch(re.escape(prefix) + r"-(br|h\d+|v\d+)", name) is not None


def host_address(subnet: ipaddress.IPv4Network, index: int) -> ipaddress.IPv4Address:
    return subnet.network_address + FIRST_HOST_OCTET - 1 + index


def bridge_address(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return subnet.network_address + 1


def routed_networks(ip_route_json: str) -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations in ``ip -j route show table all`` output (``default`` excluded:
    it overlaps everything and says nothing about which subnets are in use)."""
    networks = []
    for route in json.loads(ip_route_json or "[]"):
        dst = route.get("dst", "")
        if dst == "default" or ":" in dst:
            continue
        try:
            networks.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    return networks


def choose_subnet(prefix: str, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 in 10.0.0.0/8, from a start point hashed from ``prefix``, that overlaps no
    network in ``taken``. Different prefixes start far apart, so concurrent runs don't race for
    the same subnet even before either has routed it."""
    taken = [net for net in taken if net.overlaps(POOL)]
    start = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:4], "big") % SUBNETS_IN_POOL
    for step in range(SUBNETS_IN_POOL):
        index = (start + step) % SUBNETS_IN_POOL
        candidate = ipaddress.IPv4Network((int(POOL.network_address) + (index << 8), 24))
        if index % 256 in (0, 255):
            continue  # 10.x.0.0/24 and 10.x.255.0/24 look like network/broadcast to people
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise ValueError("every /24 in 10.0.0.0/8 is already routed on this machine")
