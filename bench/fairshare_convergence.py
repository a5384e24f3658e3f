"""Fair share's long run: how far each share's allocation ends from its weight, per workload
class (docs/fairshare.md "How close the long run gets"). Runs the property test's workload (tests/core/test_fairshare_property.py ``allocation``:
the real core, ample jobs in every share, jobs of 10-120 s, 60 half-lives and at least
``--min-s``) over ``--n`` random workloads of a class and prints one JSON line: the worst,
90th-percentile and median relative deviation, how many workloads were over 5 %, and the worst
share's deviation by how many vCPUs it is due (2 or more, 1-2, under 1) and by half-life.

    .venv/bin/python -m bench.fairshare_convergence --class small1 --n 24 [--seed 7]

Classes: ``large1`` 64-128 vCPUs (nodes of 16), 1-vCPU jobs; ``small1`` 8-32 vCPUs (nodes of
8), 1-vCPU jobs; ``smallmix`` 8-32 vCPUs, each array of jobs 1-4 vCPUs. Every workload: 2-4
shares of weight factors 0.25-3, half-life 60, 120, 300 or 600 s (shareDecaySeconds 0).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib

from tests.core.test_fairshare_property import DECAYS, FACTORS, allocation

CLASSES: dict[str, tuple[tuple[int, int], int, tuple[int, ...]]] = {
    "large1": ((4, 8), 16, (1,)),
    "small1": ((1, 4), 8, (1,)),
    "smallmix": ((1, 4), 8, (1, 2, 3, 4)),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--class", dest="cls", choices=sorted(CLASSES), default="small1")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-s", type=int, default=40_000)
    args = parser.parse_args()
    (low, high), vcpus, sizes = CLASSES[args.cls]
    rng = random.Random(zlib.crc32(args.cls.encode()) + args.seed)
    began = time.perf_counter()
    devs: list[float] = []
    bands: dict[str, float] = {}  # the worst share's deviation, by the vCPUs the share is due
    by_half_life: dict[str, float] = {}  # the worst share's deviation, by half-life
    worst: dict[str, object] = {}
    for _ in range(args.n):
        factors = [rng.choice(FACTORS) for _ in range(rng.randint(2, 4))]
        seed, nodes, decay_s = rng.randrange(2**32), rng.randint(low, high), rng.choice(DECAYS)
        shares = allocation(factors, seed, nodes, vcpus, decay_s, args.min_s, sizes)
        for got, want in shares.values():
            band = (
                "due_2_plus"
                if want * nodes * vcpus >= 2
                else "due_1_2"
                if want * nodes * vcpus >= 1
                else "due_under_1"
            )
            bands[band] = max(bands.get(band, 0.0), abs(got - want) / want)
        dev, due = max(
            (abs(got - want) / want, want * nodes * vcpus) for got, want in shares.values()
        )
        half = f"{decay_s or 600}s"
        by_half_life[half] = max(by_half_life.get(half, 0.0), dev)
        if not devs or dev > max(devs):
            worst = {
                "factors": factors,
                "vcpus": nodes * vcpus,
                "decay_s": decay_s,
                "due_vcpus": round(due, 2),
            }
        devs.append(dev)
    devs.sort()
    print(
        json.dumps(
            {
                "bench": "fairshare_convergence",
                "class": args.cls,
                "n": args.n,
                "max_pct": round(100 * devs[-1], 1),
                "p90_pct": round(100 * devs[int(0.9 * len(devs)) - 1], 1),
                "median_pct": round(100 * devs[len(devs) // 2], 1),
                "over_5pct": sum(d > 0.05 for d in devs),
                "worst": worst,
                "worst_pct_by_due": {b: round(100 * d, 1) for b, d in sorted(bands.items())},
                "worst_pct_by_half_life": {
                    h: round(100 * d, 1) for h, d in sorted(by_half_life.items(), key=_seconds)
                },
                "s": round(time.perf_counter() - began, 1),
            }
        )
    )


def _seconds(item: tuple[str, float]) -> int:
    return int(item[0].rstrip("s"))


if __name__ == "__main__":
    main()
