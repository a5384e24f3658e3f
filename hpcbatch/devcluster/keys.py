"""Keys of a dev cluster: an ed25519 host key per host, one client key pair authorised for root
on every host, and a known_hosts file that lists every host's key by address, so clients verify
host keys from the first connection (no trust on first use).

``ssh-keygen`` makes the keys (all at once: they are independent); the file texts are built by
pure functions.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hpcbatch.devcluster.errors import DevClusterError

SSH_KEYGEN = "ssh-keygen"


def keygen_argv(path: Path, comment: str) -> list[str]:
    return [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]


def generate(keys: Sequence[tuple[Path, str]], timeout: float = 30.0) -> None:
    """Make each ``(private key path, comment)`` pair; the public key lands beside it (.pub).
    The private key is mode 0600 (ssh-keygen's own choice, checked by ssh clients)."""
    procs = [
        (
            path,
            subprocess.Popen(
                keygen_argv(path, comment),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for path, comment in keys
    ]
    failures = []
    for path, proc in procs:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        if proc.returncode != 0:
            failures.append(f"{path}: {stderr.strip() or f'ssh-keygen exited {proc.returncode}'}")
    if failures:
        raise DevClusterError("ssh-keygen failed: " + "; ".join(failures))
    for path, _ in keys:
        os.chmod(path, 0o600)


def public_key(private_key: Path) -> str:
    """``<type> <base64>`` of the key pair, without its comment."""
    fields = Path(f"{private_key}.pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


def known_hosts_line(address: str, port: int, key: str) -> str:
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {key}\n"


def known_hosts_text(entries: Sequence[tuple[str, int, str]]) -> str:
    """One line per ``(address, port, public key)``."""
    return "".join(known_hosts_line(address, port, key) for address, port, key in entries)
