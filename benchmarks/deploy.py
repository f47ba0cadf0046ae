"""Deployable truth (issue 9): does what `--export` writes match what the search printed?

    python benchmarks/deploy.py --data ../shared/data/cifar10-jpg.tar.gz [--table default] [--sets 20] [--samples 20]

Prints, in one run:
- for --sets random bound sets on the table (--device, default jetson), each exported through the one deploy path:
  exported MACs/params equal to the printed ones, ONNX test accuracy (onnxruntime) inside the printed band,
  and the mean absolute error of predicted vs measured accuracy; beside it, the same figures for the fit on
  random sub-networks, where the table also has a fit on the search's answers (`table refit --picks`);
- the 40M-MAC pick of `specialize --device jetson --max-flops 40M --export`: predicted and measured accuracy;
- the meta network (largest block everywhere) and the best sub-network: ONNX test accuracy;
- Kendall tau of the table over --samples sub-networks spread over the MACs range;
- training wall time per stage and the accuracy fit, as the table records them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def random_bounds(rng: np.random.Generator, macs_range: tuple[int, int], params_range: tuple[int, int]) -> dict:
    """A MACs ceiling somewhere in the space's range, sometimes a parameter ceiling or a MACs floor too."""
    lo, hi = macs_range
    bounds = {"max_flops": float(rng.uniform(lo + 0.05 * (hi - lo), hi))}
    if rng.random() < 0.4:
        bounds["max_params"] = float(
            rng.uniform(params_range[0] + 0.2 * (params_range[1] - params_range[0]), params_range[1])
        )
    if rng.random() < 0.3:
        bounds["min_flops"] = float(lo + rng.uniform(0, 0.5) * (bounds["max_flops"] - lo))
    return bounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--table", default="default")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="jetson", help="device of the random bound sets (MACs and params bounds)")
    args = parser.parse_args()

    from specialize.api import export_result, specialize
    from specialize.cost import space_ranges
    from specialize.table import load_table
    from supernet.data import load_dataset
    from supernet.export import export_subnet
    from supernet.validate import validate_table

    table = load_table(args.table)
    ranges = space_ranges(table.space)
    rng = np.random.default_rng(args.seed)
    equal = inside = inside_spread = 0
    errors, spread_errors = [], []
    spread_fit = table.accuracy_fit
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.sets):
            bounds = random_bounds(rng, ranges["macs"], ranges["params"])
            result = export_result(
                specialize(args.device, table=args.table, **bounds), Path(tmp) / f"set{i}.onnx", data=args.data
            )
            ex = result.export
            equal += ex["macs"] == result.macs and ex["params"] == result.params
            error = ex["measured_accuracy"] - result.predicted_accuracy
            errors.append(error)
            band = result.predicted_accuracy_band or 0.0
            inside += abs(error) <= band
            spread_predicted, spread_band = table.predict(result.accuracy_loss, fit=spread_fit)
            spread_errors.append(ex["measured_accuracy"] - spread_predicted)
            inside_spread += abs(spread_errors[-1]) <= (spread_band or 0.0)
            print(
                f"  set {i + 1:2d}: {result.macs / 1e6:5.1f}M MACs  predicted "
                f"{100 * result.predicted_accuracy:5.2f}% ± "
                f"{100 * band:.2f}  measured {100 * ex['measured_accuracy']:5.2f}%  (spread fit "
                f"{100 * spread_predicted:5.2f}% ± {100 * (spread_band or 0):.2f})  {result.arch}"
            )
        print(
            f"random bound sets: exported MACs/params equal to printed {equal}/{args.sets}; ONNX test accuracy inside "
            f"the printed band {inside}/{args.sets}; mean absolute error predicted vs measured "
            f"{100 * np.mean(np.abs(errors)):.2f} points (mean signed {100 * np.mean(errors):+.2f})"
        )
        print(
            f"the same exports against the fit on random sub-networks (results.accuracy_fit): inside its band "
            f"{inside_spread}/{args.sets}; mean absolute error {100 * np.mean(np.abs(spread_errors)):.2f} points "
            f"(mean signed {100 * np.mean(spread_errors):+.2f})"
            + ("" if table.pick_fit else "; this table has no pick fit, so it is the printed one")
        )

        start = time.perf_counter()
        pick = export_result(
            specialize("jetson", table=args.table, max_flops="40M"), Path(tmp) / "j40.onnx", data=args.data
        )
        print(
            f"--device jetson --max-flops 40M --export: predicted {100 * pick.predicted_accuracy:.2f}% ± "
            f"{100 * (pick.predicted_accuracy_band or 0):.2f}, measured {100 * pick.export['measured_accuracy']:.2f}% "
            f"({pick.macs / 1e6:.1f}M MACs, {time.perf_counter() - start:.1f} s with export) {pick.arch}"
        )
        for label, arch in (("meta network", str(table.space.largest_arch())), ("best sub-network", table.best_arch)):
            done = export_subnet(table.space.name, arch, Path(tmp) / "x.onnx", weights=args.table, data=args.data)
            print(
                f"{label}: ONNX test accuracy {100 * done.measured_accuracy:.2f}% ({done.macs / 1e6:.1f}M MACs) {arch}"
            )

    fidelity = validate_table(
        table, load_dataset(args.data, image_size=table.space.resolution), args.samples, args.seed
    )
    print(
        f"table fidelity over {len(fidelity.samples)} sub-networks spread over the MACs range: Kendall tau "
        f"{fidelity.kendall_tau:.3f}, Spearman rho {fidelity.spearman_rho:.3f} (aim tau >= 0.8)"
    )
    wall = table.results.get("wall_seconds", {})
    fit = table.accuracy_fit or {}
    print(
        f"training wall time: meta {wall.get('meta', 0) / 60:.1f} min, fine-tune "
        f"{wall.get('finetune', 0) / 60:.1f} min; "
        f"accuracy fit over {fit.get('samples')} sub-networks on {fit.get('images')} validation images: band ±"
        f"{100 * fit.get('band', float('nan')):.2f} points"
    )


if __name__ == "__main__":
    main()
