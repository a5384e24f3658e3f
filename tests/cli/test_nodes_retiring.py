"""``hpcbatch nodes`` says which nodes are retiring (their host left the head's config) and why."""

from __future__ import annotations

import pytest

from tests.cli.stubhead import StubHead
from tests.cli.test_nodes_gang_columns import _node, _table

WHY = "removed from the head's config"


def test_a_retiring_node_says_so_in_its_state_and_why_in_its_reason(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    retiring = _node("n2", state="DRAINING", stateReason=WHY, retiring=WHY, runningJobs=1)
    rows = _table(stub, capsys, _node("n1"), retiring)
    assert rows[1][:3] == ["n1", "local", "ONLINE"]
    assert rows[2][:4] == ["n2", "local", "DRAINING", "(retiring)"]
    assert " ".join(rows[2]).endswith(WHY)
