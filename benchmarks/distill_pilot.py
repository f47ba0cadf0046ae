"""Pilot: does in-place distillation from the pretrained architecture help PONAS fine-tuning from ImageNet?

Two runs of the real trainer on the same small subset, from `--init efficientnet-lite0`, identical but for
`distill` (0 and the value given); prints, side by side, the test accuracy of the meta network and of the
chosen sub-network, and the mean validation accuracy of the spread sub-networks (the table's fit data).

    python benchmarks/distill_pilot.py --data ../shared/data/cifar10-jpg.tar.gz --out /root/runs/pilot-distill
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from supernet.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--distill", type=float, default=0.5)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--sample-ratio", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for distill in (0.0, args.distill):
        cfg = TrainConfig(
            space="efficientnet-lite0",
            data=args.data,
            init="efficientnet-lite0",
            input_size=args.input_size,
            sample_ratio=args.sample_ratio,
            epochs=2,
            finetune_epochs=0.25,
            val_per_class=20,
            calib_images=100,
            spread_samples=8,
            lr=0.02,
            finetune_lr=0.005,
            label_smoothing=0.1,
            threads=args.threads,
            distill=distill,
        )
        start = time.time()
        table = train(cfg, args.out / f"distill-{distill:g}", resume=True)
        spread = np.mean([s["accuracy"] for s in table.results["spread"]])
        rows.append(
            f"distill {distill:4.2f}  meta test {100 * table.results['meta_test_accuracy']:.2f}%  "
            f"chosen test {100 * table.results['best_test_accuracy']:.2f}%  spread validation mean "
            f"{100 * spread:.2f}%  wall {time.time() - start:.0f} s"
        )
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
