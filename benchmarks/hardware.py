"""Hardware benchmark: profiling wall time, per-block prediction vs whole networks, roofline ranking.

    .venv/bin/python benchmarks/hardware.py [--samples 50] [--threads T] [--ship]

For each preset (cifar10, ponas-imagenet) it runs `specialize profile` (wall time, target <= 60 s
for ponas-imagenet), then `validate_profile` on random networks spread over the MACs range
(within +-10%, Kendall tau, MAPE; target >= 95% and tau >= 0.9), then Kendall tau between a
roofline estimate and the measured latency of the same networks. Run it on an idle machine:
latency measured beside another busy process is distorted. `--ship` writes the profiles to
hw_profiles/data/ under `shipped_file_name` (with the validation's calibration if kept); the
current shipping command is `benchmarks/hardware_truth.py --ship`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_profiles import load_profile, resolve_profile  # noqa: E402
from hw_profiles.registry import DATA_DIR, shipped_file_name  # noqa: E402
from hw_profiles.validate import validate_profile  # noqa: E402
from specialize.cost import arch_cost  # noqa: E402
from specialize.space import get_space  # noqa: E402

PRESETS = ("cifar10", "ponas-imagenet")
ROOFLINE_DEVICE = "raspberry-pi-5"  # any device ranks; no source gives this VM's peak figures


def busy_warning() -> str | None:
    found = subprocess.run(["pgrep", "-f", "specialize train"], capture_output=True, text=True).stdout.split()
    return (
        f"WARNING: `specialize train` is running (pids {' '.join(found)}): latency figures are distorted"
        if found
        else None
    )


def run_profile(space: str, out: Path, threads: int | None, force: bool) -> float:
    command = [str(ROOT / ".venv/bin/specialize"), "profile", "--name", "this-cpu", "--space", space, "-o", str(out)]
    command += ["--threads", str(threads)] if threads else []
    command += ["--force"] if force else []
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"profiling {space} failed:\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50, help="held-out networks per preset")
    parser.add_argument("--fit-samples", type=int, default=30, help="networks for the calibration fit")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--spaces", nargs="+", default=list(PRESETS))
    parser.add_argument("--force", action="store_true", help="profile even when entries are noisy")
    parser.add_argument("--ship", action="store_true", help="write the profiles into hw_profiles/data/")
    args = parser.parse_args()
    warning = busy_warning()
    if warning:
        print(warning)
    out_dir = DATA_DIR if args.ship else Path(tempfile.mkdtemp(prefix="hw-bench-"))
    for name in args.spaces:
        space = get_space(name)
        path = out_dir / shipped_file_name("this-cpu", "onnxruntime", name, 1, args.threads or 1)
        wall = run_profile(name, path, args.threads, args.force)
        print(
            f"[{name}] profile wall time: {wall:.1f} s ({space.num_layers}x{space.num_candidates} blocks)"
            + (" target <= 60 s" if name == "ponas-imagenet" else "")
        )
        report, profile = validate_profile(
            load_profile(path, space), args.samples, seed=1, calibrate=True, fit_samples=args.fit_samples
        )
        raw, cal = report["uncalibrated"], report.get("calibration", {})
        print(
            f"[{name}] validate ({args.samples} networks): within_10pct={report['within_10pct']:.3f} "
            f"kendall_tau={report['kendall_tau']:.3f} mape={report['mape']:.3f} "
            f"(uncalibrated within_10pct={raw['within_10pct']:.3f} mape={raw['mape']:.3f}; calibration "
            f"{'kept' if report.get('calibration_kept') else 'not kept'}"
            + (f", scale={cal['scale']:.3f} offset_ms={cal['offset_ms']:.3f})" if "scale" in cal else ")")
        )
        if report.get("calibration_kept"):
            profile.save(path)
        measured = [s["measured_ms"] for s in report["samples"]]
        archs = [space.parse_arch(s["arch"]) for s in report["samples"]]
        roofline = resolve_profile(ROOFLINE_DEVICE, space)
        tau_roof = kendalltau([roofline.predict_ms(a) for a in archs], measured)[0]
        tau_macs = kendalltau([arch_cost(a)["macs"] for a in archs], measured)[0]
        tau_blocks = kendalltau([profile.predict_ms(a, calibrated=False) for a in archs], measured)[0]
        print(
            f"[{name}] roofline ({ROOFLINE_DEVICE} figures) vs measured: kendall_tau={tau_roof:.3f} "
            f"(MACs alone {tau_macs:.3f}, measured per-block sums {tau_blocks:.3f})"
        )
    print(f"profiles in {out_dir}")
    if warning:
        print(warning)


if __name__ == "__main__":
    main()
