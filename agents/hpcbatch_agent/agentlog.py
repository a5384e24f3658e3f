"""The agent's own log: its standard error, which ``serve --detach`` points at agent.log.

Vocabulary:
    log line   one line of text with a UTC timestamp, written and flushed at once, so a line
               is whole in agent.log even if the agent dies right after.
    traceback  what an unexpected exception in one message's handling leaves behind: the
               agent logs it and goes on serving (see server.py), never dies of one input.
Standard library only.
"""

from __future__ import annotations

import os
import sys
import time
import traceback


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        sys.stderr.write(f"{stamp} agent[{os.getpid()}]: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed or broken stderr must not turn a logged problem into a crash


def log_exception(context: str) -> None:
    """Log ``context`` and the traceback of the exception being handled."""
    log(f"{context}\n{traceback.format_exc().rstrip()}")
