"""Pilot: the supernet trained and measured with batch norm frozen at ImageNet's statistics (not a product path).

docs/training.md ("Your own images from ImageNet: what limits them") measured that the ImageNet network reads a
small folder far better under ImageNet's running statistics (82%) than under the data's batch statistics (50%) or
statistics re-estimated on it (75%), and that training under batch statistics ends near 67%. This pilot runs the
whole PONAS training (`supernet.train.train`, the command's own code) with every batch norm layer kept in eval mode
(running statistics used in the forward pass and never updated) and recalibration turned off, so every
sub-network is trained and measured under the statistics it was imported with: batch norm becomes a fixed affine
map, and what is measured is what a file exported without recalibration would compute. The classifier starts as
a probe (`--head-init probe`, fitted here under ImageNet's statistics since recalibration is off). Prints the run's
meta network and best sub-network test accuracies, beside the same command's normal run in docs/training.md.

    python benchmarks/frozen_bn_pilot.py --folder /root/runs/own-data/three-classes --out /root/runs/own3-frozen \\
        --epochs 4 --lr 0.002 --finetune-lr 0.002 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet.evaluate  # noqa: E402
import supernet.train  # noqa: E402
from supernet.train_config import TrainConfig  # noqa: E402


def freeze_batch_norm() -> None:
    """Every batch norm layer stays in eval mode whatever its parent is set to; recalibration does nothing."""
    _BatchNorm.train = lambda self, mode=True: nn.Module.train(self, False)

    def keep_statistics(model: nn.Module, batches) -> None:
        model.eval()

    supernet.evaluate.recalibrate_bn = keep_statistics
    supernet.train.recalibrate_bn = keep_statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--finetune-lr", type=float, default=0.002)
    parser.add_argument("--finetune-epochs", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    freeze_batch_norm()
    cfg = TrainConfig(
        space="efficientnet-lite0",
        data=args.folder,
        init="efficientnet-lite0",
        input_size=args.input_size,
        epochs=args.epochs,
        lr=args.lr,
        finetune_lr=args.finetune_lr,
        finetune_epochs=args.finetune_epochs,
        label_smoothing=0.1,
        threads=args.threads,
        head_init="probe",
    )
    start = time.time()
    table = supernet.train.train(cfg, args.out, resume=True, report=lambda e: print(json.dumps(e), flush=True))
    print(
        f"frozen batch norm, {args.epochs} meta epochs at lr {args.lr}, fine-tune lr {args.finetune_lr}, "
        f"{args.input_size} px: meta network test accuracy {100 * table.results['meta_test_accuracy']:.2f}%, "
        f"best sub-network {100 * table.results['best_test_accuracy']:.2f}% ({table.best_arch}); "
        f"{(time.time() - start) / 60:.1f} min at {args.threads} threads"
    )


if __name__ == "__main__":
    main()
