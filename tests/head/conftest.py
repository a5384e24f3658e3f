from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=2, memory=4096)
    try:
        yield process.start()
    finally:
        process.cleanup()
