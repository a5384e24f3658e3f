"""The scheduling commands (policies, quota-shares, consumables, queues --policy/describe/snapshot)
against a real head on LOCAL nodes (2 nodes of 2 vCPUs): what an admin types, the tables they
see, the JSON scripts read, and the head's refusals printed with exit code 3."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.head.headproc import HeadProcess
from tests.head.quota_story import snapshot_scene
from tests.head.test_cli_real_head import cli


def ok(head: HeadProcess, *args: str) -> str:
    done = cli(head, *args)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def refused(head: HeadProcess, *args: str) -> str:
    done = cli(head, *args)
    assert done.returncode == 3, f"{args}: rc {done.returncode}, {done.stdout} {done.stderr}"
    assert done.stderr.startswith("error: ")
    return done.stderr


def test_policies_create_describe_update_delete(head: HeadProcess) -> None:
    created = ok(
        head,
        "policies",
        "create",
        "research",
        "--share-decay-seconds",
        "3600",
        "--compute-reservation",
        "20",
        "--share",
        "chem=0.5",
        "--share",
        "bio*=2",
        "--share",
        "phys",
    )
    assert created.startswith("created scheduling policy research (arn:aws:batch:")
    lines = ok(head, "policies").splitlines()
    assert lines[0].split()[:5] == ["NAME", "KIND", "DECAY", "S", "RESERVE"]
    assert lines[1].split() == [
        "research",
        "fair",
        "share",
        "3600",
        "20",
        "chem=0.5",
        "bio*=2",
        "phys=1",
    ]
    ok(head, "queues", "create", "fair", "--policy", "research", "--ce", "local")
    described = ok(head, "policies", "describe", "research")
    assert "queues:              fair" in described
    assert "compute reservation: 20 %" in described
    assert "chem                           0.5            2x" in described
    # update changes only what its flags name: decay and reservation stay
    ok(
        head,
        "scheduling-policies",
        "update",
        "research",
        "--share",
        "chem=0.25",
        "--remove-share",
        "phys",
    )
    document = json.loads(ok(head, "policies", "describe", "research", "-o", "json"))
    fairshare = document["schedulingPolicies"][0]["fairsharePolicy"]
    assert fairshare["shareDecaySeconds"] == 3600 and fairshare["computeReservation"] == 20
    assert fairshare["shareDistribution"] == [
        {"shareIdentifier": "chem", "weightFactor": 0.25},
        {"shareIdentifier": "bio*", "weightFactor": 2.0},
    ]
    listed = json.loads(ok(head, "policies", "-o", "json"))
    assert [p["name"] for p in listed["schedulingPolicies"]] == ["research"]
    # refusals: the head's rule, the CLI's lookup, and a bad flag
    assert "weightFactor: must be 0.0001-999.9999" in refused(
        head, "policies", "create", "bad", "--share", "chem=0"
    )
    assert "used by job queue(s) fair" in refused(head, "policies", "delete", "research")
    assert "no scheduling policy named 'nope'" in refused(head, "policies", "delete", "nope")
    gone = "arn:aws:batch:local:000000000000:scheduling-policy/gone"
    assert f"no scheduling policy '{gone}'" in refused(head, "policies", "describe", gone)
    bad = cli(head, "policies", "create", "x", "--share", "chem=lots")
    assert bad.returncode == 2 and "argument --share" in bad.stderr
    ok(head, "queues", "delete", "fair", "--force")
    assert ok(head, "policies", "delete", "research") == "deleted scheduling policy research\n"
    assert ok(head, "policies").splitlines()[1:] == []


def test_policy_from_json_passes_the_request_through(head: HeadProcess, tmp_path: Path) -> None:
    body = tmp_path / "policy.json"
    body.write_text(
        json.dumps(
            {
                "fairsharePolicy": {
                    "shareDecaySeconds": 60,
                    "shareDistribution": [{"shareIdentifier": "a", "weightFactor": 3}],
                }
            }
        )
    )
    ok(head, "policies", "create", "p", "--from-json", str(body), "--compute-reservation", "5")
    fairshare = json.loads(ok(head, "policies", "describe", "p", "--json"))["schedulingPolicies"][
        0
    ]["fairsharePolicy"]
    assert fairshare == {
        "shareDecaySeconds": 60,
        "computeReservation": 5,
        "shareDistribution": [{"shareIdentifier": "a", "weightFactor": 3.0}],
    }
    # a quotaSharePolicy reaches the head untouched; --quota-share makes the same
    quota = tmp_path / "quota.json"
    quota.write_text(json.dumps({"quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}}))
    ok(head, "policies", "create", "q", "--from-json", str(quota))
    ok(head, "policies", "create", "q2", "--quota-share")
    for name in ("q", "q2"):
        policy = json.loads(ok(head, "policies", "describe", name, "--json"))
        (detail,) = policy["schedulingPolicies"]
        assert detail["quotaSharePolicy"] == {"idleResourceAssignmentStrategy": "FIFO"}
        assert "fairsharePolicy" not in detail
    assert "quota share" in ok(head, "policies", "list")
    both = cli(head, "policies", "create", "q3", "--quota-share", "--share", "a=1")
    assert both.returncode == 2 and "--quota-share takes none of the fair-share" in both.stderr
    changed = refused(head, "policies", "update", "q", "--share", "a=1")
    assert "fairsharePolicy: scheduling policy 'q' is a quota-share policy" in changed
    assert "a policy's kind never changes" in changed
    missing = cli(head, "policies", "create", "q", "--from-json", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "argument --from-json: cannot read" in missing.stderr


def test_queue_policy_describe_and_snapshot(head: HeadProcess) -> None:
    ok(head, "policies", "create", "p2", "--share", "A=1", "--share", "B=3")
    ok(head, "queues", "create", "fq", "--policy", "p2", "--ce", "local")
    described = ok(head, "queues", "describe", "fq")
    assert "scheduling policy:    p2 (fair share; arn:aws:batch:" in described
    assert "scheduling policy:    none (FIFO)" in ok(head, "queues", "describe", "default")
    arn = json.loads(ok(head, "queues", "describe", "fq", "-o", "json"))["jobQueues"][0][
        "schedulingPolicyArn"
    ]
    assert arn.endswith(":scheduling-policy/p2")
    assert "FIFO queue" in refused(head, "queues", "update", "default", "--policy", "p2")
    assert "no job queue named 'nope'" in refused(head, "queues", "describe", "nope")
    # 4 vCPUs in all: six 1-vCPU jobs leave two RUNNABLE, shown in dispatch order with shares
    ids = []
    for share in ("A", "B", "A", "B", "A", "B"):
        submitted = ok(
            head, "submit", "-q", "fq", "--share", share, "-n", f"j{share}", "--", "sleep", "60"
        )
        ids.append(submitted.strip())
    deadline = time.monotonic() + 30
    while True:
        snapshot = json.loads(ok(head, "queues", "snapshot", "fq", "-o", "json"))
        if (
            len(snapshot["frontOfQueue"]["jobs"]) == 2
            and snapshot["queueUtilization"]["totalCapacityUsage"][0]["quantity"] == 4
        ):
            break
        assert time.monotonic() < deadline, snapshot
        time.sleep(0.05)
    table = ok(head, "queues", "snapshot", "fq").splitlines()
    assert table[0] == "queue fq: 2 RUNNABLE job(s) at the front, in dispatch order"
    assert table[1].split() == ["#", "JOB", "ID", "NAME", "SHARE", "PRIORITY", "RUNNABLE", "SINCE"]
    front = [line.split() for line in table[2:4]]
    assert [row[0] for row in front] == ["1", "2"]
    assert {row[1] for row in front} <= set(ids)
    assert all(row[3] in ("A", "B") and row[2] == f"j{row[3]}" for row in front)
    assert table[4] == "in use: 4 vCPUs; active shares: 2"
    assert table[5].split() == ["SHARE", "IN", "USE", "FIRST", "JOB", "AT", "#"]
    assert "no job queue named 'nope'" in refused(head, "queues", "snapshot", "nope")
    ok(head, "terminate", *ids)


def test_quota_shares_commands(head: HeadProcess) -> None:
    ok(head, "queues", "create", "qq", "--ce", "local")
    created = ok(
        head,
        "quota-shares",
        "create",
        "gpu",
        "--queue",
        "qq",
        "--capacity",
        "VCPU=2,GPU=0",
        "--strategy",
        "LEND_AND_BORROW",
        "--borrow-limit",
        "50",
        "--in-share-preemption",
    )
    assert created.startswith("created quota share gpu (arn:aws:batch:")
    assert created.rstrip().endswith(":job-queue/qq/quota-share/gpu)")
    ok(
        head,
        "quota-shares",
        "create",
        "cpu",
        "-q",
        "qq",
        "--capacity",
        "vcpu=2",
        "--strategy",
        "reserve",
        "--disabled",
    )
    lines = ok(head, "quota-shares", "list", "--queue", "qq").splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATE",
        "QUOTA",
        "IN",
        "USE",
        "STRATEGY",
        "BORROW",
        "LIMIT",
        "IN-SHARE",
        "PREEMPT",
    ]
    assert lines[1].split() == [
        "gpu",
        "ENABLED",
        "VCPU=2,GPU=0",
        "VCPU=0,GPU=0",  # IN USE, from GetJobQueueSnapshot's quotaShareUtilization
        "LEND_AND_BORROW",
        "50",
        "%",
        "ENABLED",
    ]
    assert lines[2].split() == ["cpu", "DISABLED", "VCPU=2", "VCPU=0", "RESERVE", "-", "DISABLED"]
    # update merges --borrow-limit into the share's strategy; QUEUE/NAME and --queue both name it
    ok(head, "quota-shares", "update", "gpu", "--queue", "qq", "--borrow-limit", "25")
    ok(head, "quota-shares", "update", "qq/cpu", "--state", "enabled", "--capacity", "VCPU=1")
    detail = json.loads(ok(head, "quota-shares", "describe", "qq/gpu", "qq/cpu", "-o", "json"))
    gpu, cpu = detail["quotaShares"]
    assert gpu["resourceSharingConfiguration"] == {"strategy": "LEND_AND_BORROW", "borrowLimit": 25}
    assert (cpu["state"], cpu["capacityLimits"]) == (
        "ENABLED",
        [{"maxCapacity": 1, "capacityUnit": "VCPU"}],
    )
    described = ok(head, "quota-shares", "describe", "gpu", "-q", "qq")
    assert "borrow limit:        25 %" in described and "queue:               qq" in described
    assert "quota shares:         gpu (VCPU=2,GPU=0), cpu (VCPU=1)" in ok(
        head, "queues", "describe", "qq"
    )
    listed = json.loads(ok(head, "quota-shares", "list", "-q", "qq", "--json"))
    assert [s["quotaShareName"] for s in listed["quotaShares"]] == ["gpu", "cpu"]
    # refusals: the head's rules, and flags the CLI checks itself
    assert "is ENABLED; disable it" in refused(head, "quota-shares", "delete", "qq/cpu")
    assert "has no quota share named 'nope'" in refused(head, "quota-shares", "describe", "qq/nope")
    no_strategy = cli(head, "quota-shares", "create", "x", "-q", "qq", "--capacity", "VCPU=1")
    assert no_strategy.returncode == 2 and "create needs --strategy" in no_strategy.stderr
    bad_unit = cli(head, "quota-shares", "create", "x", "-q", "qq", "--capacity", "CORES=1")
    assert bad_unit.returncode == 2 and "argument --capacity" in bad_unit.stderr
    assert ok(head, "quota-shares", "delete", "qq/cpu", "--force") == "deleted quota share qq/cpu\n"
    assert [
        line.split()[0] for line in ok(head, "quota-shares", "list", "-q", "qq").splitlines()[1:]
    ] == ["gpu"]


def test_consumables_commands(head: HeadProcess) -> None:
    ok(
        head,
        "consumables",
        "create",
        "lic",
        "--total",
        "4",
        "--type",
        "replenishable",
        "--tag",
        "team=a",
    )
    ok(head, "consumables", "create", "tok", "--total", "2", "--type", "NON_REPLENISHABLE")
    lines = ok(head, "consumables").splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "TOTAL", "IN", "USE", "AVAILABLE"]
    assert lines[1].split() == ["lic", "REPLENISHABLE", "4", "0", "4"]
    assert lines[2].split() == ["tok", "NON_REPLENISHABLE", "2", "0", "2"]
    filtered = ok(head, "consumables", "list", "--name", "li*").splitlines()
    assert [line.split() for line in filtered[1:]] == [lines[1].split()]
    running = ok(
        head, "submit", "--consumable", "lic=3", "-n", "first", "--", "sleep", "60"
    ).strip()
    head.wait_status(running, "RUNNING")
    waiting = ok(head, "submit", "--consumable", "lic=3", "-n", "second", "--", "true").strip()
    head.wait_status(waiting, "RUNNABLE")
    jobs = ok(head, "consumables", "jobs", "lic").splitlines()
    assert jobs[0].split()[:6] == ["JOB", "ID", "NAME", "STATUS", "QUANTITY", "QUEUE"]
    rows = {line.split()[0]: line.split() for line in jobs[1:]}
    assert rows[running][1:5] == ["first", "RUNNING", "3", "default"]
    assert rows[waiting][1:5] == ["second", "RUNNABLE", "3", "default"]
    only = json.loads(ok(head, "consumables", "jobs", "lic", "--status", "runnable", "-o", "json"))
    assert [j["jobName"] for j in only["jobs"]] == ["second"]
    assert 'waiting for consumable resource "lic"' in only["jobs"][0]["statusReason"]
    described = ok(head, "consumables", "describe", "lic").splitlines()
    assert described[1].split()[:5] == ["lic", "REPLENISHABLE", "4", "3", "1"]
    document = json.loads(ok(head, "consumables", "describe", "lic", "-o", "json"))
    assert document["consumableResources"][0]["tags"] == {"team": "a"}
    assert "below the 3 of 'lic' in use" in refused(
        head, "consumables", "update", "lic", "--set", "1"
    )
    assert (
        ok(head, "consumables", "update", "lic", "--add", "2")
        == "updated consumable resource lic: total 6\n"
    )
    head.wait_status(waiting, "SUCCEEDED")
    assert "no consumable resource 'nope'" in refused(head, "consumables", "delete", "nope")
    neither = cli(head, "consumables", "update", "lic")
    assert neither.returncode == 2 and "--set --add --remove is required" in neither.stderr
    assert ok(head, "consumables", "delete", "tok") == "deleted consumable resource tok\n"
    ok(head, "terminate", running)


def test_quota_share_use_and_snapshot(head: HeadProcess) -> None:
    """A queue with two quota shares, a borrowing and jobs waiting in both (quota_story's
    snapshot_scene): IN USE of ``quota-shares list`` and the per-share section of ``queues
    snapshot`` show what GetJobQueueSnapshot says of the shares."""
    ok(head, "queues", "create", "qs", "--ce", "local")
    ids = snapshot_scene(head, "qs")
    lines = ok(head, "quota-shares", "list", "-q", "qs").splitlines()
    assert [line.split()[:4] for line in lines[1:]] == [
        ["a", "ENABLED", "VCPU=2", "VCPU=3"],  # a borrows 1 vCPU
        ["b", "ENABLED", "VCPU=4", "VCPU=0"],
    ]
    table = ok(head, "queues", "snapshot", "qs").splitlines()
    assert table[0] == "queue qs: 3 RUNNABLE job(s) at the front, in dispatch order"
    front = [line.split() for line in table[2:5]]
    assert [(row[0], row[1], row[3]) for row in front] == [
        ("1", ids["b1"], "b"),
        ("2", ids["a3"], "a"),
        ("3", ids["a4"], "a"),
    ]
    assert table[5] == "in use: 3 vCPUs"
    assert table[6].split() == ["SHARE", "IN", "USE", "FIRST", "JOB", "AT", "#", "FIRST", "JOB"]
    assert [line.split() for line in table[7:]] == [
        ["b", "0", "vCPUs", "1", ids["b1"]],
        ["a", "3", "vCPUs", "2", ids["a3"]],
    ]
    ok(head, "terminate", *ids.values())
