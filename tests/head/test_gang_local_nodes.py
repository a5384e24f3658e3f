"""A 2-node job on a real head's LOCAL compute environment with 2 virtual nodes (real local
agents): each node has its own loopback address, every node's environment names the
allocation, the peers and the main node, and the CE's fabric shows in DescribeJobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess

FABRIC = 'fabric = "tcp"\nnetwork_interface = "lo"\n'  # appended to the [local] table


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=2, vcpus=2, memory=4096, extra_config=FABRIC)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_two_virtual_nodes_get_distinct_addresses_and_the_gang_environment(
    head: HeadProcess, tmp_path: Path
) -> None:
    out = tmp_path / "env"
    out.mkdir()
    # Each node writes its env whole (rename); the main node ends only once the other's is
    # there (20 s at most), since its end stops the other node.
    script = (
        f'i="$AWS_BATCH_JOB_NODE_INDEX"; env > {out}/tmp-$i && mv {out}/tmp-$i {out}/node-$i; '
        f"n=0; while [ ! -e {out}/node-1 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done"
    )
    overrides = {
        "numNodes": 2,
        "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": {"command": ["sh", "-c", script]}}
        ],
    }
    reply = head.batch().submit_job(
        jobName="envs",
        jobQueue="default",
        jobDefinition="default-multinode",
        nodeOverrides=overrides,
    )
    parent = reply["jobId"]
    done = head.wait_status(parent, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    envs = [_env(out / f"node-{i}") for i in range(2)]
    hosts = envs[0]["HPCBATCH_HOSTS"].split(",")
    addresses = [h.split(":")[0] for h in hosts]
    assert sorted(addresses) == ["127.0.0.2", "127.0.0.3"]  # one per virtual node
    assert all(h.endswith(":2") for h in hosts)  # each node's 2 vCPUs are its slots
    for env in envs:
        assert env["HPCBATCH_HOSTS"] == ",".join(hosts)
        assert env["HPCBATCH_MAIN_NODE"] == addresses[0]
        assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == addresses[0]
        assert "HPCBATCH_LAUNCH_PEERS" in env
        for peer in filter(None, env["HPCBATCH_LAUNCH_PEERS"].split(",")):
            assert peer.split("=")[0] in addresses and int(peer.split("=")[1]) > 0
        assert env["HPCBATCH_FABRIC"] == "tcp"
        assert env["OMPI_MCA_btl_tcp_if_include"] == "lo"
    nodes = head.batch().describe_jobs(jobs=[f"{parent}#0", f"{parent}#1"])["jobs"]
    for node in nodes:
        shown = {e["name"]: e["value"] for e in node["container"]["environment"]}
        assert shown["HPCBATCH_FABRIC"] == "tcp" and shown["NCCL_SOCKET_IFNAME"] == "=lo"
