"""The kernel's word on who is at the other end of a connection to the head.

- A **Unix socket** peer: ``SO_PEERCRED`` gives the uid the caller had when it connected
  (as munge and sshd rely on), whatever the caller says.
- A **loopback TCP** peer: the caller's end of the connection is a socket on this machine, and
  the kernel knows the uid that made it: asked through netlink ``sock_diag`` for exactly that
  socket (its local address the peer's, its remote address ours), as ``ss`` asks, in ~15 us;
  where netlink is unavailable, found in the socket table ``/proc/net/tcp`` (``tcp6``), whose
  reading grows with every socket on the machine (~1 ms at 2,000). Asked once when the
  connection is made, while both ends are open, so no other socket can hold that address pair.
- Any other TCP peer is **remote**: the kernel cannot vouch for it, only a signature can.

``peer_of`` runs once per connection (``protocol.HeadHttpProtocol``), not per request.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC_NET = Path("/proc/net")


@dataclass(frozen=True)
class Peer:
    uid: int | None  # None: the kernel does not know (remote, or not found)
    local: bool  # a Unix socket or a loopback address: the uid above is the kernel's
    address: str  # for logs: "unix", or "HOST:PORT"


REMOTE_UNKNOWN = Peer(None, False, "?")


def peer_of(sock: Any) -> Peer:
    """``sock``: the server side of an accepted connection (a socket, or asyncio's
    TransportSocket wrapper of one)."""
    if sock is None:
        return REMOTE_UNKNOWN
    if sock.family == socket.AF_UNIX:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return Peer(None, True, "unix")
        _, uid, _ = struct.unpack("3i", raw)
        return Peer(uid, True, "unix")
    try:
        peer = sock.getpeername()
        mine = sock.getsockname()
    except OSError:
        return REMOTE_UNKNOWN
    address = f"{peer[0]}:{peer[1]}"
    host = _plain(peer[0])
    if not host.is_loopback:
        return Peer(None, False, address)
    return Peer(loopback_uid((host, peer[1]), (_plain(mine[0]), mine[1])), True, address)


def _plain(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


def loopback_uid(client: Endpoint, server: Endpoint) -> int | None:
    """The uid of the socket at ``client`` connected to ``server``."""
    try:
        return _diag_uid(client, server)
    except OSError:
        return _table_uid(client, server)


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
ALL_STATES = 0xFFFFFFFF


def _diag_uid(client: Endpoint, server: Endpoint) -> int | None:
    """Ask the kernel for the one TCP socket ``client`` -> ``server`` (inet_diag, not a dump):
    its uid, or None if there is none. OSError: no netlink here."""
    forms = [(client[0], server[0])]
    if isinstance(client[0], ipaddress.IPv4Address):  # an IPv6 socket may hold it, mapped
        forms.append(
            tuple(ipaddress.IPv6Address(f"::ffff:{a}") for a in (client[0], server[0]))  # type: ignore[arg-type]
        )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as link:
        link.settimeout(1.0)
        for source, destination in forms:
            family = socket.AF_INET if source.version == 4 else socket.AF_INET6
            sockid = struct.pack("!HH", client[1], server[1])
            sockid += source.packed.ljust(16, b"\0") + destination.packed.ljust(16, b"\0")
            sockid += struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
            request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + sockid
            header = struct.pack(
                "=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0
            )
            link.send(header + request)
            answer = link.recv(65536)
            if len(answer) < 16 or struct.unpack_from("=H", answer, 4)[0] == NLMSG_ERROR:
                continue  # ENOENT: not in this family
            # nlmsghdr (16), then inet_diag_msg: family, state, timer, retrans (4), sockid (48),
            # expires, rqueue, wqueue, uid, inode
            return int(struct.unpack_from("=I", answer, 16 + 4 + 48 + 12)[0])
    return None


def _table_uid(client: Endpoint, server: Endpoint) -> int | None:
    """The same from the socket table: every row read, so only where netlink is not."""
    for table in ("tcp", "tcp6"):
        wanted = f"{_proc_address(client, table)} {_proc_address(server, table)} "
        try:
            text = (PROC_NET / table).read_text()
        except OSError:
            continue
        at = text.find(wanted)
        if at < 0:
            continue
        line = text[text.rfind("\n", 0, at) + 1 : text.find("\n", at)]
        fields = line.split()
        if len(fields) > 7 and fields[7].isdigit():
            return int(fields[7])
    return None


def _proc_address(endpoint: Endpoint, table: str) -> str:
    """How /proc/net/<table> writes an address: each 32-bit word in host (little-endian)
    order, in hex; an IPv4 peer of an IPv6 socket appears as ::ffff:a.b.c.d in tcp6."""
    address, port = endpoint
    if table == "tcp6" and isinstance(address, ipaddress.IPv4Address):
        address = ipaddress.IPv6Address(f"::ffff:{address}")
    if table == "tcp" and isinstance(address, ipaddress.IPv6Address):
        return "-"  # matches nothing
    packed = address.packed
    words = "".join(packed[i : i + 4][::-1].hex() for i in range(0, len(packed), 4))
    return f"{words.upper()}:{port:04X}"
