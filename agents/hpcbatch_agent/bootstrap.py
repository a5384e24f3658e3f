"""How a fresh Python process runs this agent from its source tree, isolated.

Vocabulary:
    isolated  ``python -I``: no PYTHONPATH, no user site, and neither the working directory
              nor a script's directory on sys.path. An agent often runs as root, so a
              ``hpcbatch_agent/`` package planted in whatever directory it was started from
              must never be imported. The one directory it imports from is named here
              explicitly: the one this very package was loaded from.
A shipped zipapp needs none of this (``python -I agent.pyz`` finds the package inside).
Standard library only.
"""

from __future__ import annotations

from pathlib import Path

# argv[1] (popped) is the directory holding the hpcbatch_agent package; the rest is main's.
BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from hpcbatch_agent.main import main; sys.exit(main())"
)


def package_root() -> str:
    """The directory this ``hpcbatch_agent`` package was imported from."""
    return str(Path(__file__).resolve().parent.parent)


def isolated_command(python: str) -> list[str]:
    """argv prefix that runs ``hpcbatch_agent`` (its ``main``) in an isolated ``python``;
    append the agent's own arguments (``serve ...``)."""
    return [python, "-I", "-c", BOOT, package_root()]
