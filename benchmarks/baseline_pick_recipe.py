"""Lite0 alone trained with the pick fine-tune's recipe: the baseline side when the tool's pick gets that recipe.

`benchmarks/baseline.py` trains Lite0 alone with the table's meta-stage recipe (4 epochs, lr 0.02, batches of 128,
label smoothing 0.1) and the tool's pick with `--pick-finetune-epochs` (LP-FT: probe first, warm-up, clipping,
batches of 32, the default learning rate for batch statistics). When the pick's recipe changes, the baseline must
be trained with it too, or the side by side compares recipes, not networks. This exports Lite0's architecture at
each --resolutions from the ImageNet file through the product's own path (`supernet.export.export_subnet` with
`finetune`: the same code, recipe and images as the tool's pick, the ImageNet classifier replaced by a probe fitted
on the network's own features), and prints its test accuracy and training minutes. Latency at each resolution is
the one `baseline.py` measured (Lite0 as deployed): the budgets are Lite0's own latencies.

    python benchmarks/baseline_pick_recipe.py --data ../shared/data/cifar10-jpg.tar.gz --resolutions 80 \
        --epochs 4 --out /root/runs/baseline-pick-recipe --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from specialize.api.offline import PICK_FINETUNE_LR_HELP  # noqa: E402
from specialize.space import CIFAR10_CLASSES, LITE0_ARCH, get_space  # noqa: E402
from supernet.export import export_subnet  # noqa: E402
from supernet.train_config import FinetuneRecipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[80])
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--lr", type=float, default=None, help=PICK_FINETUNE_LR_HELP)
    parser.add_argument("--out", required=True, type=Path, help="the files (and their fine-tune checkpoints)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for resolution in args.resolutions:
        space = get_space("efficientnet-lite0").with_classes(CIFAR10_CLASSES).with_resolution(resolution)
        start = time.time()
        result = export_subnet(
            space,
            LITE0_ARCH,
            args.out / f"lite0-{resolution}px.pick-recipe.onnx",
            weights="efficientnet-lite0",
            data=args.data,
            finetune=FinetuneRecipe(epochs=args.epochs, lr=args.lr).check(),
        )
        done = result.finetuned
        print(
            f"baseline Lite0 @{resolution}px from ImageNet, the pick's fine-tune recipe ({args.epochs:g} epochs at lr "
            f"{done['lr']:g}, {done['steps']} steps of {done['batch_size']}, probe first, batch norm "
            f"{done['batch_norm']}): test accuracy {100 * result.measured_accuracy:.2f}% "
            f"({result.measured_on}); MACs {result.macs / 1e6:.1f}M; fine-tune {done['minutes']:.1f} min, "
            f"export in all {(time.time() - start) / 60:.1f} min at {args.threads} threads",
            flush=True,
        )


if __name__ == "__main__":
    main()
