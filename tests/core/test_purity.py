"""STYLE rule 1: the core never does I/O, never reads a clock or a random source."""

from __future__ import annotations

import ast
from pathlib import Path

import hpcbatch.core

FORBIDDEN = {
    "asyncio",
    "socket",
    "subprocess",
    "time",
    "random",
    "sqlite3",
    "paramiko",
    "os",
    "datetime",
    "uuid",
    "threading",
    "secrets",
    "pathlib",
    "shutil",
}


def test_core_imports_nothing_that_does_io_or_reads_clocks() -> None:
    core = Path(hpcbatch.core.__file__).parent
    offenders = []
    for path in sorted(core.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
