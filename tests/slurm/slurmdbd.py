"""Slurm's accounting for tests: a private MariaDB and a slurmdbd in front of it.

- **MariaDB** (``mariadbd``) with its own data dir, socket and a free loopback TCP port, made by
  ``mariadb-install-db``; slurmdbd reaches it over TCP as user ``slurm`` (made through the
  socket, where root is root).
- **slurmdbd** in the root namespace on loopback, munge through the cluster's own socket
  (``AuthInfo=socket=``), ``DbdHost`` this machine's hostname (slurmdbd refuses any other).
- slurmctld reaches it through ``AccountingStorageHost``/``Port``; ``AccountingStoragePass`` is
  the munge socket it must use for that link (not a password: ../shared/reference/testbed.md).
  The cluster is registered with ``sacctmgr`` before slurmctld starts.

Each process is started by ``Accounting.start`` and stopped by its PID in ``stop``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hpcbatch.devcluster.processes import spawn, stop
from tests.head.headproc import free_port, wait_for

PROGRAMS = ("mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "sacctmgr", "sacct")
DB_USER, DB_PASS, DB_NAME = "slurm", "hb-test-only", "slurm_acct_db"

SLURMDBD_CONF = """\
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost={host}
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
LogFile={dir}/slurmdbd.log
PidFile={dir}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser={db_user}
StoragePass={db_pass}
StorageLoc={db_name}
"""


def require_accounting() -> None:
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(
            f"{', '.join(missing)} missing: scripts/test.sh installs mariadb-server, slurmdbd"
        )
    if missing:
        pytest.skip(f"Slurm accounting needs {', '.join(missing)} (apt: mariadb-server slurmdbd)")


@dataclass
class Accounting:
    dir: Path
    munge_socket: Path
    dbd_port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    pids: dict[str, int] = field(default_factory=dict)

    def slurm_conf_lines(self) -> str:
        """What slurm.conf needs to keep accounting here."""
        return (
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            "AccountingStorageHost=127.0.0.1\n"
            f"AccountingStoragePort={self.dbd_port}\n"
            f"AccountingStoragePass={self.munge_socket}\n"
        )

    def start(self, cluster_name: str, env: dict[str, str]) -> None:
        """MariaDB, then slurmdbd, then the cluster registered; slurmctld may start next."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start_database()
        slurm_conf = Path(env["SLURM_CONF"])
        conf = slurm_conf.parent / "slurmdbd.conf"  # slurmdbd reads it beside slurm.conf only
        conf.write_text(
            SLURMDBD_CONF.format(
                munge_socket=self.munge_socket,
                host=socket.gethostname().split(".")[0],
                dbd_port=self.dbd_port,
                dir=self.dir,
                db_port=self.db_port,
                db_user=DB_USER,
                db_pass=DB_PASS,
                db_name=DB_NAME,
            )
        )
        conf.chmod(0o600)  # slurmdbd refuses a config others may read
        self.pids["slurmdbd"] = spawn(
            ["env", f"SLURM_CONF={slurm_conf}", "slurmdbd", "-D"],
            self.dir / "slurmdbd.out",
        ).pid

        def registered() -> bool:
            done = subprocess.run(
                ["sacctmgr", "-i", "add", "cluster", cluster_name],
                capture_output=True, text=True, env=env, timeout=30, check=False,
            )  # fmt: skip
            said = done.stdout + done.stderr
            return done.returncode == 0 or "already exists" in said or "Nothing new" in said

        wait_for(registered, 60, f"slurmdbd to register the cluster (see {self.dir}/slurmdbd.log)")

    def _start_database(self) -> None:
        data = self.dir / "db"
        sock = self.dir / "db.sock"
        install = [
            "mariadb-install-db",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=socket",
        ]
        subprocess.run([*install, "--skip-test-db"], capture_output=True, check=True, timeout=120)
        self.pids["mariadbd"] = spawn(
            [
                "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}",
                f"--port={self.db_port}", "--bind-address=127.0.0.1", "--user=root",
                f"--pid-file={self.dir / 'db.pid'}", "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
            ],
            self.dir / "mariadbd.out",
        ).pid  # fmt: skip
        wait_for(sock.exists, 60, f"MariaDB's socket (see {self.dir}/mariadbd.out)")
        grant = (
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1'; "
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME};"
        )
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={sock}", "-u", "root", "-e", grant],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip

    def stop(self) -> None:
        for name in ("slurmdbd", "mariadbd"):
            pid = self.pids.pop(name, None)
            if pid is not None:
                stop([pid], grace=10.0)
