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
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("nextToken", "is not a token this head gave out") from None
    size = max_results or default
    chunk = items[start : start + size]
    end = start + size
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return chunk, following
