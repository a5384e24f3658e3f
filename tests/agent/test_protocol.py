"""The wire format: codec, validation, builders, and the head-side re-export."""

from __future__ import annotations

import json

import pytest
from hpcbatch_agent import protocol as p

import hpcbatch.protocol as head_protocol


def test_encode_is_one_compact_utf8_line() -> None:
    line = p.encode(p.kill("3f2c:17/2", "Terminated by user é"))
    assert (
        line
        == (
            '{"v":1,"type":"kill","attempt_id":"3f2c:17/2","reason":"Terminated by user é"}\n'
        ).encode()
    )
    assert p.decode(line) == json.loads(line)


def test_golden_launch_message() -> None:
    message = p.launch(
        [
            p.attempt_spec(
                "j:1#0",
                ["true"],
                env={"A": "b"},
                gpus=["GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24", "1"],
                vcpus=2,
                memory_mib=512,
                timeout_s=60,
            )
        ]
    )
    assert p.encode(message) == (
        b'{"v":1,"type":"launch","attempts":[{"attempt_id":"j:1#0","command":["true"],'
        b'"env":{"A":"b"},"cwd":null,"timeout_s":60,'
        b'"gpus":["GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24","1"],"vcpus":2,"memory_mib":512}]}\n'
    )
    p.check_head_message(message)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{nope", "malformed message: not valid JSON"),
        (b"[1, 2]", "malformed message: not a JSON object"),
        (b'{"type": "hello"}', "malformed message: missing field 'v'"),
        (b'{"v": 1}', "malformed message: missing or non-string field 'type'"),
    ],
)
def test_decode_rejects_malformed_lines_non_fatally(line: bytes, reason: str) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.decode(line)
    assert caught.value.reason.startswith(reason)
    assert not caught.value.fatal


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_another_version_is_fatal(version: object) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.decode(json.dumps({"v": version, "type": "hello"}))
    assert caught.value.fatal
    assert caught.value.reason == p.version_error_reason(version)
    if version == 2:
        assert caught.value.reason == "protocol version 2 not supported; agent speaks 1"


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"v": 1, "type": "launch"}, "launch lacks field 'attempts'"),
        (
            {"v": 1, "type": "launch", "attempts": [{"attempt_id": "a"}]},
            "launch.attempts[0] lacks field 'command'",
        ),
        (p.launch([{**p.attempt_spec("a", ["x"]), "command": []}]), "bad 'command'"),
        (p.launch([{**p.attempt_spec("a", ["x"]), "env": {"A": 1}}]), "bad 'env'"),
        ({"v": 1, "type": "kill", "attempt_id": "a"}, "kill lacks field 'reason'"),
        (
            {
                "v": 1,
                "type": "read_log",
                "req": True,
                "attempt_id": "a",
                "offset": 0,
                "max_bytes": 1,
            },
            "bad 'req'",
        ),
        ({"v": 1, "type": "dance"}, "unknown head message type 'dance'"),
    ],
)
def test_head_message_validation_names_what_is_wrong(message: dict, fragment: str) -> None:
    with pytest.raises(p.MessageError) as caught:
        p.check_head_message(message)
    assert fragment in caught.value.reason


def test_every_builder_passes_its_own_validation() -> None:
    for message in (
        p.head_hello("h"),
        p.launch([p.attempt_spec("a", ["true"])]),
        p.kill("a", "r"),
        p.ack(["a"]),
        p.read_log(1, "a"),
        p.shutdown(True),
    ):
        p.check_head_message(message)
    node: p.NodeInfo = {
        "name": "n",
        "vcpus": 2,
        "memory_mib": 10,
        "cgroups": "v2",
        "hostname": "h",
        "gpus": [{"index": 0, "uuid": None, "name": None, "memory_mib": None}],
    }
    update = p.attempt_update("a", p.EXITED, "/l", exit_code=0, stopped_at_ms=5)
    for message in (
        p.agent_hello(node, [update]),
        p.updates([update]),
        p.heartbeat(1, 0),
        p.log_data(1, "a", "x", 1, True),
        p.error("boom"),
    ):
        p.check_agent_message(message)
    with pytest.raises(p.MessageError, match="updates.updates\\[0\\] has a bad 'state'"):
        p.check_agent_message(p.updates([{**update, "state": "DONE"}]))


