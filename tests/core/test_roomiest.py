"""The roomiest-node search chooses exactly what a scan of every node would, as room shrinks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbatch.core.model import Node, Resources
from hpcbatch.core.pass_state import FreeNode
from hpcbatch.core.roomiest import Roomiest


def _scan(tier: list[FreeNode], need: Resources, refused: set[str]) -> FreeNode | None:
    """The choice before ``Roomiest``: most free vCPUs, the first on a tie."""
    best: FreeNode | None = None
    for entry in tier:
        better = best is None or entry.free.cpu_milli > best.free.cpu_milli
        if better and need.fits_in(entry.free) and entry.node.name not in refused:
            best = entry
    return best


def _tier(frees: list[tuple[int, int]]) -> list[FreeNode]:
    tier = []
    for i, (cpu, mem) in enumerate(frees):
        capacity = Resources(8000, 4096, 0)
        node = Node(name=f"n{i:03d}", ce="ce", capacity=capacity)
        tier.append(FreeNode(node, Resources(cpu, mem, 0), []))
    return tier


jobs = st.lists(
    st.tuples(
        st.sampled_from([250, 1000, 2000, 4000]),  # vCPUs needed
        st.sampled_from([0, 512, 2048]),  # memory needed
        st.sets(st.integers(0, 11), max_size=3),  # nodes that refuse it (a reservation)
    ),
    max_size=60,
)


@given(
    frees=st.lists(
        st.tuples(st.integers(0, 8000), st.sampled_from([0, 1024, 4096])), min_size=1, max_size=12
    ),
    jobs=jobs,
)
@settings(max_examples=300, deadline=None)
def test_each_choice_is_the_full_scans_choice(
    frees: list[tuple[int, int]], jobs: list[tuple[int, int, set[int]]]
) -> None:
    tier = _tier(frees)
    roomiest = Roomiest(tier)
    for cpu, mem, refusing in jobs:
        need = Resources(cpu, mem, 0)
        refused = {f"n{i:03d}" for i in refusing}
        expected = _scan(tier, need, refused)
        got = roomiest.pick(
            cpu, lambda e, n=need, r=refused: n.fits_in(e.free) and e.node.name not in r
        )
        assert got is expected
        if got is not None:
            got.free = got.free - need  # what pass_state.take does


def test_a_node_refused_for_one_job_is_still_offered_to_the_next() -> None:
    tier = _tier([(8000, 4096), (4000, 4096)])
    roomiest = Roomiest(tier)
    assert roomiest.pick(1000, lambda e: e.node.name != "n000") is tier[1]
    assert roomiest.pick(1000, lambda e: True) is tier[0]


def test_nothing_is_returned_once_no_node_has_the_vcpus() -> None:
    tier = _tier([(1000, 4096), (500, 4096)])
    roomiest = Roomiest(tier)
    assert roomiest.pick(2000, lambda e: True) is None
    assert roomiest.pick(1000, lambda e: True) is tier[0]
