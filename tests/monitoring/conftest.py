from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.prometheus_proc import require_program

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


@pytest.fixture
def promtool() -> str:
    """promtool's path (Debian's prometheus package; scripts/test.sh installs it)."""
    return require_program("promtool")
