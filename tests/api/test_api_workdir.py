"""The ``x-hpcbatch-workdir`` header of SubmitJob: percent-encoded (or raw) UTF-8, an absolute
path; each refusal names the header and the rule."""

from __future__ import annotations

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.api.translate import workdir_of


def _as_received(raw: bytes) -> str:
    """What the ASGI server hands over for header bytes ``raw`` (latin-1 text)."""
    return raw.decode("latin-1")


@pytest.mark.parametrize(
    ("sent", "path"),
    [
        (b"/home/ana/run", "/home/ana/run"),
        (b"/home/ana/my%20run%2025%25", "/home/ana/my run 25%"),
        (b"/data/%C3%A9t%C3%A9", "/data/été"),
        ("/data/été".encode(), "/data/été"),  # raw UTF-8, as a hand-set boto3 header may be
    ],
)
def test_a_workdir_header_is_decoded(sent: bytes, path: str) -> None:
    assert workdir_of(_as_received(sent)) == path


def test_no_header_is_no_workdir() -> None:
    assert workdir_of(None) is None


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"runs/1", "must be an absolute path (starting with /), not 'runs/1'"),
        (b"", "must be an absolute path (starting with /), not ''"),
        (b"/a%00b", "must not contain a NUL character"),
        (b"/a%FFb", "must be percent-encoded UTF-8"),
        (b"/" + b"a" * 4095, "must be at most 4095 bytes, not 4096"),
    ],
)
def test_a_bad_workdir_header_is_refused_naming_it(sent: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        workdir_of(_as_received(sent))
    assert caught.value.message == f"x-hpcbatch-workdir: {message}"
