"""What the agent's loop (server.py) asks of its runner that a SLURM bridge has no use for: no
child processes to reap or adopt, no cgroups, no CPU meter (the CPU seconds of a bridge's jobs
are Slurm's to count), nothing to close. Standard library."""

from __future__ import annotations

from collections.abc import Callable


class NoMeter:
    """No CPU seconds in heartbeats."""

    def seconds(self) -> float | None:
        return None


class Runnerless:
    """The runner's side of the loop, empty; SlurmBridge builds on it."""

    def __init__(self) -> None:
        self.polled: set[str] = set()  # the runner's adopted-job polling: none here
        self.cpu = NoMeter()
        self.on_other_child: Callable[[int, int], None] | None = None

    def reap_children(self) -> None:
        pass

    def poll_adopted(self) -> None:
        pass

    def sweep_stale_cgroups(self) -> None:
        pass

    def remove_stale_reaped(self) -> None:
        pass

    def close(self) -> None:
        pass
