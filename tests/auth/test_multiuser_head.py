"""Issue 12 through a real head and real Unix users: jobs run as their submitter on every node
and their files are theirs; nobody else may cancel, terminate or read them; queues, nodes and
users are admins' business; definitions cannot smuggle root in; the journal names who did what.
Clients run as the users themselves (tests/auth/unixusers.py), on the head's Unix socket."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth.unixusers import ADMIN, ADMIN_GROUP, ALICE, BOB, as_user, call, route
from tests.head.headproc import HeadProcess, wait_for


class UsersHead(HeadProcess):
    """A head with its Unix socket in a directory every user may reach, and admin_group set."""

    def __init__(self, data_dir: Path) -> None:
        self.socket_dir = Path(tempfile.mkdtemp(prefix="hpcbatch-users-"))
        self.socket_dir.chmod(0o755)  # pytest's tmp_path is 0700: no user could connect there
        socket = self.socket_dir / "head.sock"
        super().__init__(
            data_dir,
            nodes=2,
            vcpus=2,
            memory=4096,
            env={**os.environ, "HPCBATCH_SOCKET": str(socket)},
        )
        self.config.write_text(f'admin_group = "{ADMIN_GROUP}"\n' + self.config.read_text())
        self.unix = f"unix://{socket}"

    def cleanup(self) -> None:
        super().cleanup()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


@pytest.fixture
def head(users: None, tmp_path: Path) -> Iterator[UsersHead]:
    process = UsersHead(tmp_path / "head")
    try:
        yield process.start()  # type: ignore[misc]
    finally:
        process.cleanup()


def job_body(command: list[str], **more: Any) -> dict[str, Any]:
    return {
        "jobName": "mine",
        "jobQueue": "default",
        "jobDefinition": "default",
        "containerOverrides": {"command": command},
        **more,
    }


def submit_as(head: UsersHead, user: str, command: list[str], **more: Any) -> str:
    answer = as_user(user, call(head.unix, "SubmitJob", job_body(command, **more)))
    assert "jobId" in answer, answer
    return str(answer["jobId"])


def test_whoami_is_what_the_kernel_says(head: UsersHead) -> None:
    alice = as_user(ALICE, route(head.unix, "GET", "/hpcbatch/v1/whoami"))
    assert alice == {
        "user": ALICE,
        "uid": pwd.getpwnam(ALICE).pw_uid,
        "admin": False,
        "via": "peer",
    }
    assert as_user(ADMIN, route(head.unix, "GET", "/hpcbatch/v1/whoami"))["admin"] is True
    # on loopback TCP too: the socket table names the caller
    assert as_user(BOB, route(head.endpoint, "GET", "/hpcbatch/v1/whoami"))["user"] == BOB


def test_alices_array_runs_as_alice_on_both_nodes_and_her_files_are_hers(head: UsersHead) -> None:
    script = 'id -un; stat -c "%U %a" .; touch made && stat -c "%U" made'
    resources = {"resourceRequirements": [{"type": "VCPU", "value": "2"}]}  # one child a node
    parent = as_user(
        ALICE,
        call(
            head.unix,
            "SubmitJob",
            {
                **job_body(["sh", "-c", script]),
                "containerOverrides": {"command": ["sh", "-c", script], **resources},
                "arrayProperties": {"size": 2},
            },
        ),
    )["jobId"]
    head.wait_status(parent, "SUCCEEDED", "FAILED", timeout=60)
    nodes = set()
    for index in range(2):
        child = head.raw_describe(f"{parent}:{index}")
        assert child["status"] == "SUCCEEDED", head.story(f"{parent}:{index}")
        assert child["hpcbatch"]["owner"] == ALICE and child["container"]["user"] == ALICE
        nodes.add(child["hpcbatch"]["node"])
        logs = as_user(ALICE, route(head.unix, "GET", f"/hpcbatch/v1/jobs/{parent}:{index}/logs"))
        assert logs["data"].splitlines() == [ALICE, f"{ALICE} 700", ALICE]
    assert nodes == {"local-1", "local-2"}
    alice_uid = pwd.getpwnam(ALICE).pw_uid
    logs_on_disk = list((head.data_dir / "agents").glob(f"*/logs/{parent}*"))
    assert len(logs_on_disk) == 2
    for path in logs_on_disk:
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (alice_uid, 0o600), path


def test_bob_cannot_cancel_terminate_tag_or_read_alices_job_but_an_admin_can(
    head: UsersHead,
) -> None:
    job = submit_as(head, ALICE, ["sh", "-c", "echo secret; sleep 300"])
    head.wait_status(job, "RUNNING", timeout=30)
    arn = head.raw_describe(job)["jobArn"]
    refusals = [
        call(head.unix, "CancelJob", {"jobId": job, "reason": "mine now"}),
        call(head.unix, "TerminateJob", {"jobId": job, "reason": "mine now"}),
        route(head.unix, "GET", f"/hpcbatch/v1/jobs/{job}/logs"),
        route(head.unix, "POST", f"/v1/tags/{arn.replace('/', '%2F')}", {"tags": {"a": "b"}}),
    ]
    for work in refusals:
        answer = as_user(BOB, work)
        assert answer.get("error") == "AccessDeniedException", answer
        assert (
            f"belongs to '{ALICE}'" in answer["message"] and f"you are '{BOB}'" in answer["message"]
        )
    assert head.raw_describe(job)["status"] == "RUNNING"
    logs = as_user(ADMIN, route(head.unix, "GET", f"/hpcbatch/v1/jobs/{job}/logs"))
    assert "secret" in logs["data"]
    assert as_user(ADMIN, call(head.unix, "TerminateJob", {"jobId": job, "reason": "admin"})) == {}
    head.wait_status(job, "FAILED", timeout=30)
    own = submit_as(head, ALICE, ["sleep", "300"])
    assert as_user(ALICE, call(head.unix, "TerminateJob", {"jobId": own, "reason": "mine"})) == {}
    head.wait_status(own, "FAILED", timeout=30)


def test_a_non_admins_definition_cannot_run_as_root(head: UsersHead) -> None:
    definition = {
        "jobDefinitionName": "as-root",
        "type": "container",
        "containerProperties": {
            "command": ["id", "-un"],
            "user": "root",
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    }
    answer = as_user(ALICE, call(head.unix, "RegisterJobDefinition", definition))
    assert answer["error"] == "AccessDeniedException"
    assert "containerProperties.user is 'root'" in answer["message"]
    listed = head.batch().describe_job_definitions(jobDefinitionName="as-root")["jobDefinitions"]
    assert listed == []
    # an admin may; alice still cannot run it as root
    assert "revision" in as_user(ADMIN, call(head.unix, "RegisterJobDefinition", definition))
    refused = as_user(
        ALICE,
        call(
            head.unix,
            "SubmitJob",
            {**job_body([]), "jobDefinition": "as-root"} | {"containerOverrides": {}},
        ),
    )
    assert refused["error"] == "AccessDeniedException"
    job = submit_as(head, ADMIN, ["id", "-un"], jobDefinition="as-root")
    head.wait_status(job, "SUCCEEDED", timeout=30)
    logs = as_user(ADMIN, route(head.unix, "GET", f"/hpcbatch/v1/jobs/{job}/logs"))
    assert logs["data"] == "root\n"


def test_queues_compute_environments_nodes_and_users_are_for_admins(head: UsersHead) -> None:
    queue = {
        "jobQueueName": "mine",
        "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "local"}],
    }
    ce = {"computeEnvironmentName": "other", "type": "UNMANAGED"}
    for work in (
        call(head.unix, "CreateJobQueue", queue),
        call(head.unix, "CreateComputeEnvironment", ce),
        call(head.unix, "UpdateJobQueue", {"jobQueue": "default", "priority": 9}),
        call(head.unix, "CreateConsumableResource", {"consumableResourceName": "lic"}),
        route(head.unix, "POST", "/hpcbatch/v1/nodes/local-1/drain", {"reason": "mine"}),
        route(head.unix, "POST", "/hpcbatch/v1/nodes", {"computeEnvironment": "x", "hosts": []}),
        route(head.unix, "POST", "/hpcbatch/v1/nodes/local-1/remove", {}),
        route(head.unix, "GET", "/hpcbatch/v1/users"),
        route(head.unix, "POST", "/hpcbatch/v1/users", {"name": "me", "unixUser": "root"}),
    ):
        answer = as_user(ALICE, work)
        assert answer.get("error") == "AccessDeniedException", answer
        assert "only an admin may" in answer["message"]
    assert [q["jobQueueName"] for q in head.batch().describe_job_queues()["jobQueues"]] == [
        "default"
    ]
    assert head.batch().describe_job_queues()["jobQueues"][0]["priority"] != 9
    assert "jobQueueArn" in as_user(ADMIN, call(head.unix, "CreateJobQueue", queue))


def test_the_history_says_who_made_each_change(head: UsersHead) -> None:
    job = submit_as(head, ALICE, ["sleep", "300"])
    arn = head.raw_describe(job)["jobArn"].replace("/", "%2F")
    assert as_user(ADMIN, route(head.unix, "POST", f"/v1/tags/{arn}", {"tags": {"k": "v"}})) == {}
    as_user(ALICE, call(head.unix, "TerminateJob", {"jobId": job, "reason": "changed my mind"}))
    head.wait_status(job, "FAILED", timeout=30)
    events = head.get(f"/hpcbatch/v1/jobs/{job}/history")["events"]
    submitted = next(e for e in events if e["event"] == "SUBMITTED")
    assert submitted["cause"].endswith(f" by {ALICE}")
    assert any(e["cause"].endswith(f" by {ALICE}") and e["event"] == "TERMINATING" for e in events)
    tagged = next(e for e in events if e["event"] == "TAGGED")
    assert tagged["cause"].endswith(f" by {ADMIN}") and tagged["detail"] == "k"


def test_a_user_unknown_to_the_head_is_refused(head: UsersHead) -> None:
    """A uid with no name on the head's host: nothing to run its jobs as."""

    def ghost_whoami() -> Any:
        return route(head.unix, "GET", "/hpcbatch/v1/whoami")()

    uid = 64999
    assert not any(p.pw_uid == uid for p in pwd.getpwall())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgid(uid)
            os.setuid(uid)
            answer = ghost_whoami()
            os.write(write, repr(answer).encode())
        except Exception as error:
            os.write(write, f"{type(error).__name__}: {getattr(error, 'aws_type', '')}".encode())
        finally:
            os._exit(0)
    os.close(write)
    text = b""
    while chunk := os.read(read, 4096):
        text += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert text.decode() == "ClientError: AccessDeniedException"
    wait_for(lambda: "uid 64999 has no user name" in head.log.read_text(), 10, "the refusal's log")


