"""A dev host's OpenSSH server: its ``sshd_config`` text and the command line that starts it.

Both are pure. The start command enters the host's network namespace with ``nsenter`` (not
``ip netns exec``, which mounts a fresh /sys without /sys/fs/cgroup, so jobs would see no
cgroups), then ``unshare`` gives the host its own hostname (UTS) and a private mount namespace
in which an empty file is bind-mounted over /root/.bashrc: Debian's bash sources it for every
command that arrives over ssh, and here it runs ``pyenv init`` (+130 ms a command). The real
file is untouched and the mount never propagates (the mount namespace is private).

``nsenter`` (network only) and ``unshare`` (no ``--fork``) exec in place and ``sh`` execs sshd,
so the pid of the started process is the pid of sshd itself.

The cluster's client key is written into the sshd_config itself and handed to sshd by
``AuthorizedKeysCommand /bin/echo <key>`` (run as ``nobody``): no file can take it away, and
``StrictModes`` stays ``yes``. Each host also has its own ``authorized_keys`` file
(``SshdFiles.authorized_keys``, empty at first, root's, 0600), as a real host has its own
``~/.ssh``: a provisioner (Ansible's agent role, issue 13) authorizes the head's own key there.
The hosts share /root, so root's ``~/.ssh/authorized_keys`` cannot be per host. With
StrictModes, sshd reads that file only if every directory above it is root-owned and not group-
or world-writable, which no directory below a sticky /tmp is: a cluster under /tmp still works,
by the client key alone. Everything sshd reads lives in the cluster's root-only directory
(``ownership.py``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = "/run/sshd"  # sshd refuses to start without it
BASHRC = "/root/.bashrc"
UNSAFE_PATH_CHARACTERS = frozenset(" \t\n\"'%#\\")  # sshd_config quoting and %-tokens
KEYS_COMMAND = "/bin/echo"  # root-owned, as sshd requires of an AuthorizedKeysCommand
KEYS_COMMAND_USER = "nobody"


@dataclass(frozen=True)
class SshdFiles:
    """Where one host's sshd keeps its things (all under the host's own directory)."""

    config: Path
    host_key: Path
    pid_file: Path
    log: Path
    authorized_keys: Path  # the host's own, for keys other than the cluster's client key

    @classmethod
    def in_dir(cls, host_dir: Path) -> SshdFiles:
        return cls(
            config=host_dir / "sshd_config",
            host_key=host_dir / "ssh_host_ed25519_key",
            pid_file=host_dir / "sshd.pid",
            log=host_dir / "sshd.log",
            authorized_keys=host_dir / "authorized_keys",
        )


def unsafe_path_reason(path: Path) -> str | None:
    """Why ``path`` cannot appear in an sshd_config unquoted, or None when it can."""
    bad = sorted(set(str(path)) & UNSAFE_PATH_CHARACTERS)
    if bad:
        return f"{path}: the dev cluster's directory may not contain {' '.join(map(repr, bad))}"
    return None


def key_problem(public_key: str) -> str | None:
    """Why ``public_key`` (``<type> <base64>``) cannot be an argument of the keys command."""
    words = public_key.split(" ")
    if len(words) != 2 or not all(words) or set(public_key) & UNSAFE_PATH_CHARACTERS - {" "}:
        return f"the client key {public_key!r} is not '<type> <base64>'"
    return None


def sshd_config(
    host: str, address: IPv4Address, port: int, files: SshdFiles, client_key: str
) -> str:
    """``client_key`` (``<type> <base64>``) is the one key that may log in (as root)."""
    problem = key_problem(client_key)
    if problem:
        raise ValueError(problem)
    return f"""\
# sshd_config of dev-cluster host {host}, written by `hpcbatch dev-cluster up`.
ListenAddress {address}:{port}
HostKey {files.host_key}
PidFile {files.pid_file}
AuthorizedKeysFile {files.authorized_keys}
AuthorizedKeysCommand {KEYS_COMMAND} {client_key}
AuthorizedKeysCommandUser {KEYS_COMMAND_USER}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
StrictModes yes
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
Subsystem sftp internal-sftp
LogLevel INFO
"""


def start_argv(host: str, netns_path: str, files: SshdFiles, empty_file: Path) -> list[str]:
    """Run sshd in the foreground (``-D``) as host ``host``; its log goes to ``files.log``."""
    hide_bashrc = (
        f"{{ [ ! -e {BASHRC} ] || mount --bind {shlex.quote(str(empty_file))} {BASHRC}; }}"
    )
    sshd = shlex.join([SSHD, "-D", "-f", str(files.config), "-E", str(files.log)])
    script = f"hostname {shlex.quote(host)} && {hide_bashrc} && exec {sshd}"
    return [
        "nsenter",
        f"--net={netns_path}",
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
    ]


def is_our_sshd(cmdline: list[str], files: SshdFiles) -> bool:
    """Whether a process's argv is the sshd started with ``files`` (guards against a pid that
    was recycled since it was recorded). A running sshd retitles itself
    ``sshd: /usr/sbin/sshd -D -f CONF ... [listener] ...``, so the words are matched, not argv[0].
    """
    words = " ".join(cmdline).split()
    if not words or words[0] not in (SSHD, "sshd:"):
        return False
    pairs = zip(words, words[1:], strict=False)
    return SSHD in words and ("-f", str(files.config)) in pairs
