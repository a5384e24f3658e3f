"""Helpers for the API parsing tests: send a dict as a request body, expect success or a rule."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from hpcbatch.errors import ValidationError
from hpcbatch.head.api.parse import parse_request


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` applied; a None value in the patch removes that key."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def accept(operation: str, data: dict[str, Any], **options: Any) -> BaseModel:
    return parse_request(operation, body(data), **options)


def reject(
    operation: str, data: dict[str, Any], field: str, phrase: str, **options: Any
) -> ValidationError:
    """Parse must fail at ``field`` with a rule that mentions ``phrase``."""
    with pytest.raises(ValidationError) as caught:
        parse_request(operation, body(data), **options)
    error = caught.value
    assert (error.field, phrase in error.rule) == (field, True), error.message
    return error
