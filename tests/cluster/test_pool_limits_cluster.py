"""A MANAGED SSH CE's limits on real SSH hosts (dev cluster): maxvCpus is a ceiling even for hosts
whose size the config does not say, a job no pool host could hold draws no host and says why,
and a pool host retried while unreachable keeps the CE INVALID (no CREATING flicker)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hpcbatch.devcluster import DevCluster
from tests.cluster.conftest import dev_cluster
from tests.cluster.test_capacity_cluster import _ce, _host_lines, _nodes, _queue
from tests.head.headproc import HeadProcess, wait_for

CPUS = len(os.sched_getaffinity(0))  # what a dev host's agent measures: it runs here
T = TypeVar("T")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path, 2) as built:
        yield built


def _unsized_pool(cluster: DevCluster) -> str:
    """Pool "free": both hosts, no vcpus/memory_mib in the config (known once they connect);
    pool "dead": one host on a port nothing listens on."""
    lines = ["[[host_pools]]", 'name = "free"']
    for host in cluster.hosts:
        sized = _host_lines(host)
        lines += ["[[host_pools.hosts]]", *(x for x in sized if not x.startswith(("vcpus", "mem")))]
    lines += ["[[host_pools]]", 'name = "dead"', "[[host_pools.hosts]]"]
    lines += _host_lines(cluster.hosts[0], port=1, name="nowhere")
    return "\n".join(lines) + "\n"


def _head(tmp_path: Path, pair: DevCluster) -> HeadProcess:
    head = HeadProcess(tmp_path / "head", nodes=0, extra_config=_unsized_pool(pair))
    settings = "host_idle_release_s = 1\nhost_retry_s = 1\n"
    head.config.write_text(settings + head.config.read_text())
    return head


class Watch:
    """Polls a CE and remembers the most vCPUs it ever reported."""

    def __init__(self, head: HeadProcess, ce: str) -> None:
        self.head, self.ce, self.most = head, ce, 0

    def until(self, check: Callable[[dict[str, Any]], T | None], timeout: float, what: str) -> T:
        def probe() -> T | None:
            ce = _ce(self.head, self.ce)
            self.most = max(self.most, ce["computeResources"]["desiredvCpus"])
            return check(ce)

        return wait_for(probe, timeout, what)


def _too_big(head: HeadProcess, host: str) -> int:
    """How often ``host`` connected past its CE's maxvCpus and was let go (the head warns)."""
    return head.log.read_text().count(f"node {host}: its {CPUS} vCPUs take c past its maxvCpus")


def _failures(head: HeadProcess, host: str) -> int:
    """How often ``host`` was taken, did not connect and was let go (the head's warnings)."""
    return head.log.read_text().count(f"node {host}: did not connect")


def test_max_vcpus_holds_for_unsized_hosts_and_a_job_no_host_holds_draws_none(
    tmp_path: Path, pair: DevCluster
) -> None:
    head = _head(tmp_path, pair)
    ceiling = CPUS + 1  # one host fits; two would pass it
    try:
        head.start()
        b = head.batch()
        b.create_compute_environment(
            computeEnvironmentName="c",
            type="MANAGED",
            computeResources={
                "type": "SSH",
                "instanceTypes": ["free"],
                "minvCpus": 0,
                "maxvCpus": ceiling,
                "desiredvCpus": 0,
            },
        )
        _queue(head, "cq", "c")
        big = b.submit_job(
            jobName="big",
            jobQueue="cq",
            jobDefinition="default",
            containerOverrides={
                "command": ["true"],
                "resourceRequirements": [{"type": "VCPU", "value": str(ceiling)}],
            },
        )["jobId"]
        watch = Watch(head, "c")
        # sizes unknown: big draws the first host, then the second, which passes the ceiling
        # and is let go at once; both sizes known, big draws nothing more, says why, and the
        # idle host goes too
        first, second = (h.name for h in pair.hosts)
        watch.until(lambda ce: _too_big(head, second) >= 1 or None, 90, "the second host taken")
        reason = (
            f"MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs {ceiling} vCPUs; no host of host "
            f"pool(s) free can hold it (the largest has {CPUS} vCPUs)"
        )
        watch.until(
            lambda ce: head.raw_describe(big)["statusReason"] == reason or None,
            60,
            f"big's reason: {reason}",
        )
        watch.until(lambda ce: not _nodes(head, "c") or None, 60, "every host released")
        small = b.submit_job(
            jobName="small",
            jobQueue="cq",
            jobDefinition="default",
            containerOverrides={"command": ["hostname"]},
        )["jobId"]
        done = head.wait_status(small, "SUCCEEDED", "FAILED", timeout=90)
        assert done["status"] == "SUCCEEDED", head.story(small)
        watch.until(lambda ce: ce["status"] == "VALID" or None, 30, "c VALID")
        assert watch.most <= ceiling, watch.most
        assert head.raw_describe(big)["status"] == "RUNNABLE"
        assert _too_big(head, second) == 1  # known too big since it connected: never again
        # a restarted head remembers the measured sizes
        head.stop()
        head.start()
        assert head.raw_describe(big)["statusReason"] == reason
        assert _too_big(head, second) == 1
        assert _too_big(head, first) == 0
    finally:
        head.cleanup()


def test_an_unreachable_pool_stays_invalid_while_its_host_is_retried(
    tmp_path: Path, pair: DevCluster
) -> None:
    head = _head(tmp_path, pair)
    try:
        head.start()
        head.batch().create_compute_environment(
            computeEnvironmentName="deadce",
            type="MANAGED",
            computeResources={
                "type": "SSH",
                "instanceTypes": ["dead"],
                "maxvCpus": 2,
                "desiredvCpus": 2,
            },
        )
        invalid = wait_for(
            lambda: (ce := _ce(head, "deadce"))["status"] == "INVALID" and ce, 60, "INVALID"
        )
        assert invalid["statusReason"].startswith("host pool dead has no reachable host (")
        tries = _failures(head, "nowhere")
        seen: set[str] = set()
        deadline = time.monotonic() + 90
        while _failures(head, "nowhere") < tries + 3:  # three retries, host_retry_s 1 apart
            assert time.monotonic() < deadline, f"nowhere failed {_failures(head, 'nowhere')}"
            seen.add(_ce(head, "deadce")["status"])
        assert seen == {"INVALID"}, seen
    finally:
        head.cleanup()