BAD_VALUES = (None, True, 1, 1.5, -1, "s", [], {}, float("nan"), 2**70)


@pytest.mark.parametrize("field", [*p.UPDATE_FIELDS, "cpu_s"])
def test_every_bad_update_field_is_refused_by_name(field: str) -> None:
    """The fast check of updates (``_update_fine``) refuses exactly what the field table
    refuses: each field missing or given each kind of wrong value is named in the error."""
    update = {**p.attempt_update("a", p.EXITED, "/l", exit_code=0, stopped_at_ms=5), "cpu_s": 1}
    table = {**p.UPDATE_FIELDS, "cpu_s": p.is_cpu_seconds}
    for value in BAD_VALUES:
        bad = {**update, field: value}
        if table[field](value):
            p.check_agent_message(p.updates([update, bad]))
            continue
        with pytest.raises(p.MessageError, match=rf"updates.updates\[1\] has a bad '{field}'"):
            p.check_agent_message(p.updates([update, bad]))
    missing = {k: v for k, v in update.items() if k != field}
    if field == "cpu_s":
        p.check_agent_message(p.updates([missing]))  # optional
    else:
        with pytest.raises(p.MessageError, match=rf"updates.updates\[0\] lacks field '{field}'"):
            p.check_agent_message(p.updates([missing]))
    for item in ([update], "x", 3):
        with pytest.raises(p.MessageError, match=r"updates.updates\[0\] is not an object"):
            p.check_agent_message(p.updates([item]))


def test_head_imports_the_same_protocol() -> None:
    assert head_protocol.encode is p.encode
    assert head_protocol.gpu_id is p.gpu_id
    assert head_protocol.gpus_update is p.gpus_update
    assert head_protocol.PROTOCOL_VERSION == 1
    assert set(head_protocol.__all__) == set(p.__all__)


def test_coalesce_drops_a_running_that_its_end_follows_and_keeps_the_rest() -> None:
    started = p.attempt_update("a", p.RUNNING, "/l/a", pid=7, started_at_ms=1)
    ended = p.attempt_update(
        "a", p.EXITED, "/l/a", pid=7, started_at_ms=1, stopped_at_ms=2, exit_code=0
    )
    other = p.attempt_update("b", p.RUNNING, "/l/b", pid=8, started_at_ms=1)
    assert p.coalesce([started, other, ended]) == [other, ended]
    assert p.coalesce([started, other]) == [started, other]


def test_coalesce_keeps_only_the_last_queued_and_never_drops_a_running_for_it() -> None:
    submitted = p.attempt_update("a", p.QUEUED, "/l/a", reason="submitted to Slurm as job 4")
    waiting = p.attempt_update("a", p.QUEUED, "/l/a", reason="waiting in Slurm partition b")
    started = p.attempt_update("a", p.RUNNING, "/l/a", started_at_ms=1)
    other = p.attempt_update("b", p.QUEUED, "/l/b", reason="submitted to Slurm as job 5")
    assert p.coalesce([submitted, other, waiting]) == [other, waiting]
    assert p.coalesce([submitted, waiting, started]) == [started]
    p.check_agent_message(p.updates([waiting]))  # a QUEUED update is well formed


# --- GPUs: ids, the launch's gpus, the hello's isolation, the gpus message ----------------------

H200 = "GPU-16794395-2c4e-8a1f-b6d3-5e0f9a7c1b24"


def gpu(index: int, uuid: str | None) -> p.GpuInfo:
    return {"index": index, "uuid": uuid, "name": None, "memory_mib": None}


def test_a_gpu_is_named_by_its_uuid_else_its_index() -> None:
    assert p.gpu_id(gpu(3, H200)) == H200
    assert p.gpu_id(gpu(3, "MIG-5c3d2a8e-1f4b-7a90-3c2e-8d9f0a1b2c3d")).startswith("MIG-")
    assert p.gpu_id(gpu(3, None)) == "3"
    assert p.gpu_id(gpu(0, "")) == "0"


