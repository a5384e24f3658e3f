"""Quota-share borrowing and preemption end to end on the dev cluster: two SSH hosts of 2 vCPUs
(network namespaces, real sshd); a borrower is preempted and retried, an in-quota job never;
and on three hosts, a 2-node borrower is preempted whole for an in-quota 2-node job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import dev_cluster, start_head
from tests.head.headproc import HeadProcess
from tests.head.quota_story import borrow_and_preempt, gang_takes_its_quota_back


@pytest.fixture
def two_host_head(tmp_path: Path) -> Iterator[HeadProcess]:
    with dev_cluster(tmp_path, 2) as cluster:
        head = start_head(tmp_path, cluster)
        try:
            yield head
        finally:
            head.cleanup()


def test_a_borrower_is_preempted_and_retried_across_hosts(two_host_head: HeadProcess) -> None:
    borrow_and_preempt(two_host_head, "cluster")


@pytest.fixture
def three_host_head(tmp_path: Path) -> Iterator[HeadProcess]:
    with dev_cluster(tmp_path, 3) as cluster:
        head = start_head(tmp_path, cluster)
        try:
            yield head
        finally:
            head.cleanup()


def test_an_in_quota_gang_takes_two_hosts_back_from_a_gang_borrower(
    three_host_head: HeadProcess,
) -> None:
    gang_takes_its_quota_back(three_host_head, "cluster")
