"""bench/gpu_probe.py without a GPU: the UUID text, and the driver-call sequence against a fake
libcuda (an object with the same functions, which writes through the pointers it is given)."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import pytest

from bench import gpu_probe

H200_BYTES = bytes.fromhex("16794395a1b2c3d4e5f60718293a4b5c")
H200_UUID = "GPU-16794395-a1b2-c3d4-e5f6-0718293a4b5c"


class FakeDriver:
    """One device with ``uuid``; ``fail`` maps a function name to the CUresult it returns."""

    def __init__(
        self, init: int = 0, count: int = 1, uuid: bytes = H200_BYTES, **fail: int
    ) -> None:
        self.init, self.count, self.uuid, self.fail = init, count, uuid, fail
        self.calls: list[str] = []
        self.allocated: int | None = None
        self.freed: int | None = None
        self.context: int | None = None
        self.destroyed: int | None = None

    def _call(self, name: str) -> int:
        self.calls.append(name)
        return self.fail.get(name, 0)

    def cuInit(self, flags: int) -> int:
        assert flags == 0
        self.calls.append("cuInit")
        return self.init

    def cuDeviceGetCount(self, count: Any) -> int:
        count.contents.value = self.count
        return self._call("cuDeviceGetCount")

    def cuDeviceGet(self, device: Any, ordinal: int) -> int:
        assert ordinal == 0
        device.contents.value = 0
        return self._call("cuDeviceGet")

    def cuDeviceGetUuid_v2(self, uuid: Any, device: Any) -> int:
        uuid.contents[:] = list(self.uuid)
        return self._call("cuDeviceGetUuid_v2")

    def cuDeviceGetName(self, name: Any, length: int, device: Any) -> int:
        name.value = b"NVIDIA H200"
        return self._call("cuDeviceGetName")

    def cuCtxCreate_v2(self, context: Any, flags: int, device: Any) -> int:
        self.context = 0xC0FFEE
        context.contents.value = self.context
        return self._call("cuCtxCreate_v2")

    def cuMemAlloc_v2(self, pointer: Any, size: Any) -> int:
        self.allocated = size.value
        pointer.contents.value = 0x7F0000000000
        return self._call("cuMemAlloc_v2")

    def cuMemFree_v2(self, pointer: Any) -> int:
        self.freed = pointer.value
        return self._call("cuMemFree_v2")

    def cuCtxDestroy_v2(self, context: Any) -> int:
        self.destroyed = context.value
        return self._call("cuCtxDestroy_v2")

    def cuGetErrorName(self, code: int, name: Any) -> int:
        self._names = {2: b"CUDA_ERROR_OUT_OF_MEMORY", 100: b"CUDA_ERROR_NO_DEVICE"}
        name.contents.value = self._names.get(code, b"CUDA_ERROR_UNKNOWN")
        return 0


def run(driver: Any, **env: str) -> dict[str, Any]:
    result = gpu_probe.new_result(env)
    gpu_probe.run_probe(driver, result, hold_s=0, alloc_mib=256)
    return result


def test_uuid_is_written_as_nvidia_smi_writes_it() -> None:
    assert gpu_probe.format_uuid(H200_BYTES) == H200_UUID
    assert gpu_probe.format_uuid(bytes(16)) == "GPU-00000000-0000-0000-0000-000000000000"
    assert gpu_probe.format_uuid(bytes(range(16))) == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_a_uuid_of_any_other_length_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        gpu_probe.format_uuid(bytes(size))


def test_one_device_is_named_allocated_on_and_released_in_order() -> None:
    driver = FakeDriver()
    result = run(driver, CUDA_VISIBLE_DEVICES="0", NVIDIA_VISIBLE_DEVICES="0")
    assert result["init"] == 0 and result["count"] == 1 and result["error"] is None
    assert result["uuid"] == H200_UUID and result["name"] == "NVIDIA H200"
    assert result["alloc_ok"] is True and driver.allocated == 256 * 1024 * 1024
    assert driver.freed == 0x7F0000000000 and driver.destroyed == 0xC0FFEE
    assert driver.calls.index("cuMemFree_v2") < driver.calls.index("cuCtxDestroy_v2")
    assert result["cuda_visible_devices"] == "0" and result["nvidia_visible_devices"] == "0"


def test_no_device_from_cuinit_is_a_result_not_an_error() -> None:
    driver = FakeDriver(init=gpu_probe.CUDA_ERROR_NO_DEVICE)
    result = run(driver, CUDA_VISIBLE_DEVICES="")
    assert result["init"] == 100 and result["count"] == 0 and result["error"] is None
    assert result["uuid"] is None and not result["alloc_ok"]
    assert driver.calls == ["cuInit"]
    assert result["cuda_visible_devices"] == "" and result["nvidia_visible_devices"] is None


def test_zero_devices_stops_before_any_device_call() -> None:
    driver = FakeDriver(count=0)
    result = run(driver)
    assert result["count"] == 0 and result["uuid"] is None and result["error"] is None
    assert driver.calls == ["cuInit", "cuDeviceGetCount"]


def test_a_failing_call_is_named_with_its_error_and_the_context_is_still_destroyed() -> None:
    driver = FakeDriver(cuMemAlloc_v2=2)
    result = run(driver)
    assert result["error"] == "cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (2)"
    assert not result["alloc_ok"] and driver.freed is None
    assert driver.destroyed == 0xC0FFEE


def test_a_failing_context_is_not_destroyed_and_nothing_is_allocated() -> None:
    driver = FakeDriver(cuCtxCreate_v2=201)
    result = run(driver)
    assert result["error"].startswith("cuCtxCreate: CUDA_ERROR_UNKNOWN (201)")
    assert driver.allocated is None and driver.destroyed is None


def test_a_failing_cuinit_other_than_no_device_is_an_error() -> None:
    result = run(FakeDriver(init=3))
    assert result["init"] == 3 and result["count"] is None
    assert result["error"] == "cuInit: CUDA_ERROR_UNKNOWN (3)"


def test_v2_symbols_are_preferred_and_plain_ones_serve_where_v2_is_missing() -> None:
    class Both(FakeDriver):
        def cuDeviceGetUuid(self, uuid: Any, device: Any) -> int:
            uuid.contents[:] = [0xFF] * 16  # the old call: must not be the one used
            return 0

    assert run(Both())["uuid"] == H200_UUID

    class OldOnly(FakeDriver):
        cuCtxCreate_v2 = None  # type: ignore[assignment]

        def cuCtxCreate(self, context: Any, flags: int, device: Any) -> int:
            self.context = 0xBEEF
            context.contents.value = self.context
            return 0

    old = OldOnly()
    assert run(old)["alloc_ok"] and old.destroyed == 0xBEEF


def test_an_error_name_without_cugeterrorname_is_the_number() -> None:
    class Bare:
        pass

    assert gpu_probe.error_name(Bare(), 999) == "CUresult 999"


def test_without_libcuda_the_probe_says_so_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    assert gpu_probe.main(["--lib", "libcuda-not-here.so.1"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["probe"] == "cuda" and line["error"].startswith("cannot load libcuda-not-here")
    assert line["cuda_visible_devices"] == "" and line["nvidia_visible_devices"] is None
    assert line["start_ms"] <= line["end_ms"]


def test_the_real_librarys_functions_get_64_bit_device_pointers() -> None:
    class Lib:
        def __init__(self) -> None:
            self.cuMemAlloc_v2 = type("F", (), {})()

    lib = Lib()
    gpu_probe._declare(lib)
    assert lib.cuMemAlloc_v2.argtypes[0] == ctypes.POINTER(ctypes.c_uint64)
    assert lib.cuMemAlloc_v2.restype is ctypes.c_int


def test_only_the_boards_device_files_are_opened(tmp_path: Path) -> None:
    for name in ("nvidia0", "nvidia12", "nvidiactl", "nvidia-uvm", "nvidia-caps", "nvidia0x"):
        (tmp_path / name).write_text("")
    found = gpu_probe.open_boards(str(tmp_path))
    assert found == {f"{tmp_path}/nvidia0": "ok", f"{tmp_path}/nvidia12": "ok"}
    (tmp_path / "nvidia3").mkdir()  # opening a directory read-write fails: EISDIR
    assert gpu_probe.open_boards(str(tmp_path))[f"{tmp_path}/nvidia3"] == "EISDIR"
    assert gpu_probe.open_boards(str(tmp_path / "missing")) == {}
