"""``hpcbatch users ...`` and ``hpcbatch whoami`` against a stub answering the contract's shapes."""

from __future__ import annotations

import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead

ALICE = {
    "name": "alice",
    "unixUser": "alice",
    "createdAt": 1_700_000_000_000,
    "createdBy": "root",
    "keys": [
        {"accessKeyId": "AKIDA1", "status": "Active", "createdAt": 1_700_000_000_000},
        {"accessKeyId": "AKIDA2", "status": "Inactive", "createdAt": 1_700_000_060_000},
    ],
}
NEW_KEY = {"accessKeyId": "AKIDNEW", "secretAccessKey": "s3cr3t/KEY"}


def test_add_sends_name_and_unix_user_and_shows_how_to_use_the_key(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/hpcbatch/v1/users", {"user": {**ALICE, "keys": []}, **NEW_KEY})
    assert main(["users", "add", "alice", "--unix-user", "alice", "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {"name": "alice", "unixUser": "alice"}
    out = capsys.readouterr().out
    assert "Access key id:     AKIDNEW\nSecret access key: s3cr3t/KEY\n" in out
    assert "  export AWS_ACCESS_KEY_ID=AKIDNEW\n  export AWS_SECRET_ACCESS_KEY=s3cr3t/KEY\n" in out
    assert "  [alice]\n  aws_access_key_id = AKIDNEW\n  aws_secret_access_key = s3cr3t/KEY\n" in out
    assert f"hpcbatch --profile alice --endpoint {stub.endpoint} jobs" in out


def test_add_with_json_prints_the_routes_answer(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"user": ALICE, **NEW_KEY}
    stub.on("POST", "/hpcbatch/v1/users", answer)
    assert main(["users", "add", "alice", "--unix-user", "al", "--json", "-e", stub.endpoint]) == 0
    assert json.loads(capsys.readouterr().out) == answer


def test_add_needs_a_unix_user(stub: StubHead) -> None:
    assert main(["users", "add", "alice", "-e", stub.endpoint]) == 2
    assert stub.calls() == []


def test_list_is_the_default_and_shows_a_row_per_key(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = {"name": "bob", "unixUser": "robert", "createdAt": 1_700_000_120_000, "keys": []}
    stub.on("GET", "/hpcbatch/v1/users", {"users": [ALICE, bob]})
    assert main(["users", "-e", stub.endpoint]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()] == [
        ["NAME", "UNIX-USER", "KEY", "STATUS", "CREATED"],
        ["alice", "alice", "AKIDA1", "Active", "2023-11-14", "22:13:20"],
        ["alice", "alice", "AKIDA2", "Inactive", "2023-11-14", "22:14:20"],
        ["bob", "robert", "-", "-", "2023-11-14", "22:15:20"],
    ]
    assert main(["users", "list", "-o", "json", "-e", stub.endpoint]) == 0
    assert json.loads(capsys.readouterr().out) == {"users": [ALICE, bob]}


@pytest.mark.parametrize(("flag", "disable_others"), [([], True), (["--keep-old"], False)])
def test_rotate_disables_the_other_keys_unless_kept(
    stub: StubHead, capsys: pytest.CaptureFixture[str], flag: list[str], disable_others: bool
) -> None:
    stub.on("POST", "/hpcbatch/v1/users/alice/keys", NEW_KEY)
    assert main(["users", "rotate", "alice", *flag, "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {"disableOthers": disable_others}
    out = capsys.readouterr().out
    assert "Secret access key: s3cr3t/KEY" in out
    assert ("disabled" in out) == disable_others


def test_disable_enable_and_remove_use_their_routes(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/hpcbatch/v1/users/alice/keys/AKIDA1/disable", {})
    stub.on("POST", "/hpcbatch/v1/users/alice/keys/AKIDA1/enable", {})
    stub.on("DELETE", "/hpcbatch/v1/users/alice", {})
    for argv in (["disable-key", "alice", "AKIDA1"], ["enable-key", "alice", "AKIDA1"]):
        assert main(["users", *argv, "-e", stub.endpoint]) == 0
    assert main(["users", "remove", "alice", "-e", stub.endpoint]) == 0
    assert [(c.method, c.route, c.body) for c in stub.calls()] == [
        ("POST", "/hpcbatch/v1/users/alice/keys/AKIDA1/disable", {}),
        ("POST", "/hpcbatch/v1/users/alice/keys/AKIDA1/enable", {}),
        ("DELETE", "/hpcbatch/v1/users/alice", None),
    ]
    assert capsys.readouterr().out.splitlines() == [
        "disabled key AKIDA1 of alice",
        "enabled key AKIDA1 of alice",
        "removed user alice and its keys",
    ]


def test_a_name_is_one_path_segment(stub: StubHead) -> None:
    stub.on("DELETE", "/hpcbatch/v1/users/a%2Fb", {})
    assert main(["users", "remove", "a/b", "-e", stub.endpoint]) == 0


def test_access_denied_goes_through_the_error_path(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "users add: only admins (root, group hpcbatch-admin) may manage users"
    stub.fail("POST", "/hpcbatch/v1/users", 403, "AccessDeniedException", message)
    assert main(["users", "add", "x", "--unix-user", "x", "-e", stub.endpoint]) == 3
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (
            {"user": "alice", "uid": 1000, "admin": False, "via": "peer"},
            "alice (uid 1000) via the connection's peer credentials",
        ),
        (
            {"user": "root", "uid": 0, "admin": True, "via": "key", "accessKeyId": "AKIDR"},
            "root (uid 0, admin) via access key AKIDR",
        ),
    ],
)
def test_whoami(
    unix_stub: StubHead, capsys: pytest.CaptureFixture[str], answer: dict[str, object], line: str
) -> None:
    unix_stub.on("GET", "/hpcbatch/v1/whoami", answer)
    assert main(["whoami", "-e", unix_stub.endpoint]) == 0
    assert capsys.readouterr().out == line + "\n"
    assert main(["whoami", "--json", "-e", unix_stub.endpoint]) == 0
    assert json.loads(capsys.readouterr().out) == answer
