"""Multi-thread profiles: blocks timed at T threads, or 1-thread blocks scaled by a whole-network fit?

    .venv/bin/python benchmarks/thread_scaling.py [--spaces cifar10 ponas-imagenet] [--threads 2] [--samples 40]
                                                  [--timings 4] [--runs 30] [--direct-cifar10 FILE]

For each preset it makes a fresh scaled profile (`hw_profiles.thread_scaling.scale_to_threads`, what
`specialize profile --from-one-thread` runs) from the shipped 1-thread profile, then times the same
--samples held-out networks (seed 1, exported as `profile validate` does) --timings times at T threads,
as a deployment would. For each timing it prints, side by side, how well each predictor matches it:
a T-thread profile whose blocks were timed at T threads ("direct": --direct-SPACE FILE, e.g. one
`specialize profile --threads T` makes; by default the shipped one, which since 2026-12-01 is itself
scaled and then shows as "given (scaled)"; the line names it), the fresh scaled one, the 1-thread profile
taken as it is, MACs alone (τ only), and the previous timing of the same files (the ceiling this
machine allows any profile). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_profiles.profile import load_profile  # noqa: E402
from hw_profiles.registry import DATA_DIR, shipped_file_name  # noqa: E402
from hw_profiles.runtime import torch_threads  # noqa: E402
from hw_profiles.thread_scaling import scale_to_threads  # noqa: E402
from hw_profiles.validate import agreement, export_networks, time_deployed  # noqa: E402
from specialize.cost import arch_cost  # noqa: E402
from specialize.sampling import spread_architectures  # noqa: E402
from specialize.space import get_space  # noqa: E402


def cell(name: str, figures: dict) -> str:
    return f"{name} within {figures['within_10pct']:.3f} tau {figures['kendall_tau']:.3f}"


def compare(space_name: str, threads: int, args: argparse.Namespace) -> None:
    space = get_space(space_name)
    one = load_profile(DATA_DIR / shipped_file_name("this-cpu", "onnxruntime", space_name, 1, 1), space)
    direct = getattr(args, f"direct_{space_name.replace('-', '_')}") or DATA_DIR / shipped_file_name(
        "this-cpu", "onnxruntime", space_name, 1, threads
    )
    shipped = load_profile(direct, space)
    print(
        f"[{space_name}, {threads} threads] 'direct': {direct} "
        f"({shipped.measurement.get('blocks', 'blocks timed at its threads')})"
    )
    scaled = scale_to_threads(one, threads)
    coef = scaled.calibration["thread_scaling"]
    print(
        f"[{space_name}, {threads} threads] scaled: x{coef['share_of_1_thread_ms']:.3f} of the 1-thread ms "
        f"+ {1e3 * coef['ms_per_op']:.1f} us per op, offset {scaled.calibration['offset_ms']:+.3f} ms; "
        f"expects ±{100 * scaled.expected_error:.1f}%",
        flush=True,
    )
    archs = spread_architectures(space, args.samples, 1)
    label = (
        "direct" if "blocks" not in shipped.measurement else "given (scaled)"
    )  # the shipped one may itself be scaled
    predictors = {
        label: [shipped.predict_ms(a) for a in archs],
        "scaled": [scaled.predict_ms(a) for a in archs],
        "1-thread": [one.predict_ms(a) for a in archs],
    }
    macs = [arch_cost(a)["macs"] for a in archs]
    shape = (1, 3, space.resolution, space.resolution)
    previous = None
    with tempfile.TemporaryDirectory(prefix="thread-scaling-") as tmp, torch_threads(1):
        paths = export_networks(space, archs, Path(tmp))
        for k in range(args.timings):
            measured = time_deployed(
                paths, shape, "onnxruntime", "fp32", threads, shipped.graph_optimization_level, args.runs
            )
            cells = [cell(name, agreement(p, measured)) for name, p in predictors.items()]
            cells.append(f"MACs tau {agreement(macs, measured)['kendall_tau']:.3f}")
            if previous is not None:
                cells.append(cell("previous timing", agreement(previous, measured)))
            print(f"  timing {k}: " + " | ".join(cells), flush=True)
            previous = measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["cifar10", "ponas-imagenet"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--timings", type=int, default=4)
    parser.add_argument("--runs", type=int, default=30)
    for space_name in ("cifar10", "ponas-imagenet"):
        parser.add_argument(
            f"--direct-{space_name}",
            type=Path,
            help=f"the {space_name} T-thread profile to compare (default: the shipped one)",
        )
    args = parser.parse_args()
    for space_name in args.spaces:
        compare(space_name, args.threads, args)


if __name__ == "__main__":
    main()
