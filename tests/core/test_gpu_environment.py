"""What a job sees of the node's GPUs: exactly its own, by UUID, and none when it asked for none."""

from __future__ import annotations

from hpcbatch.core.attempts import gpu_environment
from tests.core.sim import Sim

NAMES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


def _gpu_env(environment: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {name: value for name, value in environment if name in NAMES}


def test_a_job_without_gpus_sees_none_and_a_job_with_gpus_sees_its_own_by_uuid() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=4)
    none = sim.submit(gpus=0)
    two = sim.submit(gpus=2)
    launches = {launch.job_id: launch for launch in sim.schedule()}
    assert _gpu_env(launches[none.job_id].environment) == {
        "CUDA_VISIBLE_DEVICES": "",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }
    assert launches[two.job_id].gpus == ("GPU-local-n0-0", "GPU-local-n0-1")
    assert _gpu_env(launches[two.job_id].environment) == {
        "CUDA_VISIBLE_DEVICES": "GPU-local-n0-0,GPU-local-n0-1",
        "NVIDIA_VISIBLE_DEVICES": "GPU-local-n0-0,GPU-local-n0-1",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


def test_a_job_without_gpus_keeps_the_values_it_set_itself() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=1)
    own = sim.submit(environment=(("CUDA_VISIBLE_DEVICES", "0"),))
    (launch,) = sim.schedule()
    assert launch.job_id == own.job_id and launch.gpus == ()
    assert _gpu_env(launch.environment) == {
        "CUDA_VISIBLE_DEVICES": "0",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }


def test_a_job_with_gpus_cannot_widen_them_through_its_environment() -> None:
    declared = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "NVIDIA_VISIBLE_DEVICES": "all"}
    assert gpu_environment(("GPU-b",), declared) == {
        "CUDA_VISIBLE_DEVICES": "GPU-b",
        "NVIDIA_VISIBLE_DEVICES": "GPU-b",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


def test_gpus_known_only_by_index_are_counted_in_pci_order_whatever_the_job_says() -> None:
    # CUDA's default order (fastest first) may number the boards unlike nvidia-smi, so an index
    # is only the right board with PCI_BUS_ID; a UUID is the right board in either order.
    declared = {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert gpu_environment(("2",), declared)["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert "CUDA_DEVICE_ORDER" not in gpu_environment(("GPU-b",), declared)
