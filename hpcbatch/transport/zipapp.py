"""The agent as one self-contained file: a zipapp built from ``hpcbatch_agent``, shipped to
SSH hosts over SFTP and run there with the host's own ``python3`` (standard library only).

Its **version** is the agent's build id (``hpcbatch_agent.build``: the agent's version plus a
hash of its source), so any change to the agent gives a new file name, and an agent reporting
another build in its hello is replaced on the next connect (``transport/upgrade.py``). The
build is deterministic (sorted names, fixed timestamps): the same source, the same bytes.
"""

from __future__ import annotations

import io
import zipfile

from hpcbatch_agent.build import build_id_of, package_sources

MAIN = "from hpcbatch_agent.main import main\nraise SystemExit(main())\n"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def build_agent_zipapp() -> tuple[str, bytes]:
    """``(version, pyz bytes)`` of the agent as installed beside this head."""
    sources = package_sources()
    version = build_id_of(sources)
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
