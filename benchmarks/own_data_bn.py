"""Whose batch norm statistics? The ImageNet Lite0 network on a small folder, under three normalizations.

A linear probe (supernet/probe.py) on ImageNet Lite0's pooled features of half the folder's training images, then
the folder's first --test-images test images classified (torch, --input-size, Pillow bilinear as the dataset reader):
1. under ImageNet's running statistics (what LP-FT with frozen statistics keeps);
2. the same probe with batch norm on each batch's own statistics (what training computes), torch's epsilon 1e-5
   and TensorFlow's 1e-3;
3. a probe fitted under statistics re-estimated on those training images (what training and every export's
   recalibration settle on; `specialize train --head-init probe` fits this one).
Prints one line per case (docs/training.md, "Your own images from ImageNet: what limits them"):

    python benchmarks/own_data_bn.py --folder /root/runs/own-data/three-classes --input-size 96
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specialize.space import LITE0_ARCH, get_space  # noqa: E402
from supernet.bn import recalibrate_bn  # noqa: E402
from supernet.data import load_dataset, to_tensor  # noqa: E402
from supernet.elastic import Supernet  # noqa: E402
from supernet.pretrained import TF_BN_EPS, import_pretrained  # noqa: E402
from supernet.probe import fit_probe, pooled_features  # noqa: E402
from supernet.static import StaticNet  # noqa: E402


def accuracy(net: StaticNet, x: torch.Tensor, y: torch.Tensor, batch_statistics: bool) -> float:
    """Top-1 over `x` in batches of 64, batch norm on running or on each batch's statistics (running ones kept)."""
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train(batch_statistics)
    with torch.no_grad():
        predicted = torch.cat([net(b).argmax(1) for b in x.split(64)])
    net.load_state_dict(saved)
    return float((predicted == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="the 3-class folder benchmarks/own_data.py made")
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--test-images", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = args.input_size
    data = load_dataset(args.folder, image_size=size)
    space = get_space("efficientnet-lite0").with_classes(data.classes).with_resolution(size)
    supernet = Supernet(space)
    import_pretrained(supernet, "efficientnet-lite0")
    net = supernet.extract(space.parse_arch(LITE0_ARCH)).eval()
    train = np.arange(0, len(data.train_labels), 2)
    images, labels = data.train_images[train], torch.from_numpy(data.train_labels[train]).long()
    x = to_tensor(data.test_images[: args.test_images], size)
    y = torch.from_numpy(data.test_labels[: args.test_images]).long()
    where = f"{len(y)} test images at {size} px, probe fitted on {len(train)} training images"

    net.classifier.load_state_dict(fit_probe(pooled_features(net.features, images, size), labels, 3).state_dict())
    print(f"probe under ImageNet's running statistics: {100 * accuracy(net, x, y, False):.2f}% ({where})")
    print(f"the same, batch norm on batch statistics (eps 1e-5): {100 * accuracy(net, x, y, True):.2f}%")
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps, m.running_var = TF_BN_EPS, m.running_var - (TF_BN_EPS - 1e-5)  # the same function in eval mode
    print(f"the same, batch norm on batch statistics (eps {TF_BN_EPS:g}): {100 * accuracy(net, x, y, True):.2f}%")

    net = supernet.extract(space.parse_arch(LITE0_ARCH))
    recalibrate_bn(net, [to_tensor(images[i : i + 100], size) for i in range(0, len(images), 100)])
    net.classifier.load_state_dict(fit_probe(pooled_features(net.features, images, size), labels, 3).state_dict())
    print(f"probe under statistics re-estimated on those training images: {100 * accuracy(net, x, y, False):.2f}%")


if __name__ == "__main__":
    main()
