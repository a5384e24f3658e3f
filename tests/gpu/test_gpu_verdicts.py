"""bench/gpu_verdicts.py: each check's rule, fed made-up jobs and probe lines, must fail what it
exists to catch (overlapping GPU holders, a leaked GPU, a quota that did not bite...)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import gpu_verdicts as v

UUID = "GPU-16794395-a1b2-c3d4-e5f6-0718293a4b5c"
OTHER = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
ONE_H200 = [v.SmiGpu(0, UUID, "NVIDIA H200")]
TWO = [v.SmiGpu(0, UUID, "NVIDIA H200"), v.SmiGpu(1, OTHER, "NVIDIA H200")]
OK = {"status": "SUCCEEDED", "statusReason": "Essential container in task exited"}


def cuda(visible: str | None = UUID, **fields: Any) -> dict[str, Any]:
    line = {"probe": "cuda", "cuda_visible_devices": visible, "nvidia_visible_devices": visible,
            "init": 0, "count": 1, "uuid": UUID, "alloc_ok": True, "error": None,
            "start_ms": 1_000, "end_ms": 4_000}  # fmt: skip
    return {**line, **fields}


def test_nvidia_smi_lines_parse_and_garbage_is_refused() -> None:
    text = f"0, {UUID}, NVIDIA H200\n1, {OTHER}, NVIDIA H100 80GB HBM3\n\n"
    assert v.parse_smi(text) == [
        v.SmiGpu(0, UUID, "NVIDIA H200"),
        v.SmiGpu(1, OTHER, "NVIDIA H100 80GB HBM3"),
    ]
    for garbage in ("No devices were found", f"x, {UUID}, H200", "0, 1234, H200"):
        with pytest.raises(ValueError, match="not an nvidia-smi GPU line"):
            v.parse_smi(garbage)


def test_the_last_probe_line_of_its_kind_is_found_among_other_output() -> None:
    log = 'hello\n{"probe": "cgroup", "a": 1}\n{not json\n{"probe": "cuda", "n": 1}\n'
    log += '[1, 2]\n{"probe": "cuda", "n": 2}\nbye\n'
    assert v.probe_line(log, "cuda") == {"probe": "cuda", "n": 2}
    assert v.probe_line(log, "cgroup") == {"probe": "cgroup", "a": 1}
    assert v.probe_line(log, "pids") is None


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 10), (10, 20), False),  # touching: one ended as the other started
        ((0, 10), (11, 20), False),
        ((0, 10), (9, 20), True),
        ((5, 6), (0, 10), True),  # inside
        ((0, 10), (0, 10), True),
        ((11, 20), (0, 10), False),
    ],
)
def test_overlap(a: tuple[int, int], b: tuple[int, int], expected: bool) -> None:
    assert v.overlaps(a, b) is expected
    assert v.overlaps(b, a) is expected


def test_a_gpu_job_passes_with_an_index_or_the_uuid_in_cuda_visible_devices() -> None:
    assert v.gpu_job_verdict("g", OK, cuda(UUID), ONE_H200).status == v.PASS
    assert v.gpu_job_verdict("g", OK, cuda("0"), ONE_H200).status == v.PASS
    # index 1 names the second board: CUDA's UUID must be that one
    assert v.gpu_job_verdict("g", OK, cuda("1", uuid=OTHER), TWO).status == v.PASS


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (cuda("1", uuid=UUID), "CUDA's device is"),  # index 1 is OTHER
        (cuda(UUID, uuid=OTHER), "CUDA's device is"),
        (cuda(None), "exactly one GPU"),
        (cuda(""), "exactly one GPU"),
        (cuda(f"{UUID},{OTHER}"), "exactly one GPU"),
        (cuda(UUID, count=2), "saw 2 devices"),
        (cuda(UUID, alloc_ok=False), "cuMemAlloc failed"),
        (cuda(UUID, error="cuCtxCreate: CUDA_ERROR_X (1)"), "cuCtxCreate"),
        (cuda("GPU-ffffffff-0000-0000-0000-000000000000"), "names no GPU"),
        (cuda("7"), "names no GPU"),
    ],
)
def test_a_gpu_job_fails_for_every_way_it_can_see_the_wrong_thing(
    line: dict[str, Any], words: str
) -> None:
    verdict = v.gpu_job_verdict("g", OK, line, TWO)
    assert verdict.status == v.FAIL
    assert words in verdict.detail


def test_a_gpu_job_that_failed_or_printed_nothing_fails() -> None:
    failed = {"status": "FAILED", "statusReason": "CannotStartContainerError: x"}
    assert (
        "FAILED (CannotStartContainerError: x)"
        in v.gpu_job_verdict("g", failed, cuda(), ONE_H200).detail
    )
    assert v.gpu_job_verdict("g", None, None, ONE_H200).status == v.FAIL
    assert "no probe line" in v.gpu_job_verdict("g", OK, None, ONE_H200).detail


def test_two_jobs_on_one_gpu_must_not_overlap() -> None:
    first, second = cuda(start_ms=1_000, end_ms=4_000), cuda(start_ms=4_050, end_ms=7_000)
    queued = [800, 900]  # both submitted before the first started
    passed = v.one_after_other("seq", [second, first], queued)
    assert passed.status == v.PASS and "gap 0.05 s" in passed.detail
    assert "queued 3.1 s before the first finished" in passed.detail
    overlapping = cuda(start_ms=3_000, end_ms=6_000)
    failed = v.one_after_other("seq", [first, overlapping], queued)
    assert failed.status == v.FAIL
    assert "2.00 s after" in failed.detail and "1.00 s before" in failed.detail
    assert v.one_after_other("seq", [first, None], queued).status == v.FAIL
    assert v.one_after_other("seq", [first, cuda(end_ms=None)], queued).status == v.FAIL


def test_two_jobs_that_never_competed_for_the_gpu_prove_nothing() -> None:
    first, second = cuda(start_ms=1_000, end_ms=4_000), cuda(start_ms=5_000, end_ms=8_000)
    late = v.one_after_other("seq", [first, second], [800, 4_500])  # queued after the first
    assert late.status == v.FAIL and "inconclusive" in late.detail
    assert v.one_after_other("seq", [first, second], [None, None]).status == v.FAIL


def test_a_job_without_gpus_must_see_cuda_visible_devices_set_empty_and_no_device() -> None:
    none_seen = cuda("", init=100, count=0, uuid=None, alloc_ok=False)
    assert v.no_gpu_verdict("n", OK, none_seen).status == v.PASS
    assert v.no_gpu_verdict("n", OK, {**none_seen, "init": 0, "count": 0}).status == v.PASS
    unset = v.no_gpu_verdict("n", OK, {**none_seen, "cuda_visible_devices": None})
    assert unset.status == v.FAIL and "set and empty" in unset.detail
    leaked = v.no_gpu_verdict("n", OK, cuda(""))  # "" and yet CUDA found a device
    assert leaked.status == v.FAIL and "cuInit=0, 1 devices" in leaked.detail


def test_the_node_must_offer_the_gpus_nvidia_smi_lists() -> None:
    assert v.inventory_verdict("i", {"gpus": 1}, ONE_H200).status == v.PASS
    assert v.inventory_verdict("i", {"gpus": [{"id": UUID}]}, ONE_H200).status == v.PASS
    assert v.inventory_verdict("i", {"gpus": 0}, ONE_H200).status == v.FAIL
    assert v.inventory_verdict("i", {"gpus": 2}, ONE_H200).status == v.FAIL


def test_cgroups_must_enforce_all_three_and_through_v2_on_a_pure_v2_host() -> None:
    full_v2 = "cgroups v2 (memory, cpu, pids)"
    assert v.cgroups_verdict("c", full_v2, pure_v2=True).status == v.PASS
    assert v.cgroups_verdict("c", "cgroups v1 (memory, cpu, pids)", pure_v2=False).status == v.PASS
    assert v.cgroups_verdict("c", "cgroups v1 (memory, cpu, pids)", pure_v2=True).status == v.FAIL
    assert "missing cpu" in v.cgroups_verdict("c", "cgroups v2 (memory, pids)", True).detail
    assert v.cgroups_verdict("c", "none: no writable cgroups", True).status == v.FAIL


def test_the_memory_check_wants_an_out_of_memory_failure() -> None:
    oom = {
        "status": "FAILED",
        "statusReason": "OutOfMemoryError: Container killed due to memory usage",
    }
    assert v.oom_verdict("m", oom).status == v.PASS
    assert v.oom_verdict("m", OK).status == v.FAIL  # it allocated past its limit
    other = {"status": "FAILED", "statusReason": "Essential container in task exited"}
    assert v.oom_verdict("m", other).status == v.FAIL


def cpu(per_s: float, throttled: int | None) -> dict[str, Any]:
    return {"probe": "cpu", "threads": 4, "cpu_s": per_s * 3, "wall_s": 3.0,
            "cpu_per_s": per_s, "nr_throttled": throttled}  # fmt: skip


def test_the_cpu_check_wants_at_most_one_and_a_half_cpus_and_proof_the_quota_bit() -> None:
    assert v.cpu_verdict("q", OK, cpu(1.02, 28), control=3.9).status == v.PASS
    assert v.cpu_verdict("q", OK, cpu(1.02, 0), control=3.9).status == v.PASS
    assert v.cpu_verdict("q", OK, cpu(0.8, 5), control=1.1).status == v.PASS
    unlimited = v.cpu_verdict("q", OK, cpu(3.9, 0), control=3.9)
    assert unlimited.status == v.FAIL and "did not hold" in unlimited.detail
    quiet = v.cpu_verdict("q", OK, cpu(0.6, 0), control=1.1)  # a busy host: nothing shows
    assert quiet.status == v.FAIL and "inconclusive" in quiet.detail
    assert v.cpu_verdict("q", OK, None, control=3.9).status == v.FAIL


def pids(forked: int, errno: str | None = "EAGAIN", limit: str = "4096") -> dict[str, Any]:
    return {"probe": "pids", "forked": forked, "errno": errno, "pids_max": limit}


def test_the_pids_check_wants_eagain_just_below_the_agents_limit() -> None:
    assert v.pids_verdict("p", OK, pids(4095), 4096).status == v.PASS
    assert "no error" in v.pids_verdict("p", OK, pids(10000, None, "max"), 4096).detail
    assert v.pids_verdict("p", OK, pids(4095, "ENOMEM"), 4096).status == v.FAIL
    assert v.pids_verdict("p", OK, pids(1000, limit="1024"), 4096).status == v.FAIL
    assert v.pids_verdict("p", OK, pids(100), 4096).status == v.FAIL  # EAGAIN from elsewhere
    assert v.pids_verdict("p", OK, pids(4096), 4096).status == v.FAIL  # past the limit


def test_the_kill_check_wants_the_escapee_seen_then_gone() -> None:
    killed = {"status": "FAILED", "statusReason": "Terminated"}
    line = {"probe": "escape", "escapee": 42, "escapee_sid": 41, "job_sid": 7}
    passed = v.escape_verdict("k", killed, line, [40, 42], [], 0.25)
    assert passed.status == v.PASS and "0.25 s" in passed.detail
    assert "still running" in v.escape_verdict("k", killed, line, [40, 42], [42], None).detail
    assert "not among" in v.escape_verdict("k", killed, line, [40], [], 0.1).detail
    same_session = {**line, "escapee_sid": 7}
    assert v.escape_verdict("k", killed, same_session, [40, 42], [], 0.1).status == v.FAIL
    assert v.escape_verdict("k", OK, line, [40, 42], [], 0.1).status == v.FAIL


def test_the_table_lists_every_row_and_only_a_fail_fails_the_run() -> None:
    rows = [
        v.Verdict("gpu: job a", v.SKIP, "no GPU"),
        v.Verdict("cgroups: cpu quota", v.PASS, "1.0"),
    ]
    table = v.render(rows).splitlines()
    assert table[0].split() == ["check", "result", "detail"]
    assert table[2].split()[-3:] == ["SKIP", "no", "GPU"] and "PASS" in table[3]
    assert not v.any_failed(rows)
    assert v.any_failed([*rows, v.Verdict("x", v.FAIL, "")])


def test_a_no_gpu_job_whose_cuinit_fails_otherwise_still_sees_none_but_one_without_cuda_fails() -> (
    None
):
    denied = cuda("", init=304, count=None, uuid=None, alloc_ok=False,
                  error="cuInit: CUDA_ERROR_OPERATING_SYSTEM (304)")  # fmt: skip
    passed = v.no_gpu_verdict("n", OK, denied)
    assert passed.status == v.PASS and "CUDA_ERROR_OPERATING_SYSTEM" in passed.detail
    no_cuda = cuda("", init=None, count=None, error="cannot load libcuda.so.1: not found")
    assert "did not run" in v.no_gpu_verdict("n", OK, no_cuda).detail


DEVICES_NODE = {"gpus": 1, "gpuIsolation": "devices"}


def boards(**files: str) -> dict[str, str]:
    return {f"/dev/{name}": how for name, how in files.items()}


def test_device_isolation_where_the_node_denies_boards() -> None:
    own = cuda(boards=boards(nvidia0="ok", nvidia1="EPERM"))
    other = cuda(boards=boards(nvidia0="EPERM", nvidia1="ENXIO"))  # the cgroup let it through
    none = cuda("", boards=boards(nvidia0="EPERM", nvidia1="EPERM"))
    passed = v.isolation_verdict("d", DEVICES_NODE, [own, other], none)
    assert passed.status == v.PASS and "/dev/nvidia0, /dev/nvidia1" in passed.detail
    for leak in ("ok", "ENXIO"):
        leaked = cuda("", boards=boards(nvidia0="EPERM", nvidia1=leak))
        failed = v.isolation_verdict("d", DEVICES_NODE, [own, other], leaked)
        assert failed.status == v.FAIL and "past the cgroup to /dev/nvidia1" in failed.detail
    both = cuda(boards=boards(nvidia0="ok", nvidia1="ok"))
    assert v.isolation_verdict("d", DEVICES_NODE, [own, both], none).status == v.FAIL
    nothing = cuda(boards=boards(nvidia0="EPERM", nvidia1="EPERM"))
    assert v.isolation_verdict("d", DEVICES_NODE, [nothing, own], none).status == v.FAIL


def test_device_isolation_is_skipped_where_only_the_variables_keep_jobs_apart() -> None:
    env = {"gpus": 1, "gpuIsolation": "env", "gpuIsolationReason": "no BPF"}
    none = cuda("", boards=boards(nvidia0="ok"))
    skipped = v.isolation_verdict("d", env, [cuda()], none)
    assert skipped.status == v.SKIP and "'env' (no BPF)" in skipped.detail
    assert v.isolation_verdict("d", {"gpus": 1}, [cuda()], none).status == v.SKIP
    assert v.isolation_verdict("d", DEVICES_NODE, [cuda()], cuda("", boards={})).status == v.SKIP
