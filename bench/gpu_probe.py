"""A real CUDA program with no CUDA package: the CUDA driver API (``libcuda.so.1``) through
ctypes, run as a job by bench/gpu_check.sh to show which GPU a job sees and that it can use it.

    python3 bench/gpu_probe.py [--hold SECONDS] [--alloc-mib MIB] [--lib libcuda.so.1] [--dev /dev]

Vocabulary:
    driver      the loaded ``libcuda.so.1`` (or, in tests, any object with the same function
                attributes); every call returns a CUresult, 0 = CUDA_SUCCESS.
    result      the one JSON line the probe prints: the job's ``CUDA_VISIBLE_DEVICES`` and
                ``NVIDIA_VISIBLE_DEVICES`` (null when unset, "" when set empty), ``init`` (the
                cuInit CUresult), ``count`` (cuDeviceGetCount), ``uuid`` of device 0 as
                nvidia-smi writes it (``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``), ``name``,
                ``alloc_ok`` (a cuMemAlloc of ``alloc_mib`` in a context of its own),
                ``error`` (the first failing call and its CUresult name, or null),
                ``start_ms``/``end_ms`` (epoch ms around everything, the hold included),
                ``boards``: each ``/dev/nvidia<N>`` and what opening it gave ("ok" or the
                errno's name: EPERM where the job's cgroup denies that board, ENXIO for a
                device node no driver serves).
    hold        seconds the probe keeps its context and allocation before freeing them, so
                that two jobs given the same GPU at once would overlap in time.

The sequence: cuInit(0), cuDeviceGetCount, cuDeviceGet(0), cuDeviceGetUuid(_v2), cuDeviceGetName,
cuCtxCreate(_v2), cuMemAlloc_v2, hold, cuMemFree_v2, cuCtxDestroy(_v2); the ``_v2`` symbols
are used where the library has them. CUDA_ERROR_NO_DEVICE (100) from cuInit is what a job that
may see no GPU gets (``CUDA_VISIBLE_DEVICES=""``). Standard library only: it runs on a bare host.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import re
import sys
import time
from typing import Any

CUDA_SUCCESS = 0
CUDA_ERROR_NO_DEVICE = 100
UUID_BYTES = 16
UUID_GROUPS = (4, 2, 2, 2, 6)  # bytes per dash-separated group: 8-4-4-4-12 hex digits
BOARD_FILE = re.compile(r"nvidia\d+")  # not nvidiactl, nvidia-uvm, nvidia-modeset, nvidia-caps


def format_uuid(raw: bytes) -> str:
    """A CUuuid's 16 bytes as nvidia-smi prints a GPU's UUID."""
    if len(raw) != UUID_BYTES:
        raise ValueError(f"a CUDA UUID has {UUID_BYTES} bytes, not {len(raw)}")
    groups: list[str] = []
    offset = 0
    for size in UUID_GROUPS:
        groups.append(raw[offset : offset + size].hex())
        offset += size
    return "GPU-" + "-".join(groups)


def open_boards(dev: str = "/dev") -> dict[str, str]:
    """Each GPU board's device file and what opening it for reading and writing gave."""
    found: dict[str, str] = {}
    try:
        names = sorted(n for n in os.listdir(dev) if BOARD_FILE.fullmatch(n))
    except OSError:
        return found
    for name in names:
        path = os.path.join(dev, name)
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CLOEXEC))
        except OSError as exc:
            found[path] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        else:
            found[path] = "ok"
    return found


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _symbol(driver: Any, *names: str) -> Any:
    """The first of ``names`` the driver exports (the _v2 names come first)."""
    for name in names:
        function = getattr(driver, name, None)
        if function is not None:
            return function
    raise AttributeError(f"libcuda has none of {', '.join(names)}")


def error_name(driver: Any, code: int) -> str:
    """``CUDA_ERROR_...`` for a CUresult, through cuGetErrorName where the driver has it."""
    text = ctypes.c_char_p()
    get_name = getattr(driver, "cuGetErrorName", None)
    if get_name is not None and get_name(code, ctypes.pointer(text)) == CUDA_SUCCESS and text.value:
        return f"{text.value.decode(errors='replace')} ({code})"
    return f"CUresult {code}"


class _Failed(Exception):
    def __init__(self, call: str, code: int) -> None:
        super().__init__(call)
        self.call = call
        self.code = code


def _check(driver: Any, call: str, code: int) -> None:
    if code != CUDA_SUCCESS:
        raise _Failed(call, code)


