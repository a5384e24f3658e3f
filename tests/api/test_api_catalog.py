"""All 48 operations of botocore's Batch model: each served or refused, and
docs/api.md's table saying the same, so neither can drift from botocore or from the head."""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session
import pytest

from hpcbatch.head.api.catalog import SAGEMAKER_ONLY, unserved
from hpcbatch.head.api.operations import HANDLERS
from hpcbatch.head.api.parse import OPERATIONS

BOTOCORE = set(botocore.session.get_session().get_service_model("batch").operation_names)
SERVED = {name for name, _ in OPERATIONS.values()}
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"\| (?P<name>[A-Za-z]+) \| (?P<status>[a-z ]+) \|")


def _doc_table() -> dict[str, str]:
    """operation -> status, from the table of docs/api.md whose header is "| operation | status"."""
    rows: dict[str, str] = {}
    lines = API_DOC.read_text().splitlines()
    start = lines.index("| operation | status | notes |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        match = ROW.match(line)
        assert match, f"docs/api.md: a row the test cannot read: {line[:80]}"
        assert match["name"] not in rows, f"docs/api.md lists {match['name']} twice"
        rows[match["name"]] = match["status"].strip()
    return rows


def test_every_botocore_operation_is_served_or_refused_and_only_one() -> None:
    assert len(BOTOCORE) == 48
    assert SERVED | set(SAGEMAKER_ONLY) == BOTOCORE
    assert len(SERVED) + len(SAGEMAKER_ONLY) == 48
    assert set(HANDLERS) == SERVED


def test_the_docs_table_lists_all_48_with_the_status_the_head_gives() -> None:
    table = _doc_table()
    assert set(table) == BOTOCORE, (set(table) ^ BOTOCORE) or "docs/api.md"
    for name, status in table.items():
        if name in SERVED:
            assert status in ("served", "served with differences"), name
        else:
            assert status == "refused", name


@pytest.mark.parametrize("name", sorted(SAGEMAKER_ONLY))
def test_sagemaker_operations_are_refused_saying_what_to_use(name: str) -> None:
    found = unserved(name.lower())
    assert found is not None
    assert found[0] == name
    assert f"{name} is SageMaker-only" in found[1]
    assert f"use {SAGEMAKER_ONLY[name]} instead" in found[1]


@pytest.mark.parametrize("path_name", ["submitjob", "launchjob", "", "SubmitServiceJob"])
def test_served_and_unknown_names_are_not_in_the_catalog(path_name: str) -> None:
    assert unserved(path_name) is None  # paths arrive lower-cased; app.py lowers them
