"""Reading attempt logs in chunks for ``read_log``.

Vocabulary:
    chunk        up to ``max_bytes`` of a log from a byte ``offset``; ``next_offset`` is where
                 the next read starts, so a follower never skips or repeats a byte.
    complete     the attempt has finished and the chunk reached the end of its log.

A chunk never ends inside a UTF-8 sequence while more may follow, so decoding with
errors="replace" only replaces bytes that really are invalid.
"""

from __future__ import annotations

import os

MAX_CHUNK = 4 * 1024 * 1024


def utf8_safe_end(data: bytes) -> int:
    """Length of ``data`` without a trailing incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: keep looking for the lead
        if byte & 0x80 == 0:
            return len(data)
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return len(data) if back >= need else len(data) - back
    return len(data)


def read_chunk(path: str, offset: int, max_bytes: int, finished: bool) -> tuple[str, int, bool]:
    """(text, next_offset, complete) of the log at ``path``; a missing log reads empty."""
    max_bytes = max(0, min(max_bytes, MAX_CHUNK))
    offset = max(0, offset)
    try:  # never through a symlink: a job's log is the file its job wrote, nothing else
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as log:
            size = os.fstat(log.fileno()).st_size
            log.seek(offset)
            data = log.read(max_bytes)
    except FileNotFoundError:
        size, data = 0, b""
    at_end = offset + len(data) >= size
    if not (finished and at_end):
        cut = utf8_safe_end(data)
        if cut > 0:
            data = data[:cut]
    next_offset = offset + len(data)
    return data.decode("utf-8", "replace"), next_offset, finished and next_offset >= size
