"""A real OpenSSH sshd on 127.0.0.1 for transport tests: own keys, config, pid; stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"

CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
"""


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class LoopbackSshd:
    dir: Path
    port: int
    pid: int
    client_key: Path
    known_hosts: Path

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        os.kill(self.pid, signal.SIGKILL)


def start_sshd(base: Path, extra_config: str = "") -> LoopbackSshd:
    """Start sshd in ``base``; ``extra_config`` lines are appended to its sshd_config."""
    base.mkdir(parents=True, exist_ok=True)
    keygen(base / "host_key")
    keygen(base / "client_key")
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (base / "sshd_config").write_text(CONFIG.format(port=port, dir=base) + extra_config)
    host_key = " ".join((base / "host_key.pub").read_text().split()[:2])
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    subprocess.run(
        [SSHD, "-f", str(base / "sshd_config"), "-E", str(base / "sshd.log")], check=True
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            pid = int((base / "sshd.pid").read_text())
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    return LoopbackSshd(base, port, pid, base / "client_key", base / "known_hosts")
