"""The node with the most free vCPUs that can take a job, found in O(log nodes), not O(nodes).

A single job goes to the fitting node of its compute environment with the most free vCPUs
(ties: the first by name). Scanning every node for it cost a 1,000-node pass ~1,000 checks per
placed job (docs/benchmarks.md "Issue 15"). ``Roomiest`` keeps one compute environment's nodes
in a lazy max-heap keyed ``(-free vCPUs, position)``, built once a pass. It relies on free room
only shrinking within a pass (``pass_state.take`` is the one writer, and it subtracts), so a
key is never below its node's true free vCPUs:

- an entry whose key is stale is pushed back with its true key and the search goes on;
- the first entry whose key is current and that the caller accepts is exactly what a full scan
  would choose: every entry still in the heap has at most that many free vCPUs, and one with as
  many has a later position;
- once the current top has fewer free vCPUs than the job needs, nothing below it fits;
- entries the caller refused (memory, GPUs, a reservation, a shared limit) are put back for
  later jobs, which may fit where this one did not.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpcbatch.core.pass_state import FreeNode


class Roomiest:
    __slots__ = ("_heap",)

    def __init__(self, tier: Sequence[FreeNode]) -> None:
        self._heap = [(-entry.free.cpu_milli, i, entry) for i, entry in enumerate(tier)]
        heapq.heapify(self._heap)

    def pick(self, need_cpu_milli: int, accepts: Callable[[FreeNode], bool]) -> FreeNode | None:
        """The entry with the most free vCPUs (first by position on a tie) that has at least
        ``need_cpu_milli`` free and that ``accepts`` takes; None when there is none."""
        heap = self._heap
        refused: list[tuple[int, int, FreeNode]] = []
        found: FreeNode | None = None
        while heap:
            key, i, entry = heap[0]
            cpu = entry.free.cpu_milli
            if -key != cpu:
                heapq.heapreplace(heap, (-cpu, i, entry))
                continue
            if cpu < need_cpu_milli:
                break
            if accepts(entry):
                found = entry
                break
            refused.append(heapq.heappop(heap))
        for item in refused:
            heapq.heappush(heap, item)
        return found
