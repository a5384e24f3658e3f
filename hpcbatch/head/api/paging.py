"""``maxResults`` / ``nextToken`` paging over a list computed for each call.

The token is the offset into that list, base64-wrapped so callers treat it as opaque; a token
that does not decode is a ClientException, as AWS's is.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from hpcbatch.errors import ValidationError

T = TypeVar("T")


def page(
    items: Sequence[T], max_results: int | None, token: str | None, default: int = 100
) -> tuple[Sequence[T], str | None]:
    start, size = window(max_results, token, default)
    return items[start : start + size], next_token(start + size, len(items))


def window(max_results: int | None, token: str | None, default: int = 100) -> tuple[int, int]:
    """Where a page starts in the list, and how long it is at most."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("nextToken", "is not a token this head gave out") from None
    return start, max_results or default


def next_token(end: int, total: int) -> str | None:
    """The token for the page after one that ended at ``end`` of ``total`` items, if any."""
    return base64.urlsafe_b64encode(str(end).encode()).decode() if end < total else None
