"""LOCAL virtual nodes split the configured GPUs: each board is offered by exactly one node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import LocalConfig, load_config
from tests.head.headproc import HeadProcess, wait_for
from tests.head.test_jobs_e2e import logs, submit


def _load(tmp_path: Path, local: str) -> LocalConfig:
    path = tmp_path / "head.toml"
    path.write_text(f"[local]\n{local}\n")
    return load_config(path).local


def test_each_node_offers_its_own_share_in_order(tmp_path: Path) -> None:
    local = _load(tmp_path, "nodes = 2\ngpus = [3, 1, 0, 2]")
    assert [local.node_gpus(i) for i in range(2)] == [(3, 1), (0, 2)]


def test_without_gpus_one_node_detects_and_several_offer_none(tmp_path: Path) -> None:
    assert _load(tmp_path, "nodes = 1").node_gpus(0) is None  # nvidia-smi's
    assert [_load(tmp_path, "nodes = 2").node_gpus(i) for i in range(2)] == [(), ()]


@pytest.mark.parametrize(
    ("local", "says"),
    [
        ("nodes = 2\ngpus = [0, 1, 0, 2]", "GPU 0 appears twice"),
        ("nodes = 2\ngpus = [0, 1, 2]", "3 GPUs [0, 1, 2] cannot be split evenly between 2"),
        ("nodes = 0\ngpus = [0]", "cannot be split evenly between 0 nodes"),
        ("gpus = [true]", "must be a list of GPU indices"),
    ],
)
def test_a_gpu_offered_twice_or_unevenly_is_refused(tmp_path: Path, local: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _load(tmp_path, local)
    assert raised.value.field == "config.local.gpus"
    assert says in str(raised.value)


@pytest.fixture
def two_gpu_head(tmp_path: Path) -> Iterator[HeadProcess]:
    # No nvidia-smi needed: the agent offers configured GPUs as given (--gpus wins).
    process = HeadProcess(
        tmp_path / "head", nodes=2, vcpus=1, memory=2048, extra_config="gpus = [0, 1]\n"
    )
    try:
        yield process.start()
    finally:
        process.cleanup()


def test_two_nodes_each_offer_one_distinct_gpu(two_gpu_head: HeadProcess, tmp_path: Path) -> None:
    head = two_gpu_head

    def offered() -> list[tuple[str, int]] | None:  # each node's once its agent said hello
        nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
        pairs = sorted((n["name"], n["gpus"]) for n in nodes)
        return pairs if len(pairs) == 2 and all(n["state"] == "ONLINE" for n in nodes) else None

    assert wait_for(offered, what="both nodes online") == [("local-1", 1), ("local-2", 1)]
    # Both jobs run at once (one vCPU per node) and wait for the go file: each sees its own GPU.
    go = tmp_path / "go"
    script = f'echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES"; until [ -e {go} ]; do :; done'
    gpu = {"resourceRequirements": [{"type": "GPU", "value": "1"}]}
    jobs = [submit(head, ["sh", "-c", script], containerOverrides=gpu) for _ in range(2)]
    for job_id in jobs:
        head.wait_status(job_id, "RUNNING")
    wait_for(lambda: all(logs(head, job_id) for job_id in jobs), what="both jobs' output")
    go.touch()
    for job_id in jobs:
        assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sorted(logs(head, job_id) for job_id in jobs) == ["0 0\n", "1 1\n"]


def test_a_job_without_gpus_sees_none(two_gpu_head: HeadProcess) -> None:
    script = 'echo "CUDA=[${CUDA_VISIBLE_DEVICES-unset}] NVIDIA=[${NVIDIA_VISIBLE_DEVICES-unset}]"'
    job_id = submit(two_gpu_head, ["sh", "-c", script])
    assert two_gpu_head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert logs(two_gpu_head, job_id) == "CUDA=[] NVIDIA=[void]\n"
