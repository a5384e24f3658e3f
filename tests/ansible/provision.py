"""Run ansible/site.yml for real against dev-cluster hosts (namespaces + real sshd).

The first host is the head; the head the playbook installs runs inside that host's network
namespace, started the way the playbook starts it (no systemd here: its start script). Every
path the roles write is below one root-owned test directory under /var/lib (``base``): the
hosts share one filesystem, and each host's own ``authorized_keys`` (dev-cluster) is read by
its sshd only when no directory above it is world-writable, which rules out /tmp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcbatch.devcluster import DevCluster, DevHost

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
HOST_VCPUS = 2


def build_wheels(into: Path, tree: Path = REPO) -> tuple[Path, Path]:
    """(the hpcbatch wheel, the dependency wheelhouse) of the source ``tree``, made by its
    ansible/build-wheels.sh."""
    subprocess.run(
        ["bash", str(tree / "ansible" / "build-wheels.sh"), str(into), sys.executable],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = into.glob("hpcbatch-*.whl")
    return wheel, into / "wheels"


@dataclass
class Site:
    """One test's cluster and the head's paths the inventory sets."""

    cluster: DevCluster
    base: Path
    wheel: Path
    wheelhouse: Path

    @property
    def head_host(self) -> DevHost:
        return self.cluster.hosts[0]

    @property
    def head_dir(self) -> Path:
        return self.base / "head"

    @property
    def etc(self) -> Path:
        return self.head_dir / "etc"

    @property
    def data_dir(self) -> Path:
        return self.head_dir / "data"

    @property
    def socket(self) -> Path:
        return self.head_dir / "run" / "head.sock"

    @property
    def log(self) -> Path:
        return self.head_dir / "log" / "head.log"

    def host_vars(self, host: DevHost) -> dict[str, Any]:
        key = (host.host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        return {
            "ansible_host": host.address,
            "agent_host_key": f"{key[0]} {key[1]}",
            "agent_state_dir": str(host.agent_state_dir),
            "agent_authorized_keys": str(host.host_dir / "authorized_keys"),
            "agent_vcpus": HOST_VCPUS,
            "agent_memory_mib": 4096,
        }

    def inventory(
        self,
        compute: list[DevHost],
        changed: Mapping[str, Mapping[str, Any]] | None = None,
        dropped: Mapping[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """``changed``: host name -> variables to set; ``dropped``: host name -> to remove."""
        hosts = {}
        for host in compute:
            values = {**self.host_vars(host), **(changed or {}).get(host.name, {})}
            for name in (dropped or {}).get(host.name, []):
                values.pop(name, None)
            hosts[host.name] = values
        return {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.cluster.key_path),
                    "ansible_ssh_common_args": (
                        f"-o UserKnownHostsFile={self.cluster.known_hosts_path} "
                        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
                    ),
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "head_wheel": str(self.wheel),
                    "head_wheelhouse": str(self.wheelhouse),
                    "head_prefix": str(self.head_dir / "opt"),
                    "head_etc": str(self.etc),
                    "head_data_dir": str(self.data_dir),
                    "head_log_dir": str(self.log.parent),
                    "head_run_dir": str(self.socket.parent),
                    "head_min_timeout_seconds": 1,
                    "head_start_timeout_s": 60,
                },
                "children": {
                    "head": {
                        "hosts": {self.head_host.name: {"ansible_host": self.head_host.address}}
                    },
                    "compute": {"hosts": hosts},
                },
            }
        }

    def run_playbook(
        self, inventory: Mapping[str, Any], *extra: str
    ) -> subprocess.CompletedProcess[str]:
        path = self.base / "inventory.json"
        path.write_text(json.dumps(inventory, indent=1))
        home = self.base / "ansible-home"
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(self.base / "remote-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.base / "cp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        }
        return subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(path), *extra, "site.yml"],
            cwd=ANSIBLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def head_pid(self) -> int | None:
        try:
            return int((self.data_dir / "head.lock").read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def stop_head(self) -> None:
        """The head the playbook started, by the pid its lock file holds (SIGTERM, then KILL)."""
        pid = self.head_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines: host -> {ok, changed, unreachable, failed, ...}."""
    found: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "=" in line:
            name, _, counts = line.partition(":")
            found[name.strip()] = {
                key: int(value) for key, value in (pair.split("=") for pair in counts.split())
            }
    return found
