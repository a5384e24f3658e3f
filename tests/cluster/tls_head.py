"""A head serving HTTPS on a non-loopback address (the dev cluster's bridge), with a certificate
made for it, and a Unix socket of its own: as on a real head node, root administers it on the
socket (where the kernel names root) and everyone else signs their requests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hpcbatch.cli.client import Client
from tests.head.headproc import HeadProcess


def make_certificate(directory: Path, address: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``address`` (its IP in subjectAltName) and its key."""
    cert, key = directory / "head.crt", directory / "head.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hpcbatch-test-head",
            "-addext", f"subjectAltName=IP:{address}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsHead(HeadProcess):
    def __init__(self, data_dir: Path, address: str, **options: Any) -> None:
        self.socket_dir = Path(tempfile.mkdtemp(prefix="hpcbatch-tls-"))
        self.socket = self.socket_dir / "head.sock"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.cert, key = make_certificate(data_dir, address)
        extra = options.pop("extra_config", "")
        tls = f'\n[tls]\ncert = "{self.cert}"\nkey = "{key}"\n'
        import os

        env = {**os.environ, "HPCBATCH_SOCKET": str(self.socket)}
        super().__init__(data_dir, extra_config=extra + tls, env=env, **options)
        self.listen = f"{address}:{self.port}"
        self.endpoint = f"https://{address}:{self.port}"
        self.verify = str(self.cert)

    def admin(self) -> Client:
        return Client(f"unix://{self.socket}")

    def credentials(self) -> tuple[str, str]:
        if self._key is None:
            answer = self.admin().post("/hpcbatch/v1/users", {"name": "root", "unixUser": "root"})
            self._key = (answer["accessKeyId"], answer["secretAccessKey"])
        return self._key

    def issue(self, name: str, unix_user: str) -> tuple[str, str]:
        answer = self.admin().post("/hpcbatch/v1/users", {"name": name, "unixUser": unix_user})
        return answer["accessKeyId"], answer["secretAccessKey"]

    def get(self, path: str, **params: Any) -> Any:
        return self.admin().get(path, params or None)

    def raw_describe(self, job_id: str) -> dict[str, Any]:
        return dict(self.admin().call("DescribeJobs", {"jobs": [job_id]})["jobs"][0])

    def cleanup(self) -> None:
        super().cleanup()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
