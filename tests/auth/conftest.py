from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.auth.unixusers import unix_users


@pytest.fixture(scope="session")
def users() -> Iterator[None]:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the multi-user tests need root (useradd); CI runs as root")
        pytest.skip("the multi-user tests need root to make Unix users")
    with unix_users():
        yield