def new_result(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    return {
        "probe": "cuda",
        "pid": os.getpid(),
        "cuda_visible_devices": environ.get("CUDA_VISIBLE_DEVICES"),
        "nvidia_visible_devices": environ.get("NVIDIA_VISIBLE_DEVICES"),
        "init": None,
        "count": None,
        "uuid": None,
        "name": None,
        "alloc_ok": False,
        "error": None,
        "start_ms": _now_ms(),
        "end_ms": None,
        "boards": {},
    }


def run_probe(driver: Any, result: dict[str, Any], hold_s: float, alloc_mib: int) -> None:
    """Fill ``result`` by driving ``driver`` through the sequence; stops at the first failure
    (``error`` names it). A cuInit that finds no device is a result, not an error."""
    try:
        code = int(driver.cuInit(0))
        result["init"] = code
        if code == CUDA_ERROR_NO_DEVICE:
            result["count"] = 0
            return
        _check(driver, "cuInit", code)
        count = ctypes.c_int(-1)
        _check(driver, "cuDeviceGetCount", driver.cuDeviceGetCount(ctypes.pointer(count)))
        result["count"] = count.value
        if count.value < 1:
            return
        _use_device(driver, result, hold_s, alloc_mib)
    except _Failed as failed:
        result["error"] = f"{failed.call}: {error_name(driver, failed.code)}"


def _use_device(driver: Any, result: dict[str, Any], hold_s: float, alloc_mib: int) -> None:
    device = ctypes.c_int(-1)
    _check(driver, "cuDeviceGet", driver.cuDeviceGet(ctypes.pointer(device), 0))
    uuid = (ctypes.c_ubyte * UUID_BYTES)()
    get_uuid = _symbol(driver, "cuDeviceGetUuid_v2", "cuDeviceGetUuid")
    _check(driver, "cuDeviceGetUuid", get_uuid(ctypes.pointer(uuid), device))
    result["uuid"] = format_uuid(bytes(uuid))
    name = ctypes.create_string_buffer(256)
    if driver.cuDeviceGetName(name, len(name), device) == CUDA_SUCCESS:
        result["name"] = name.value.decode(errors="replace")
    context = ctypes.c_void_p()
    create = _symbol(driver, "cuCtxCreate_v2", "cuCtxCreate")
    _check(driver, "cuCtxCreate", create(ctypes.pointer(context), 0, device))
    try:
        pointer = ctypes.c_uint64(0)
        size = ctypes.c_size_t(alloc_mib * 1024 * 1024)
        _check(driver, "cuMemAlloc_v2", driver.cuMemAlloc_v2(ctypes.pointer(pointer), size))
        result["alloc_ok"] = True
        try:
            time.sleep(hold_s)  # the job's work: hold the GPU so a second holder would overlap
        finally:
            _check(driver, "cuMemFree_v2", driver.cuMemFree_v2(pointer))
    finally:
        destroy = _symbol(driver, "cuCtxDestroy_v2", "cuCtxDestroy")
        destroy(context)


def _declare(driver: Any) -> None:
    """Argument types of the real library's functions (a CUdeviceptr is 64 bits)."""
    int_p, void_pp = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p)
    signatures: dict[str, list[Any]] = {
        "cuInit": [ctypes.c_uint],
        "cuDeviceGetCount": [int_p],
        "cuDeviceGet": [int_p, ctypes.c_int],
        "cuDeviceGetUuid_v2": [ctypes.POINTER(ctypes.c_ubyte * UUID_BYTES), ctypes.c_int],
        "cuDeviceGetUuid": [ctypes.POINTER(ctypes.c_ubyte * UUID_BYTES), ctypes.c_int],
        "cuDeviceGetName": [ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
        "cuCtxCreate_v2": [void_pp, ctypes.c_uint, ctypes.c_int],
        "cuCtxCreate": [void_pp, ctypes.c_uint, ctypes.c_int],
        "cuMemAlloc_v2": [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t],
        "cuMemFree_v2": [ctypes.c_uint64],
        "cuCtxDestroy_v2": [ctypes.c_void_p],
        "cuCtxDestroy": [ctypes.c_void_p],
        "cuGetErrorName": [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
    }
    for name, argtypes in signatures.items():
        function = getattr(driver, name, None)
        if function is not None:
            function.argtypes = argtypes
            function.restype = ctypes.c_int


def probe(library: str, hold_s: float, alloc_mib: int, dev: str = "/dev") -> dict[str, Any]:
    result = new_result(os.environ)
    result["boards"] = open_boards(dev)
    try:
        driver = ctypes.CDLL(library)
    except OSError as exc:
        result["error"] = f"cannot load {library}: {exc}"
    else:
        _declare(driver)
        run_probe(driver, result, hold_s, alloc_mib)
    result["end_ms"] = _now_ms()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold the GPU")
    parser.add_argument("--alloc-mib", type=int, default=256)
    parser.add_argument("--lib", default="libcuda.so.1")
    parser.add_argument("--dev", default="/dev", help="where the /dev/nvidia<N> files are")
    args = parser.parse_args(argv)
    result = probe(args.lib, args.hold, args.alloc_mib, args.dev)
    print(json.dumps(result, sort_keys=True), flush=True)
    # Exit 0 whenever the probe ran: whether what it saw is right is the check's to judge.
    return 0 if result["error"] is None or result["error"].startswith("cannot load") else 1


if __name__ == "__main__":
    sys.exit(main())
