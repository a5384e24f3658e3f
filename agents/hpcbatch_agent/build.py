"""Which build of the agent this is: one id for its source, however it is shipped.

Vocabulary:
    sources   the package's ``*.py`` files, as ``("hpcbatch_agent/<name>", bytes)`` sorted by
              name: read from the package directory (a LOCAL agent, run from the head's own
              install) or from the zipapp it was loaded from (an SSH host's ``.pyz``).
    build id  ``<AGENT_VERSION>-<12 hex>``: the agent's version and the start of a SHA-256
              over its sources. The head names the zipapp it ships by it
              (``hpcbatch.transport.zipapp``) and an agent reports its own in its hello
              (``agent_build``), computed once as it starts: so an agent whose files were
              upgraded under it, or that was started from another install, reports another
              build, and the head replaces it (docs/protocol.md, "hello").
Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import zipfile

from .protocol import AGENT_VERSION

PACKAGE = "hpcbatch_agent"


def _directory_sources(package: str) -> list[tuple[str, bytes]]:
    sources = []
    for name in sorted(os.listdir(package)):
        path = os.path.join(package, name)
        if name.endswith(".py") and os.path.isfile(path):
            with open(path, "rb") as source:
                sources.append((f"{PACKAGE}/{name}", source.read()))
    return sources


def _zipapp_sources(archive: str) -> list[tuple[str, bytes]]:
    prefix = f"{PACKAGE}/"
    with zipfile.ZipFile(archive) as pyz:
        names = sorted(
            name
            for name in pyz.namelist()
            if name.startswith(prefix) and name.endswith(".py") and "/" not in name[len(prefix) :]
        )
        return [(name, pyz.read(name)) for name in names]


def package_sources(package: str | None = None) -> list[tuple[str, bytes]]:
    """The sources of the package at ``package`` (default: this one), a directory or a
    directory inside a zipapp (``<x>.pyz/hpcbatch_agent``)."""
    package = package or os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(package):
        return _directory_sources(package)
    return _zipapp_sources(os.path.dirname(package))


def build_id_of(sources: list[tuple[str, bytes]]) -> str:
    """The build id of these sources (the order given is the order hashed)."""
    digest = hashlib.sha256()
    for name, data in sources:
        digest.update(name.encode() + b"\0" + data + b"\0")
    return f"{AGENT_VERSION}-{digest.hexdigest()[:12]}"


def build_id(package: str | None = None) -> str:
    """This agent's build id (or that of the package at ``package``)."""
    return build_id_of(package_sources(package))