@pytest.mark.parametrize(
    ("gpus", "rule"),
    [
        ([0], "'gpus' must list GPU ids (1 to 128 characters of A-Z a-z 0-9 . _ : -), not 0"),
        ([""], "'gpus' must list GPU ids (1 to 128 characters of A-Z a-z 0-9 . _ : -), not ''"),
        (["GPU 1"], "not 'GPU 1'"),
        (["GPU-1\x00"], "not 'GPU-1\\x00'"),
        (["x" * 129], "not 'xxxx"),
        (["GPU-é"], "not 'GPU-é'"),
        ([None], "not None"),
        ([H200, "1", H200], f"'gpus' must not list GPU '{H200}' twice"),
    ],
)
def test_a_launch_with_a_bad_gpu_id_names_the_field_and_the_rule(gpus: list, rule: str) -> None:
    spec = {**p.attempt_spec("a", ["true"]), "gpus": gpus}
    problem = p.attempt_problem(spec, "launch.attempts[0]")
    assert problem is not None and problem.startswith("malformed message: launch.attempts[0]: ")
    assert rule in problem
    with pytest.raises(p.MessageError, match="'gpus' must"):
        p.check_head_message(p.launch([spec]))


def test_a_launch_takes_every_kind_of_gpu_id() -> None:
    ids = [H200, "MIG-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809", "0", "x" * 128, "a.b_c:d-e"]
    assert p.attempt_problem(p.attempt_spec("a", ["true"], gpus=ids), "w") is None
    with pytest.raises(p.MessageError, match=r"launch.attempts\[0\] has a bad 'gpus': 'GPU-1'"):
        p.check_head_message(p.launch([{**p.attempt_spec("a", ["x"]), "gpus": "GPU-1"}]))


def _node(**extra: object) -> dict:
    node = {"name": "n", "vcpus": 1, "memory_mib": 1, "gpus": [], "cgroups": "v1", "hostname": "h"}
    return {**node, **extra}


def test_the_hello_carries_gpu_isolation_and_its_reason() -> None:
    p.check_agent_message(p.agent_hello(_node(), []))  # an older agent's: the head reads "env"
    p.check_agent_message(p.agent_hello(_node(gpu_isolation="devices"), []))
    reason = "cgroup v2: no eBPF device filter yet"
    p.check_agent_message(
        p.agent_hello(_node(gpu_isolation="env", gpu_isolation_reason=reason), [])
    )
    with pytest.raises(p.MessageError, match="hello.node has a bad 'gpu_isolation': 'cgroup'"):
        p.check_agent_message(p.agent_hello(_node(gpu_isolation="cgroup"), []))
    with pytest.raises(p.MessageError, match="hello.node has a bad 'gpu_isolation_reason': 1"):
        p.check_agent_message(p.agent_hello(_node(gpu_isolation_reason=1), []))


def test_the_hello_refuses_a_gpu_whose_uuid_is_no_gpu_id() -> None:
    node = _node(gpus=[gpu(0, "GPU 0")])
    with pytest.raises(p.MessageError, match=r"hello.node.gpus\[0\] has a bad 'uuid': 'GPU 0'"):
        p.check_agent_message(p.agent_hello(node, []))


def test_the_gpus_message_golden_and_checked_like_the_hellos_gpus() -> None:
    message = p.gpus_update([gpu(0, H200)], None)
    assert p.encode(message) == (
        b'{"v":1,"type":"gpus","gpus":[{"index":0,"uuid":"' + H200.encode() + b'",'
        b'"name":null,"memory_mib":null}]}\n'
    )
    p.check_agent_message(message)
    failed = p.gpus_update([gpu(0, H200)], "nvidia-smi timed out after 5 s (killed)")
    assert failed["gpus_reason"] == "nvidia-smi timed out after 5 s (killed)"
    p.check_agent_message(p.decode(p.encode(failed)))
    p.check_agent_message(p.gpus_update([], "configured GPU 3 is not on this host (...)"))
    for bad, fragment in [
        ({**message, "gpus": None}, "gpus has a bad 'gpus': None"),
        ({**message, "gpus": [{"index": "0"}]}, r"gpus.gpus\[0\] has a bad 'index'"),
        ({**message, "gpus": [{**gpu(0, None), "memory_mib": 1.5}]}, "bad 'memory_mib'"),
        ({**message, "gpus": [gpu(0, "GPU 0")]}, r"gpus.gpus\[0\] has a bad 'uuid'"),
        ({**message, "gpus_reason": 5}, "gpus has a bad 'gpus_reason': 5"),
        ({"v": 1, "type": "gpus"}, "gpus lacks field 'gpus'"),
    ]:
        with pytest.raises(p.MessageError, match=fragment):
            p.check_agent_message(bad)
