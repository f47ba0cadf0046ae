"""Few-shot calibration, demonstrated on this CPU: an estimate for a device nobody measured, fitted to k timings.

    .venv/bin/python benchmarks/fewshot.py [--spaces cifar10 ponas-imagenet] [--k 0,5,10,20] [--held-out 40]
                                           [--runs 30] [--threads 1] [--start-device raspberry-pi-4]

The start is the op-type roofline estimate (`hw_profiles.roofline`: op-type terms fitted on this CPU's
block profiles, datasheet figures and published anchor of --start-device; no datasheet gives this VM's
peak figures) at fp32. This CPU then plays the new device: max(k) + --held-out networks spread over the
space are exported with `specialize export`'s function and timed as deployed (`hw_profiles.validate.
measure_networks`: a plain onnxruntime session at --threads, warm-up, the median of --runs single runs:
the one protocol of `hw_profiles.runtime`). For each k the estimate is calibrated on k of the timed
networks (`hw_profiles.fewshot.calibrate_estimate`, what `specialize profile calibrate` runs; the k are
nested and spread over MACs) and scored on the held-out ones: one line per k with Kendall τ, MAPE and
the share within ±10%, beside MACs alone. k = 0 is the estimate as it is.

Run it on an idle machine: timings taken beside another busy process are distorted (it warns).
Smoke run: --spaces cifar10 --held-out 6 --k 0,2 --runs 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hardware_truth import busy_warning  # noqa: E402
from hw_profiles.devices import devices  # noqa: E402
from hw_profiles.fewshot import calibrate_estimate  # noqa: E402
from hw_profiles.profile import DeviceProfile  # noqa: E402
from hw_profiles.roofline import estimate_profile  # noqa: E402
from hw_profiles.validate import CALIBRATION_SEED, agreement, measure_networks  # noqa: E402
from specialize.cost import arch_cost  # noqa: E402
from specialize.sampling import spread_architectures  # noqa: E402
from specialize.space import Architecture, get_space  # noqa: E402

PRESETS = ("cifar10", "ponas-imagenet")


def nested_subset(archs: list[Architecture], k: int) -> list[Architecture]:
    """k of `archs` spread evenly over their MACs order; where k divides the pool (5, 10, 20 of 20) a
    smaller k's networks are among a larger k's."""
    if k >= len(archs):
        return list(archs)
    by_macs = sorted(archs, key=lambda a: arch_cost(a)["macs"])
    step = len(by_macs) / k
    return [by_macs[int(i * step)] for i in range(k)]


def networks(space_name: str, max_k: int, held_out: int, seed: int) -> tuple[list[Architecture], list[Architecture]]:
    """(calibration pool of max_k, held-out networks): spread over the space, disjoint."""
    space = get_space(space_name)
    pool = spread_architectures(space, max_k, seed + CALIBRATION_SEED) if max_k else []
    taken = {a.indices for a in pool}
    held = [a for a in spread_architectures(space, held_out + len(pool), seed) if a.indices not in taken]
    return pool, held[:held_out]


def scores(profile: DeviceProfile, held: list[Architecture], measured: list[float]) -> dict:
    return agreement([profile.predict_ms(a) for a in held], measured)


def calibrated(
    start: DeviceProfile, pool: list[Architecture], timed: dict, k: int
) -> tuple[DeviceProfile, float | None]:
    """The start estimate fitted to k of the pool's timings, with its leave-one-out error (None for k < 2)."""
    if k == 0:
        return start, None
    chosen = nested_subset(pool, k)
    fitted = calibrate_estimate(start, [(a, timed[a.indices]) for a in chosen])
    return fitted, fitted.hardware["few_shot"]["loo_mape"] if k >= 2 else None


def run_space(space_name: str, args: argparse.Namespace, ks: list[int]) -> None:
    space = get_space(space_name)
    start = estimate_profile(devices()[args.start_device], space, precision="fp32")
    pool, held = networks(space_name, max(ks), args.held_out, args.seed)
    measured = measure_networks(start, pool + held, runtime_name="onnxruntime", threads=args.threads, runs=args.runs)
    timed = {a.indices: ms for a, ms in zip(pool + held, measured)}
    truth = measured[len(pool) :]
    tau_macs = kendalltau([arch_cost(a)["macs"] for a in held], truth)[0]
    print(
        f"[{space_name}] start: op-type estimate on {args.start_device} figures (fp32); truth: this CPU, onnxruntime, "
        f"{args.threads} thread(s), median of {args.runs} runs; {len(held)} held-out networks; MACs alone "
        f"kendall_tau={tau_macs:.3f}"
    )
    for k in ks:
        profile, loo = calibrated(start, pool, timed, k)
        s = scores(profile, held, truth)
        loo_text = "" if loo is None else f" (leave-one-out on the {k}: mape={loo:.3f})"
        print(
            f"[{space_name}] k={k:>2}: kendall_tau={s['kendall_tau']:.3f} mape={s['mape']:.3f} "
            f"within_10pct={s['within_10pct']:.3f}{loo_text}",
            flush=True,
        )


def parse_ks(text: str) -> list[int]:
    ks = sorted({int(v) for v in text.split(",") if v.strip()})
    if not ks or ks[0] < 0:
        raise SystemExit(f"--k needs non-negative whole numbers separated by commas, got {text!r}")
    return ks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=list(PRESETS))
    parser.add_argument("--k", default="0,5,10,20", help="calibration set sizes, comma-separated")
    parser.add_argument("--held-out", type=int, default=40, help="networks the calibrated estimates are scored on")
    parser.add_argument("--runs", type=int, default=30, help="single runs per network after warm-up (median taken)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads of the timings")
    parser.add_argument(
        "--start-device",
        default="raspberry-pi-4",
        choices=sorted(devices()),
        help="registered device whose estimate is the starting point",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.held_out < 2:
        raise SystemExit("--held-out needs at least 2 networks (Kendall tau)")
    warning = busy_warning()
    if warning:
        print(warning)
    for space_name in args.spaces:
        run_space(space_name, args, parse_ks(args.k))
    if warning:
        print(warning)


if __name__ == "__main__":
    main()