def test_a_user_unknown_on_the_host_fails_the_attempt_saying_so(head: UsersHead) -> None:
    """The agent never creates users: an admin's job as a user the host lacks cannot start."""
    definition = {
        "jobDefinitionName": "as-ghost",
        "type": "container",
        "containerProperties": {
            "command": ["true"],
            "user": "hpcbnosuchuser",
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    }
    assert "revision" in as_user(ADMIN, call(head.unix, "RegisterJobDefinition", definition))
    job = submit_as(head, ADMIN, ["true"], jobDefinition="as-ghost")
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=30)
    assert done["status"] == "FAILED"
    assert (
        done["statusReason"] == "CannotStartContainerError: no user 'hpcbnosuchuser' on this host"
    )
    with pytest.raises(KeyError):
        pwd.getpwnam("hpcbnosuchuser")


def test_a_job_runs_with_its_owners_groups(head: UsersHead) -> None:
    job = submit_as(head, ADMIN, ["id", "-Gn"])
    done = head.wait_status(job, "SUCCEEDED", "FAILED", timeout=30)
    assert done["status"] == "SUCCEEDED", head.story(job)
    logs = as_user(ADMIN, route(head.unix, "GET", f"/hpcbatch/v1/jobs/{job}/logs"))
    assert ADMIN_GROUP in logs["data"].split()
