"""The per-gang launch key: the secret every node of one try of a multi-node job shares, so
that only that job's own processes can start processes on its nodes through the agents' launch
servers (docs/mpi.md §5).

Vocabulary: the **head secret** is 32 random bytes the head makes once and keeps in its data
dir (``launch.secret``, 0600), so a restarted head gives a running gang's relaunched main node
the key its other nodes already hold. A **gang try** is ``"<parent id>/<try>"`` (the core's
``LaunchAttempt.gang_try``); its key is HMAC-SHA256(head secret, gang try) in hex: the core
takes no randomness, and the key is derived at send time, so it is never in the journal, the
store or DescribeJobs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_BYTES = 32
SECRET_FILE = "launch.secret"


class LaunchKeys:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(SECRET_BYTES)
        if len(self._secret) != SECRET_BYTES:
            raise ValueError(f"a launch secret is {SECRET_BYTES} bytes")

    @classmethod
    def in_dir(cls, data_dir: Path) -> LaunchKeys:
        """The head's secret from ``data_dir/launch.secret``, made (0600) on a first start."""
        path = data_dir / SECRET_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            secret = path.read_bytes()
            if len(secret) == SECRET_BYTES and not path.stat().st_mode & 0o077:
                return cls(secret)
            raise ValueError(
                f"{path} must hold {SECRET_BYTES} bytes readable by the head only; "
                "remove it to make a new one (running gangs then lose their launch key)"
            ) from None
        secret = secrets.token_bytes(SECRET_BYTES)
        with os.fdopen(fd, "wb") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        return cls(secret)

    def key_for(self, gang_try: str) -> str:
        """The 64-hex-char key of one try of one gang."""
        return hmac.new(self._secret, gang_try.encode(), hashlib.sha256).hexdigest()
