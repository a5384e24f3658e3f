from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


@pytest.fixture
def promtool() -> str:
    """promtool's path (Debian's prometheus package; scripts/test.sh installs it)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: scripts/test.sh installs the prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path
