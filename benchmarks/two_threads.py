"""Why two-thread profiles miss on a 2-vCPU VM: the same files timed round after round at one thread on each vCPU
and at two threads, as deployed.

    .venv/bin/python benchmarks/two_threads.py [--spaces lite0-cifar10-96] [--precision int8] [--networks 3]
                                               [--minutes 4] [--runs 30]

Each round times every network three ways with `hw_profiles.validate.time_deployed` (a fresh onnxruntime session,
warm-up, median of --runs single runs): one thread with the process pinned to cpu0, one thread pinned to cpu1, two
threads on both. Per way it prints each file's median over the rounds and the share of rounds within ±10% of it. For
two threads it also splits the rounds by whether the file ran faster or slower than at one thread that round
("fast" and "slow" phases), and prints each phase's median speed-up over one thread, its share of rounds, and how
long a phase lasted. A profile measured in one phase and checked in another misses by their ratio, whatever it does.
Run it with nothing else running; it needs two CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import groupby
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_profiles.runtime import torch_threads  # noqa: E402
from hw_profiles.validate import export_networks, time_deployed  # noqa: E402
from specialize.api.hardware import space_of  # noqa: E402
from specialize.sampling import spread_architectures  # noqa: E402

WAYS = (("1 thread on cpu0", 1, {0}), ("1 thread on cpu1", 1, {1}), ("2 threads", 2, {0, 1}))


def one_round(paths: list[Path], shape: tuple[int, ...], precision: str, runs: int) -> list[list[float]]:
    """[way][network] deployed medians (ms) of one round."""
    everywhere = os.sched_getaffinity(0)
    try:
        rows = []
        for _, threads, cpus in WAYS:
            os.sched_setaffinity(0, cpus)  # the session's threads inherit the creating thread's mask
            rows.append(time_deployed(paths, shape, "onnxruntime", precision, threads, "all", runs))
        return rows
    finally:
        os.sched_setaffinity(0, everywhere)


def steadiness(medians: np.ndarray) -> str:
    """Per network: median over rounds; and the share of all rounds within ±10% of their network's median."""
    centre = np.median(medians, axis=0)
    within = np.mean(np.abs(medians / centre - 1) <= 0.10)
    return f"within ±10% of own median {within:.3f}; medians " + ", ".join(f"{c:.3f}" for c in centre) + " ms"


def phases(two: np.ndarray, one: np.ndarray, seconds_per_round: float) -> str:
    """Rounds where two threads beat one thread ('fast') or not ('slow'), their speed-ups and phase lengths."""
    speedup = one / two  # >1: two threads faster than one, same round, same file
    fast_round = np.median(speedup, axis=1) > 1
    parts = []
    for name, mask in (("fast", fast_round), ("slow", ~fast_round)):
        if mask.any():
            lengths = [len(list(g)) * seconds_per_round for k, g in groupby(fast_round) if k == (name == "fast")]
            parts.append(
                f"{name} {mask.mean():.2f} of rounds, two threads x{np.median(speedup[mask]):.2f} the speed of one, "
                f"phases of median {np.median(lengths):.0f} s (longest {max(lengths):.0f} s)"
            )
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["lite0-cifar10-96"], help="presets or tables")
    parser.add_argument("--precision", choices=["fp32", "int8"], default="int8")
    parser.add_argument("--networks", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=4.0, help="per space")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit(f"two_threads.py: needs cpu0 and cpu1 (this process may run on {sorted(os.sched_getaffinity(0))})")
    for name in args.spaces:
        space = space_of(name)
        archs = spread_architectures(space, args.networks, 0)
        with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
            paths = export_networks(space, archs, Path(tmp), precision=args.precision)
            shape = (1, 3, space.resolution, space.resolution)
            rounds, start = [], time.monotonic()
            while time.monotonic() < start + 60 * args.minutes or len(rounds) < 3:
                rounds.append(one_round(paths, shape, args.precision, args.runs))
            medians = np.array(rounds)  # [round, way, network]
            seconds = (time.monotonic() - start) / len(rounds)
        head = f"[{name}, {args.precision}, {len(rounds)} rounds of {seconds:.1f} s]"
        for w, (way, _, _) in enumerate(WAYS):
            print(f"{head} {way}: {steadiness(medians[:, w])}", flush=True)
        one = medians[:, :2].mean(axis=1)
        print(f"{head} 2 threads against 1: {phases(medians[:, 2], one, seconds)}", flush=True)


if __name__ == "__main__":
    main()
