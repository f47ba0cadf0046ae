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


def onnx_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    from hw_profiles.runtime import all_cores, ort_session

    session = ort_session(path, threads=all_cores())
    name = session.get_inputs()[0].name
    correct = 0
    for i in range(0, len(labels), 500):
        x = images[i:i + 500].transpose(0, 3, 1, 2).astype(np.float32) / 255
        correct += int((session.run(None, {name: x})[0].argmax(1) == labels[i:i + 500]).sum())
    return correct / len(labels)


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
    dataset = load_dataset(args.data)
    fidelity = validate_table(table, dataset, args.samples)
    print(f"table fidelity over {len(fidelity.samples)} sub-networks: Kendall tau {fidelity.kendall_tau:.3f}, "
          f"Spearman rho {fidelity.spearman_rho:.3f} (PONAS: tau 0.733 on 6 models; target tau >= 0.6)")
    for s in fidelity.samples:
        print(f"  {s['macs'] / 1e6:6.1f}M MACs  predicted {s['predicted']:+.4f}  test accuracy {100 * s['accuracy']:.2f}%  {s['arch']}")
    picks = np.linspace(0, len(fidelity.samples) - 1, args.exports).round().astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        for i in picks:
            sample = fidelity.samples[i]
            out = Path(tmp) / f"subnet{i}.onnx"
            export_subnet(table.space.name, sample["arch"], weights=args.table, data=args.data, output=out)
            ort_acc = onnx_accuracy(out, dataset.test_images, dataset.test_labels)
            print(f"export accuracy onnxruntime/torch: {100 * ort_acc:.2f}% vs {100 * sample['accuracy']:.2f}% "
                  f"(difference {100 * (ort_acc - sample['accuracy']):+.2f} points; target within 1) {sample['arch']}")


if __name__ == "__main__":
    main()
