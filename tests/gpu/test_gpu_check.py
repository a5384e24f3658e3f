"""bench/gpu_check.sh end to end: on a real GPU where nvidia-smi exists (else skipped); here,
its GPU part through a stub nvidia-smi and a fake libcuda.so.1 built from fake_libcuda.c (where
a C compiler exists), and its cgroup part where the agent enforces limits with cgroups.

Each run uses this interpreter's venv (``--venv``), a head of its own on a free port, and a
temp dir under the test's, so the suite's guard sees any agent it left."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE_UUID = "GPU-16794395-0123-4567-89ab-cdef01234567"
GPU_ROWS = (
    "gpu: inventory",
    "gpu: job a",
    "gpu: job b",
    "gpu: one after the other",
    "gpu: no-GPU job",
)
ISOLATION = "gpu: device isolation"
CGROUP_ROWS = (
    "cgroups: detected",
    "cgroups: memory (OOM)",
    "cgroups: cpu quota",
    "cgroups: pids.max",
    "cgroups: kill whole tree",
)
STUB_SMI = f"""#!/bin/sh
case "$*" in
  *memory.total*) echo "0, {FAKE_UUID}, NVIDIA H200, 143771" ;;
  *) echo "0, {FAKE_UUID}, NVIDIA H200" ;;
esac
"""


def run_check(tmp_path: Path, *options: str, **env: str) -> tuple[int, dict[str, str], str]:
    """(exit code, {check: "STATUS detail"} from the summary table, everything it wrote)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    environ = {**os.environ, "TMPDIR": str(tmp_path), "OUT": str(out), **env}
    done = subprocess.run(
        ["bash", str(REPO / "bench/gpu_check.sh"), "--venv", sys.prefix, *options],
        env=environ,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    rows: dict[str, str] = {}
    for line in done.stdout.split("## summary\n", 1)[-1].splitlines()[2:]:
        name, _, rest = line.partition("  ")
        if name.strip():
            rows[name.strip()] = rest.strip()
    written = out / "gpu_check.txt"
    text = (written.read_text() if written.exists() else "") + done.stderr
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, rows, text


def status(rows: dict[str, str], name: str) -> str:
    return rows.get(name, "(missing)").split()[0]


def fake_gpu(tmp_path: Path, *flags: str) -> dict[str, str]:
    """PATH with a stub nvidia-smi, and GPU_CHECK_LIBCUDA naming a fake libcuda."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        if os.environ.get("CI") == "true":  # scripts/test.sh installs gcc: this must run there
            pytest.fail("no C compiler, though scripts/test.sh installs gcc")
        pytest.skip("no C compiler to build the fake libcuda")
    library = tmp_path / "libcuda.so.1"
    source = Path(__file__).with_name("fake_libcuda.c")
    subprocess.run(
        [compiler, *flags, "-shared", "-fPIC", "-o", str(library), str(source)], check=True
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(STUB_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    dev = tmp_path / "dev"  # the board's device node, 195:0, which no driver serves (ENXIO)
    dev.mkdir()
    with contextlib.suppress(OSError):  # not root, or a nodev mount: the row is then SKIP
        os.mknod(dev / "nvidia0", 0o666 | stat.S_IFCHR, os.makedev(195, 0))
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GPU_CHECK_LIBCUDA": str(library),
        "GPU_CHECK_DEV": str(dev),
    }


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no nvidia-smi: no GPU here")
def test_the_whole_check_passes_on_a_real_gpu(tmp_path: Path) -> None:
    code, rows, text = run_check(tmp_path)
    assert code == 0, text
    assert all(status(rows, name) == "PASS" for name in GPU_ROWS + CGROUP_ROWS), text
    assert status(rows, ISOLATION) in ("PASS", "SKIP"), text  # SKIP: by the variables only


@pytest.mark.slow
def test_the_gpu_part_passes_through_a_fake_gpu(tmp_path: Path) -> None:
    code, rows, text = run_check(tmp_path, "--only", "gpu", **fake_gpu(tmp_path))
    assert code == 0, text
    assert all(status(rows, name) == "PASS" for name in GPU_ROWS), text
    # The no-GPU job is refused the made-up board wherever the agent denies boards by cgroup
    # (v1 devices, v2 eBPF); the row is SKIP where it keeps jobs apart by the variables only.
    isolation = rows[ISOLATION]
    if (tmp_path / "dev/nvidia0").exists() and "reports gpuIsolation" not in isolation:
        assert isolation.startswith("PASS"), text
    else:
        assert isolation.startswith("SKIP"), text
    assert not any(name.startswith("cgroups") for name in rows)
    assert f"CUDA_VISIBLE_DEVICES='{FAKE_UUID}'" in text or "CUDA_VISIBLE_DEVICES='0'" in text


@pytest.mark.slow
def test_a_job_without_gpus_that_sees_one_fails_the_check(tmp_path: Path) -> None:
    code, rows, text = run_check(tmp_path, "--only", "gpu", **fake_gpu(tmp_path, "-DLEAKY"))
    assert code == 1, text
    assert status(rows, "gpu: no-GPU job") == "FAIL", text
    assert status(rows, "gpu: job a") == status(rows, "gpu: job b") == "PASS", text


@pytest.mark.slow
@pytest.mark.solo  # its CPU-quota probe needs spare CPUs to show the quota biting
def test_the_cgroup_part_passes_where_the_agent_enforces_limits(tmp_path: Path) -> None:
    code, rows, text = run_check(tmp_path, "--only", "cgroups")
    if "enforcement: 'none" in text:
        pytest.skip("the agent enforces no limits with cgroups on this host")
    assert code == 0, text
    assert all(status(rows, name) == "PASS" for name in CGROUP_ROWS), text
    assert not any(name.startswith("gpu") for name in rows), text
