"""What the head's terminal shows: hpcbatch's own lines, one per notable event; libraries quiet.

Vocabulary: the **level** is ``--log-level`` (debug, info, warning, error; default info). It sets
hpcbatch's loggers (``hpcbatch.*``). **Library loggers** (paramiko's connection chatter, httpx,
uvicorn's start-up lines, asyncio) stay at WARNING whatever the level, so a person sees what the
head itself has to say; only ``debug`` opens them too, and only then does uvicorn write its
access log (one line per HTTP request). Everything goes to stderr, one line per record.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LIBRARY_LOGGERS = (
    "paramiko",
    "httpx",
    "httpcore",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "asyncio",
    "fabric",
    "invoke",
)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def configure(level: str, stream: TextIO | None = None) -> None:
    """Set up the head's logging for ``level`` (case-insensitive); replaces earlier handlers."""
    chosen = logging.getLevelName(level.upper())
    if not isinstance(chosen, int):
        raise ValueError(f"unknown log level {level!r}")
    debug = chosen <= logging.DEBUG
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen if debug else max(chosen, logging.WARNING))
    logging.getLogger("hpcbatch").setLevel(chosen)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.setLevel(chosen if debug else max(chosen, logging.WARNING))
        library.propagate = True  # one handler, one format: uvicorn's own ones are not used
        for old in list(library.handlers):
            library.removeHandler(old)


def access_log_wanted(level: str) -> bool:
    """uvicorn's per-request lines only at debug."""
    return level.lower() == "debug"
