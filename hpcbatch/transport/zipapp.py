"""The agent as one self-contained file: a zipapp built from ``hpcbatch_agent``, shipped to
SSH hosts over SFTP and run there with the host's own ``python3`` (standard library only).

Its **version** is the agent's version plus a hash of its source, so any change to the agent
gives a new file name and hosts running another build are upgraded on the next connect. The
build is deterministic (sorted names, fixed timestamps): the same source, the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import hpcbatch_agent

from hpcbatch import protocol

MAIN = "from hpcbatch_agent.main import main\nraise SystemExit(main())\n"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _sources() -> list[tuple[str, bytes]]:
    package = Path(hpcbatch_agent.__file__).parent
    return [
        (f"hpcbatch_agent/{path.name}", path.read_bytes()) for path in sorted(package.glob("*.py"))
    ]


def build_agent_zipapp() -> tuple[str, bytes]:
    """``(version, pyz bytes)`` of the agent as installed beside this head."""
    sources = _sources()
    digest = hashlib.sha256()
    for name, data in sources:
        digest.update(name.encode() + b"\0" + data + b"\0")
    version = f"{protocol.AGENT_VERSION}-{digest.hexdigest()[:12]}"
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("__main__.py", MAIN.encode()), *sources]:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return version, buffer.getvalue()


def agent_file_name(version: str) -> str:
    return f"hpcbatch-agent-{version}.pyz"
