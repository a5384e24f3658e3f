"""A node's GPUs from ``nvidia-smi``: the query, its parser, and detection that cannot hurt.

Vocabulary:
    inventory  the GPUs one ``nvidia-smi --query-gpu`` run lists: index, UUID, model, memory.
    reason     why the inventory is empty when it may not be (nvidia-smi missing, failed,
               hung or printed something unparsable); the hello carries it as ``gpus_reason``.

``parse_nvidia_smi`` is pure, with golden tests of real outputs. ``detect_gpus`` runs the
binary in its own session under a deadline of a few seconds: a driver that hangs
``nvidia-smi`` costs the agent that deadline, never its start, and every outcome other than
a clean parse is a reason, never an exception, so the node still offers its CPUs and memory.

A MIG-enabled board is listed whole by ``--query-gpu`` (its MIG instances are not), so it is
one GPU here like any other.

How nvidia-smi is run is a parameter of ``detect_gpus``: ``run_nvidia_smi`` (subprocess,
which waits for its own child) before the agent's loop starts; the periodic re-detection runs
it from a thread while the loop reaps every child, so it passes gpupoll.py's runner instead.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from .protocol import GPU_ID_RULE, GpuInfo, is_gpu_id

NVIDIA_SMI_ARGS = [
    "--query-gpu=index,uuid,name,memory.total",
    "--format=csv,noheader,nounits",
]
QUERY_FIELDS = ("index", "uuid", "name", "memory.total")
NVIDIA_SMI_TIMEOUT_S = 5.0
KILL_WAIT_S = 1.0  # a process stuck in the driver may not die; never wait on it for long
_QUOTE_MAX = 120

# (returncode, stdout, stderr) of a run that finished, or the reason it did not.
Outcome = tuple[int, str, str] | str
Runner = Callable[[str, float], Outcome]


class NvidiaSmiError(ValueError):
    """nvidia-smi printed something that is not the query's CSV; the message says where."""


@dataclass(frozen=True)
class GpuDetection:
    gpus: list[GpuInfo] = field(default_factory=list)
    reason: str | None = None  # None: nvidia-smi ran and its output parsed


def _quote(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX] + "...")


def _nullable(text: str) -> str | None:
    # nvidia-smi prints "[N/A]" / "[Not Supported]" for fields a board does not report.
    text = text.strip()
    return None if not text or text.startswith("[") else text


def _memory_mib(text: str, where: str) -> int | None:
    value = _nullable(text)
    if value is None:
        return None
    number = value.removesuffix("MiB").strip()  # tolerate the output of a query with units
    try:
        mib = float(number)
    except ValueError:
        raise NvidiaSmiError(
            f"{where}: memory.total {_quote(text)} is not a number of MiB"
        ) from None
    if not 0 <= mib < 2**40:
        raise NvidiaSmiError(f"{where}: memory.total {_quote(text)} is out of range")
    return int(mib)


def _gpu(row: list[str], where: str) -> GpuInfo:
    if len(row) != len(QUERY_FIELDS):
        raise NvidiaSmiError(
            f"{where}: expected {len(QUERY_FIELDS)} comma-separated fields "
            f"({', '.join(QUERY_FIELDS)}), got {len(row)}: {_quote(','.join(row))}"
        )
    index = row[0].strip()
    if not index.isdigit() or int(index) >= 2**16:
        raise NvidiaSmiError(f"{where}: index {_quote(row[0])} is not an integer 0..65535")
    uuid = _nullable(row[1])
    if uuid is not None and not is_gpu_id(uuid):  # it becomes the GPU's id on the wire
        raise NvidiaSmiError(f"{where}: uuid {_quote(row[1])} is not {GPU_ID_RULE}")
    return {
        "index": int(index),
        "uuid": uuid,
        "name": _nullable(row[2]),
        "memory_mib": _memory_mib(row[3], where),
    }


def parse_nvidia_smi(output: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits``.

    Raises NvidiaSmiError naming the line, the field and the rule it broke.
    """
    gpus: list[GpuInfo] = []
    for number, line in enumerate(output.splitlines(), start=1):
        where = f"nvidia-smi line {number}"
        if "\0" in line:  # csv refuses NUL, in its own words; say it in ours
            raise NvidiaSmiError(f"{where}: contains a NUL byte: {_quote(line)}")
        row = next(csv.reader([line], skipinitialspace=True), [])
        if "".join(row).strip():
            gpus.append(_gpu(row, where))
    for key in ("index", "uuid"):
        values = [gpu[key] for gpu in gpus if gpu[key] is not None]
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise NvidiaSmiError(f"nvidia-smi lists {key} {', '.join(repeated)} more than once")
    return gpus


def run_nvidia_smi(binary: str, timeout_s: float) -> Outcome:
    """(returncode, stdout, stderr), or the reason it could not finish."""
    try:
        process = subprocess.Popen(
            [binary, *NVIDIA_SMI_ARGS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # so a timeout can end whatever it started
        )
    except OSError as error:
        return could_not_start(error)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=KILL_WAIT_S)
        return timed_out(timeout_s)
    return process.returncode, stdout, stderr


def timed_out(timeout_s: float) -> str:
    return f"nvidia-smi timed out after {timeout_s:g} s (killed)"


def could_not_start(error: OSError) -> str:
    return f"nvidia-smi could not start: {error}"


def detect_gpus(
    timeout_s: float = NVIDIA_SMI_TIMEOUT_S,
    run: Runner = run_nvidia_smi,
    binary: str | None = None,
) -> GpuDetection:
    """This host's GPUs from ``binary`` (``serve --nvidia-smi``), else the nvidia-smi on PATH;
    never raises, never waits past the deadline (plus a second to reap a killed one)."""
    binary = binary or shutil.which("nvidia-smi")
    if binary is None:
        return GpuDetection(reason="nvidia-smi not found on PATH")
    outcome = run(binary, timeout_s)
    if isinstance(outcome, str):
        return GpuDetection(reason=outcome)
    returncode, stdout, stderr = outcome
    if returncode != 0:
        said = (stderr.strip() or stdout.strip()).splitlines()
        return GpuDetection(
            reason=f"nvidia-smi exited with {returncode}: {_quote(said[0] if said else '')}"
        )
    try:
        return GpuDetection(gpus=parse_nvidia_smi(stdout))
    except NvidiaSmiError as error:
        return GpuDetection(reason=f"nvidia-smi output not understood: {error}")
