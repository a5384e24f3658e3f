"""``hpcbatch nodes add/remove`` and ``ces create`` with host pools: what they send."""

from __future__ import annotations

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead


def test_nodes_add_sends_host_tables(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on("POST", "/hpcbatch/v1/nodes", {"computeEnvironment": "own", "added": ["10.0.0.1", "b"]})
    argv = ["nodes", "add", "--ce", "own", "root@10.0.0.1:2222", "admin@b.example"]
    argv += ["--key", "/k", "--known-hosts", "/kh", "--vcpus", "8", "-e", stub.endpoint]
    assert main(argv) == 0
    assert stub.calls()[0].body == {
        "computeEnvironment": "own",
        "hosts": [
            {
                "name": "10.0.0.1",
                "address": "10.0.0.1",
                "key": "/k",
                "known_hosts": "/kh",
                "user": "root",
                "port": 2222,
                "vcpus": 8,
            },
            {
                "name": "b.example",
                "address": "b.example",
                "key": "/k",
                "known_hosts": "/kh",
                "user": "admin",
                "vcpus": 8,
            },
        ],
    }
    assert capsys.readouterr().out == (
        "10.0.0.1: added to own (connecting)\nb: added to own (connecting)\n"
    )


def test_nodes_add_name_is_for_one_host(stub: StubHead) -> None:
    argv = ["nodes", "add", "--ce", "own", "a", "b", "--name", "x", "--key", "/k"]
    with pytest.raises(SystemExit, match="--name names one host"):
        main([*argv, "--known-hosts", "/kh", "-e", stub.endpoint])


def test_nodes_remove(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on("POST", "/hpcbatch/v1/nodes/h1/remove", {"node": {"name": "h1"}})
    assert main(["nodes", "remove", "h1", "-e", stub.endpoint]) == 0
    assert capsys.readouterr().out == "h1: leaving once its jobs end\n"


def test_ces_create_with_pools_and_unmanaged(stub: StubHead) -> None:
    stub.on("POST", "/v1/createcomputeenvironment", {"computeEnvironmentName": "c"})
    argv = ["ces", "create", "c", "--kind", "ssh", "--pool", "gpu", "--pool", "cpu"]
    assert main([*argv, "--max-vcpus", "8", "--desired-vcpus", "2", "-e", stub.endpoint]) == 0
    assert main(["ces", "create", "u", "--kind", "unmanaged", "-e", stub.endpoint]) == 0
    assert [c.body for c in stub.calls()] == [
        {
            "computeEnvironmentName": "c",
            "type": "MANAGED",
            "computeResources": {
                "type": "SSH",
                "maxvCpus": 8,
                "desiredvCpus": 2,
                "instanceTypes": ["gpu", "cpu"],
            },
        },
        {"computeEnvironmentName": "u", "type": "UNMANAGED"},
    ]
