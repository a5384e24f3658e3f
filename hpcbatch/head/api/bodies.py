"""The JSON bodies of hpcbatch's own routes (AWS operations go through ``parse.py``)."""

from __future__ import annotations

import json
from typing import Any

from hpcbatch.errors import ValidationError


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``), or a 400."""
    try:
        document = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." 100,000 deep
        document = None
    if not isinstance(document, dict):
        raise ValidationError("", "request body is not a JSON object")
    return document
