"""A user's own data, the cheapest transfer: a linear classifier on frozen ImageNet EfficientNet-Lite features.

The 3-class folder of benchmarks/own_data.py (cat, dog and bird from CIFAR-10's training split, 500 each; their
3,000 test images), read at --input-size with Pillow's bilinear filter (the dataset reader), through --variant's
architecture (default efficientnet-lite0; -lite1, -lite2) with its ImageNet weights (the supernet's importer) up to
the pooled 1280 head features; each training image also flipped;
a multinomial logistic regression (L-BFGS, features standardized) for each --l2.
Prints one line per penalty: the ceiling issue 18's point 6 is measured against, beside whole-network fine-tuning
(`benchmarks/own_data_alone.py`).

`--finetune-epochs N` then fine-tunes the whole network from the probe (LP-FT: the classifier starts as the probe
fitted with `--finetune-l2`, so the first steps do not push random-head gradients into the pretrained body): SGD
with momentum, cosine from `--finetune-lr`, batch norm statistics frozen as ImageNet left them, training's random crops
(`supernet.data.augment`) and flips. One more line: its test accuracy (torch, the same images) and CPU minutes.

    python benchmarks/own_data_probe.py --folder /root/runs/own-data/three-classes --input-size 224 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specialize.space import LITE_VARIANTS, get_space, lite_architecture  # noqa: E402
from supernet.data import load_dataset, to_tensor  # noqa: E402
from supernet.elastic import Supernet  # noqa: E402
from supernet.pretrained import import_pretrained  # noqa: E402
from supernet.finetune import finetune  # noqa: E402
from supernet.probe import fit_probe  # noqa: E402
from supernet.train_config import FinetuneRecipe  # noqa: E402


class LiteFeatures(torch.nn.Module):
    """An ImageNet Lite variant up to its pooled 1280 head features, then `classifier` (None: the features)."""

    def __init__(self, variant: str, resolution: int) -> None:
        super().__init__()
        # frozen: every batch norm a FrozenBatchNorm2d but the last layer's and the head's, which fine-tuning's eval
        # mode freezes too
        space = replace(get_space(variant).with_resolution(resolution), batch_norm="frozen")
        net = Supernet(space)
        import_pretrained(net, variant)
        self.body = net.extract(space.parse_arch(lite_architecture(variant)))
        self.classifier: torch.nn.Linear | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body.features(x)
        return features if self.classifier is None else self.classifier(features)


def lite_features(model: LiteFeatures, images: np.ndarray, flip: bool = False) -> np.ndarray:
    """[N, 1280] pooled head features for uint8 [N, R, R, 3] images."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            x = to_tensor(images[i : i + 64])
            out.append(model.eval()(x.flip(-1) if flip else x).numpy())
    return np.concatenate(out)


def finetune_lpft(model: LiteFeatures, images: np.ndarray, labels: np.ndarray, epochs: float, lr: float) -> None:
    """Whole-network SGD from the probe with the recipe `export --pick-finetune-epochs` uses (`supernet.finetune`: a
    tenth of the steps warming up then cosine, gradients clipped to norm 1, batch 32, training's crops and flips);
    the body's batch norm is frozen (ImageNet's statistics, eval mode). Without the warm-up and clipping, lr 0.002 at
    224 px collapsed to chance within 20 steps (loss ln 3), where it had trained at 96 px."""
    report = finetune(model, images, labels, FinetuneRecipe(epochs=epochs, lr=lr, probe=False))
    print(f"  {report.steps} steps, last loss {report.final_loss:.3f}, batch norm {report.batch_norm}", flush=True)


def lite_name(variant: str) -> str:
    """`efficientnet-lite2` as the lines print it: Lite2."""
    return "Lite" + variant.removeprefix("efficientnet-lite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="the 3-class folder benchmarks/own_data.py made")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--variant", default="efficientnet-lite0", choices=list(LITE_VARIANTS))
    parser.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.1, 0.3, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=float, default=0.0, help="then LP-FT for this many epochs")
    parser.add_argument("--finetune-lr", type=float, default=0.002)
    parser.add_argument("--finetune-l2", type=float, default=0.1, help="the probe the fine-tune starts from")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.folder, image_size=args.input_size)
    start = time.time()
    model = LiteFeatures(args.variant, args.input_size)
    train = np.concatenate([lite_features(model, data.train_images, flip) for flip in (False, True)])
    test = lite_features(model, data.test_images)
    seconds = time.time() - start
    features = torch.from_numpy(train).float()
    labels = torch.from_numpy(np.concatenate([data.train_labels, data.train_labels])).long()
    classes = int(labels.max()) + 1
    for l2 in args.l2:
        with torch.no_grad():
            predicted = fit_probe(features, labels, classes, l2)(torch.from_numpy(test).float()).argmax(1).numpy()
        print(
            f"linear probe on frozen ImageNet {lite_name(args.variant)} features at {args.input_size} px, l2 {l2}: "
            "test accuracy "
            f"{100 * np.mean(predicted == data.test_labels):.2f}% ({len(data.test_labels)} images; features of "
            f"{len(data.train_labels)} training images x 2 flips and the test split in {seconds / 60:.1f} min)"
        )
    if args.finetune_epochs > 0:
        start = time.time()
        model.classifier = fit_probe(features, labels, classes, args.finetune_l2)
        finetune_lpft(model, data.train_images, data.train_labels, args.finetune_epochs, args.finetune_lr)
        minutes = (time.time() - start) / 60
        predicted = lite_features(model, data.test_images).argmax(1)
        print(
            f"{lite_name(args.variant)} LP-FT from the l2 {args.finetune_l2} probe, {args.finetune_epochs} epochs "
            f"at lr {args.finetune_lr} "
            f"(batch 32, warm-up, clipped, batch norm frozen, training's crops and flips), {args.input_size} px: "
            "test accuracy "
            f"{100 * np.mean(predicted == data.test_labels):.2f}% ({len(data.test_labels)} images; "
            f"{minutes:.1f} min at {args.threads} threads after the probe's features)"
        )


if __name__ == "__main__":
    main()
