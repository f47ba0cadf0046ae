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

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet.elastic  # noqa: E402
import supernet.evaluate  # noqa: E402
import supernet.train  # noqa: E402
from supernet.train_config import TrainConfig  # noqa: E402


ADAPTED = " (last block and head adapted)"


def adapted_norms(model: nn.Module) -> list[_BatchNorm]:
    """The batch norm layers of the last searchable block and the head (supernet or extracted network)."""
    return [m for part in (model.blocks[-1], model.head) for m in part.modules() if isinstance(m, _BatchNorm)]


def freeze_batch_norm(adapt_last: bool) -> None:
    """Every batch norm layer stays in eval mode whatever its parent is set to, and recalibration does nothing;
    with `adapt_last`, the last block's and the head's batch norm train on batch statistics and are recalibrated
    as usual (their inputs come from candidates of different widths, which one frozen set of statistics cannot
    fit)."""
    _BatchNorm.train = lambda self, mode=True: nn.Module.train(self, mode and getattr(self, "adapted", False))
    if adapt_last:
        build = supernet.elastic.Supernet.__init__

        def marking_init(self, space) -> None:
            build(self, space)
            for m in adapted_norms(self):
                m.adapted = True

        supernet.elastic.Supernet.__init__ = marking_init

    def recalibrate_adapted(model: nn.Module, batches) -> None:
        norms = adapted_norms(model) if adapt_last else []
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            nn.Module.train(m, True)
        for x in batches if norms else ():
            with torch.no_grad():
                model(x)
        for m in norms:
            m.momentum = 0.1
        model.eval()

    supernet.evaluate.recalibrate_bn = recalibrate_adapted
    supernet.train.recalibrate_bn = recalibrate_adapted


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
    parser.add_argument(
        "--adapt-last", action="store_true", help="the last block's and the head's batch norm as usual (not frozen)"
    )
    args = parser.parse_args()
    freeze_batch_norm(args.adapt_last)
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
        f"frozen batch norm{ADAPTED if args.adapt_last else ''}, {args.epochs} meta epochs at lr {args.lr}, "
        f"fine-tune lr {args.finetune_lr}, "
        f"{args.input_size} px: meta network test accuracy {100 * table.results['meta_test_accuracy']:.2f}%, "
        f"best sub-network {100 * table.results['best_test_accuracy']:.2f}% ({table.best_arch}); "
        f"{(time.time() - start) / 60:.1f} min at {args.threads} threads"
    )


if __name__ == "__main__":
    main()
