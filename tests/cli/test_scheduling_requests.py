"""What the scheduling commands send (policies, quota-shares, consumables, queues --policy):
request bodies a stub head records, and the usage errors caught before anything is sent."""

from __future__ import annotations

import io
import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead

POLICY_ARN = "arn:aws:batch:local:000000000000:scheduling-policy/research"


def test_policy_update_sends_the_whole_policy_with_the_flags_applied(stub: StubHead) -> None:
    stub.on("POST", "/v1/listschedulingpolicies", {"schedulingPolicies": [{"arn": POLICY_ARN}]})
    current = {
        "name": "research",
        "arn": POLICY_ARN,
        "fairsharePolicy": {
            "shareDecaySeconds": 3600,
            "computeReservation": 20,
            "shareDistribution": [
                {"shareIdentifier": "chem", "weightFactor": 0.5},
                {"shareIdentifier": "phys", "weightFactor": 1.0},
            ],
        },
    }
    stub.on("POST", "/v1/describeschedulingpolicies", {"schedulingPolicies": [current]})
    stub.on("POST", "/v1/updateschedulingpolicy", {})
    argv = ["policies", "update", "research", "--share", "bio*=2", "--remove-share", "phys"]
    assert main([*argv, "--compute-reservation", "0", "-e", stub.endpoint]) == 0
    assert stub.calls("/v1/updateschedulingpolicy")[0].body == {
        "arn": POLICY_ARN,
        "fairsharePolicy": {
            "shareDecaySeconds": 3600,
            "computeReservation": 0,
            "shareDistribution": [
                {"shareIdentifier": "chem", "weightFactor": 0.5},
                {"shareIdentifier": "bio*", "weightFactor": 2.0},
            ],
        },
    }


def test_policy_from_stdin_passes_a_quota_share_policy_untouched(
    stub: StubHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}, "tags": {"a": "b"}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    stub.on("POST", "/v1/createschedulingpolicy", {"name": "q", "arn": "arn:x:scheduling-policy/q"})
    assert main(["policies", "create", "q", "--from-json", "-", "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {**body, "name": "q"}


def test_queue_policy_by_name_becomes_its_arn(stub: StubHead) -> None:
    stub.on("POST", "/v1/listschedulingpolicies", {"schedulingPolicies": [{"arn": POLICY_ARN}]})
    stub.on("POST", "/v1/createjobqueue", {"jobQueueName": "fair", "jobQueueArn": "arn:q"})
    assert main(["queues", "create", "fair", "--policy", "research", "-e", stub.endpoint]) == 0
    assert stub.calls("/v1/createjobqueue")[0].body == {
        "jobQueueName": "fair",
        "priority": 1,
        "schedulingPolicyArn": POLICY_ARN,
    }


def test_quota_share_create_body(stub: StubHead) -> None:
    stub.on("POST", "/v1/createquotashare", {"quotaShareName": "gpu", "quotaShareArn": "arn:s"})
    argv = ["quota-shares", "create", "gpu", "-q", "qq", "--capacity", "VCPU=16,gpu=2"]
    argv += ["--strategy", "lend_and_borrow", "--borrow-limit", "-1", "--disabled"]
    assert main([*argv, "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {
        "quotaShareName": "gpu",
        "jobQueue": "qq",
        "capacityLimits": [
            {"maxCapacity": 16, "capacityUnit": "VCPU"},
            {"maxCapacity": 2, "capacityUnit": "GPU"},
        ],
        "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": -1},
        "preemptionConfiguration": {"inSharePreemption": "DISABLED"},
        "state": "DISABLED",
    }


def test_quota_share_update_keeps_the_strategy_a_borrow_limit_belongs_to(stub: StubHead) -> None:
    ref = "qq/quota-share/gpu"
    sharing = {"strategy": "LEND_AND_BORROW", "borrowLimit": 50}
    stub.on("POST", "/v1/describequotashare", {"resourceSharingConfiguration": sharing})
    stub.on("POST", "/v1/updatequotashare", {"quotaShareName": "gpu", "quotaShareArn": "arn:s"})
    argv = ["quota-shares", "update", "qq/gpu", "--borrow-limit", "25", "--no-in-share-preemption"]
    assert main([*argv, "-e", stub.endpoint]) == 0
    assert stub.calls("/v1/updatequotashare")[0].body == {
        "quotaShareArn": ref,
        "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": 25},
        "preemptionConfiguration": {"inSharePreemption": "DISABLED"},
    }


def test_consumable_update_operations(stub: StubHead) -> None:
    stub.on("POST", "/v1/updateconsumableresource", {"totalQuantity": 3})
    for flag, operation in (("--set", "SET"), ("--add", "ADD"), ("--remove", "REMOVE")):
        assert main(["consumables", "update", "lic", flag, "3", "-e", stub.endpoint]) == 0
        assert stub.calls()[-1].body == {
            "consumableResource": "lic",
            "operation": operation,
            "quantity": 3,
        }


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["policies", "create", "p", "--compute-reservation", "x"], "--compute-reservation"),
        (["policies", "create", "p", "--share", "=1"], "--share"),
        (["policies", "update", "p"], "update needs --share"),
        (["quota-shares", "create", "s", "-q", "q", "--capacity", "VCPU=-1"], "--capacity"),
        (["quota-shares", "create", "s", "--capacity", "VCPU=1", "--strategy", "LEND"], "--queue"),
        (
            ["quota-shares", "create", "s", "-q", "q", "--capacity", "VCPU=1", "--strategy", "x"],
            "--strategy",
        ),
        (["quota-shares", "update", "s", "--state", "disabled"], "QUEUE/NAME"),
        (["quota-shares", "update", "q/s"], "update needs --capacity"),
        (["quota-shares", "list"], "--queue"),
        (["consumables", "create", "c"], "--total"),
        (["consumables", "create", "c", "--total", "1", "--type", "x"], "--type"),
        (["queues", "snapshot", "q", "--limit", "0"], "--limit"),
    ],
)
def test_bad_flags_exit_2_naming_them_and_send_nothing(
    stub: StubHead, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert main([*argv, "-e", stub.endpoint]) == 2
    assert named in capsys.readouterr().err
    assert stub.calls() == []


@pytest.mark.parametrize(
    "command", ["policies", "scheduling-policies", "quota-shares", "consumables", "queues"]
)
def test_help_says_what_each_command_does(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    for action in ("list", "describe", "create", "update", "delete"):
        assert action in out
