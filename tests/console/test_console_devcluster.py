"""The console over a dev cluster: SSH compute hosts (network namespaces, each a real sshd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from hpcbatch.devcluster import DevCluster
from tests.cluster.conftest import dev_cluster, start_head
from tests.console.browser import serious_violations
from tests.head.headproc import HeadProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path_factory.mktemp("console-cluster"), 2) as built:
        yield built


@pytest.fixture(scope="module")
def cluster_head(
    tmp_path_factory: pytest.TempPathFactory, hosts: DevCluster
) -> Iterator[HeadProcess]:
    started = start_head(tmp_path_factory.mktemp("console-cluster-head"), hosts)
    try:
        yield started
    finally:
        started.cleanup()


def test_an_array_submitted_from_the_form_runs_on_the_hosts_and_their_logs_stream_in(
    cluster_head: HeadProcess, hosts: DevCluster, page: Any, shots: Path
) -> None:
    names = {host.name for host in hosts.hosts}
    page.goto(f"{cluster_head.endpoint}/console/nodes")
    for name in names:
        expect(page.locator(f'[id="node-{name}"]')).to_contain_text("ONLINE")
        expect(page.locator(f'[id="node-{name}"]')).to_contain_text("0.1.0-")  # agent build
    page.goto(f"{cluster_head.endpoint}/console/submit")
    page.get_by_label("Name", exact=True).fill("where")
    page.get_by_label("Queue").select_option("cluster")
    page.get_by_label("Command").fill("sh -c 'sleep 1; hostname'")
    page.get_by_label("Array size").fill("2")
    page.get_by_label("vCPUs").fill("2")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".note")).to_have_text("Submitted.")
    parent = page.url.rsplit("/", 1)[-1].split("?")[0]
    expect(page.locator("h1 .status")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("#h-children")).to_contain_text("Array children (2)")
    ran_on = set()
    for index in range(2):
        page.goto(f"{cluster_head.endpoint}/console/jobs/{parent}:{index}")
        expect(page.locator("#log-state")).to_contain_text("ended", timeout=15_000)
        printed = page.locator("#log").text_content() or ""
        ran_on.add(printed.strip())
        expect(page.locator("table").first).to_contain_text(printed.strip())  # its attempt's node
    assert ran_on <= names and ran_on, ran_on
    page.goto(f"{cluster_head.endpoint}/console/nodes")
    page.screenshot(path=str(shots / "console-nodes-cluster.png"))
    assert serious_violations(page) == []
