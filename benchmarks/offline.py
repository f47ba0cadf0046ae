"""Offline figures: does the accuracy table rank real sub-networks, and does export keep their accuracy?

    python benchmarks/offline.py --data ../shared/data/cifar10-jpg.tar.gz [--table default] [--samples 20] [--exports 3]

Prints Kendall tau / Spearman rho of the table's predicted score vs measured test accuracy (inherited
weights, batch-norm recalibration), then, side by side for a few of the same sub-networks, the test
accuracy measured in torch and of the exported ONNX model run in onnxruntime.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--table", default="default")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--exports", type=int, default=3)
    args = parser.parse_args()

    from specialize.table import load_table
    from supernet.data import load_dataset
    from supernet.export import export_subnet
    from supernet.validate import validate_table

    table = load_table(args.table)
    dataset = load_dataset(args.data, image_size=table.space.resolution)
    fidelity = validate_table(table, dataset, args.samples)
    print(
        f"table fidelity over {len(fidelity.samples)} sub-networks: Kendall tau {fidelity.kendall_tau:.3f}, "
        f"Spearman rho {fidelity.spearman_rho:.3f} (PONAS: tau 0.733 on 6 models; target tau >= 0.6)"
    )
    for s in fidelity.samples:
        print(
            f"  {s['macs'] / 1e6:6.1f}M MACs  predicted {s['predicted']:+.4f}  test accuracy "
            f"{100 * s['accuracy']:.2f}%  {s['arch']}"
        )
    picks = np.linspace(0, len(fidelity.samples) - 1, args.exports).round().astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        for i in picks:
            sample = fidelity.samples[i]
            out = Path(tmp) / f"subnet{i}.onnx"
            ort_acc = export_subnet(
                table.space.name, sample["arch"], weights=args.table, data=args.data, output=out
            ).measured_accuracy
            print(
                f"export accuracy onnxruntime/torch: {100 * ort_acc:.2f}% vs {100 * sample['accuracy']:.2f}% "
                f"(difference {100 * (ort_acc - sample['accuracy']):+.2f} points; target within 1) {sample['arch']}"
            )


if __name__ == "__main__":
    main()
