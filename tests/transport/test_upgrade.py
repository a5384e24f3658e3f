"""Agents run the head's build: the decision, the one try, and the build id itself."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hpcbatch_agent.bootstrap import package_root
from hpcbatch_agent.build import build_id

from hpcbatch import protocol
from hpcbatch.errors import TransportError
from hpcbatch.transport.upgrade import (
    Decision,
    FailedTry,
    ReplaceTries,
    connect_current,
    decide,
    stale_reason,
)
from hpcbatch.transport.zipapp import build_agent_zipapp

HEAD = "0.1.0-aaaaaaaaaaaa"
OLD = "0.1.0-bbbbbbbbbbbb"
OTHER = "0.1.0-cccccccccccc"


def hello(build: str | None) -> dict[str, Any]:
    message = {"type": "hello", "agent_version": "0.1.0", "node": {}, "attempts": []}
    if build is not None:
        message["agent_build"] = build
    return message


# --- the decision ---------------------------------------------------------------------------


def test_an_agent_of_the_heads_build_is_served() -> None:
    assert decide(hello(HEAD), HEAD, None) == Decision("serve")
    assert stale_reason(hello(HEAD), HEAD) is None


def test_an_agent_of_another_build_is_replaced() -> None:
    reason = f"its agent is build {OLD}, this head's is {HEAD}"
    assert decide(hello(OLD), HEAD, None) == Decision("replace", reason)


def test_an_agent_older_than_the_build_field_counts_as_another_build() -> None:
    reason = f"its agent (0.1.0) reports no build, this head's is {HEAD}"
    assert decide(hello(None), HEAD, None) == Decision("replace", reason)


def test_the_build_that_a_failed_try_left_is_refused_with_its_reason() -> None:
    failed = FailedTry(HEAD, OTHER, "why")
    assert decide(hello(OTHER), HEAD, failed) == Decision("refuse", "why")


def test_a_failed_try_does_not_hold_for_another_build_or_another_head() -> None:
    failed = FailedTry(HEAD, OTHER, "why")
    assert decide(hello(OLD), HEAD, failed).action == "replace"  # yet another agent build
    assert decide(hello(OTHER), OLD, failed).action == "replace"  # a head of another build
    assert decide(hello(HEAD), HEAD, failed) == Decision("serve")  # fixed by hand


# --- the one try, with fake links -------------------------------------------------------------


class FakeLink:
    def __init__(self, build: str | None) -> None:
        self.hello = hello(build)
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeHost:
    """An agent of ``build`` that, when replaced, becomes ``replaced_by`` (or fails so)."""

    def __init__(self, build: str | None, replaced_by: str | None | Exception) -> None:
        self.build = build
        self.replaced_by = replaced_by
        self.calls: list[bool] = []
        self.links: list[FakeLink] = []

    async def connect(self, replacing: bool) -> FakeLink:
        self.calls.append(replacing)
        if replacing:
            if isinstance(self.replaced_by, Exception):
                raise self.replaced_by
            self.build = self.replaced_by
        self.links.append(FakeLink(self.build))
        return self.links[-1]


def connect(host: FakeHost, tries: ReplaceTries) -> FakeLink:
    return asyncio.run(connect_current("n1", "key", HEAD, host.connect, tries))


def test_a_current_agent_is_connected_once_and_kept() -> None:
    host = FakeHost(HEAD, replaced_by=None)
    link = connect(host, ReplaceTries())
    assert host.calls == [False] and not link.closed


def test_a_stale_agent_is_replaced_and_the_new_link_returned() -> None:
    host = FakeHost(OLD, replaced_by=HEAD)
    tries = ReplaceTries()
    link = connect(host, tries)
    assert host.calls == [False, True]
    assert host.links[0].closed and link is host.links[1] and not link.closed
    assert tries.get("key") is None


def test_a_replacement_that_stays_stale_fails_once_then_is_refused_without_replacing() -> None:
    host = FakeHost(OLD, replaced_by=OTHER)
    tries = ReplaceTries()
    with pytest.raises(TransportError) as first:
        connect(host, tries)
    assert first.value.message == (
        f"node n1: replaced a stale agent (its agent is build {OLD}, this head's is {HEAD}) "
        f"once, but the new one is stale too (its agent is build {OTHER}, this head's is "
        f"{HEAD}); not replacing it again: stop the agent on its host to let the head start "
        "its own"
    )
    assert all(link.closed for link in host.links)
    for _ in range(3):  # the supervisor reconnects: no loop of replacements
        with pytest.raises(TransportError) as again:
            connect(host, tries)
        assert again.value.message == first.value.message
    assert host.calls == [False, True, False, False, False]


def test_a_stale_agent_that_cannot_be_stopped_is_not_tried_again() -> None:
    host = FakeHost(OLD, replaced_by=TransportError("node n1: agent 42 in /s did not stop"))
    tries = ReplaceTries()
    with pytest.raises(TransportError) as first:
        connect(host, tries)
    assert first.value.message == (
        f"node n1: cannot replace a stale agent (its agent is build {OLD}, this head's is "
        f"{HEAD}): agent 42 in /s did not stop"
    )
    with pytest.raises(TransportError):
        connect(host, tries)
    assert host.calls == [False, True, False]


def test_an_agent_fixed_by_hand_after_a_failed_try_is_served_and_the_try_forgotten() -> None:
    host = FakeHost(OLD, replaced_by=OTHER)
    tries = ReplaceTries()
    with pytest.raises(TransportError):
        connect(host, tries)
    host.build = HEAD  # an admin stopped it; the head's build started
    assert not connect(host, tries).closed
    assert tries.get("key") is None


# --- the build id ---------------------------------------------------------------------------


def test_the_zipapp_and_the_package_report_the_same_build(tmp_path: Path) -> None:
    version, data = build_agent_zipapp()
    assert version == build_id()
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(data)
    script = "import sys; sys.path.insert(0, sys.argv[1]); from hpcbatch_agent.build import build_id; print(build_id())"
    shipped = subprocess.run(
        [sys.executable, "-I", "-c", script, str(pyz)], capture_output=True, text=True, check=True
    )
    assert shipped.stdout.strip() == version


def test_any_change_to_the_source_is_another_build(tmp_path: Path) -> None:
    copy = tmp_path / "hpcbatch_agent"
    shutil.copytree(Path(package_root()) / "hpcbatch_agent", copy)
    assert build_id(str(copy)) == build_id()
    with open(copy / "__init__.py", "a") as source:
        source.write("# another build\n")
    assert build_id(str(copy)) != build_id()
    assert build_id(str(copy)).startswith(f"{protocol.AGENT_VERSION}-")


def test_the_hello_carries_the_build_and_checks_it() -> None:
    node: Any = {
        "name": "n1",
        "vcpus": 1,
        "memory_mib": 1,
        "gpus": [],
        "cgroups": "none",
        "hostname": "h",
    }
    message = protocol.agent_hello(node, [], build=HEAD)
    assert message["agent_build"] == HEAD
    protocol.check_agent_message(message)
    assert "agent_build" not in protocol.agent_hello(node, [])
    with pytest.raises(protocol.MessageError, match="hello has a bad 'agent_build': 7"):
        protocol.check_agent_message({**message, "agent_build": 7})
