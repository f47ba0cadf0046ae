"""How far does the same file's deployed latency move over time on this machine? The floor under any profile.

    .venv/bin/python benchmarks/drift.py [--spaces cifar10 ponas-imagenet] [--threads 1 2] [--networks 3]
                                         [--minutes 4] [--runs 30] [--precision fp32|int8]

For each preset and thread count it exports --networks sub-networks spread over the MACs range (random
weights, `specialize export`'s function; at int8 quantized as deployed: `hw_profiles.validate.export_networks`),
then, round after round until --minutes have passed, times each
one exactly as `profile validate` does (`hw_profiles.validate.time_deployed`: a fresh plain onnxruntime
session, warm-up, median of --runs single runs). Each line gives, per network, the spread of its per-round
medians: the largest deviation from their median, and the share of rounds within ±5% and ±10% of it.
A profile measured in one window and checked in another cannot be expected to agree more closely than
these rounds agree with each other. Run it on an idle machine (pause other jobs with kill -STOP).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_profiles.runtime import torch_threads  # noqa: E402
from hw_profiles.validate import export_networks, time_deployed  # noqa: E402
from specialize.sampling import spread_architectures  # noqa: E402
from specialize.api.hardware import space_of  # noqa: E402


def rounds_of(
    paths: list[Path], shape: tuple[int, ...], precision: str, threads: int, minutes: float, runs: int
) -> np.ndarray:
    """[rounds, networks] deployed medians (ms), fresh sessions every round, until `minutes` have passed."""
    rows, end = [], time.monotonic() + 60 * minutes
    while time.monotonic() < end or len(rows) < 3:
        rows.append(time_deployed(paths, shape, "onnxruntime", precision, threads, "all", runs))
    return np.array(rows)


def describe(medians: np.ndarray) -> str:
    centre = np.median(medians, axis=0)
    deviation = np.abs(medians / centre - 1)
    per_net = ", ".join(f"{c:.3f} ms max {100 * d.max():.1f}%" for c, d in zip(centre, deviation.T))
    return (
        f"{len(medians)} rounds; within ±5% {np.mean(deviation <= 0.05):.3f}, within ±10% "
        f"{np.mean(deviation <= 0.10):.3f}; "
        f"per network: {per_net}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["cifar10", "ponas-imagenet"], help="presets or tables")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--networks", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=4.0, help="per preset and thread count")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    args = parser.parse_args()
    for name in args.spaces:
        space = space_of(name)  # a preset, an embedded table or a table .json
        archs = spread_architectures(space, args.networks, 0)
        with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
            paths = export_networks(space, archs, Path(tmp), precision=args.precision)
            shape = (1, 3, space.resolution, space.resolution)
            for threads in args.threads:
                medians = rounds_of(paths, shape, args.precision, threads, args.minutes, args.runs)
                print(f"[{name}, {args.precision}, {threads} thread(s)] {describe(medians)}", flush=True)


if __name__ == "__main__":
    main()
