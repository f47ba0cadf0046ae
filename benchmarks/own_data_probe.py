"""A user's own data, the cheapest transfer: a linear classifier on frozen ImageNet EfficientNet-Lite0 features.

The 3-class folder of benchmarks/own_data.py (cat, dog and bird from CIFAR-10's training split, 500 each; their
3,000 test images), read at --input-size with Pillow's bilinear filter (the dataset reader), through Lite0's
architecture with its ImageNet weights (the supernet's importer) up to the pooled 1280 head features; each
training image also flipped; a multinomial logistic regression (L-BFGS, features standardized) for each --l2.
Prints one line per penalty: the ceiling issue 18's point 6 is measured against, beside whole-network fine-tuning
(`benchmarks/own_data_alone.py`).

    python benchmarks/own_data_probe.py --folder /root/runs/own-data/three-classes --input-size 224 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specialize.space import LITE0_ARCH, get_space  # noqa: E402
from supernet.data import load_dataset, to_tensor  # noqa: E402
from supernet.elastic import Supernet  # noqa: E402
from supernet.pretrained import import_pretrained  # noqa: E402


def lite0_features(images: np.ndarray, resolution: int, flip: bool = False) -> np.ndarray:
    """[N, 1280] pooled head features of ImageNet Lite0 for uint8 [N, R, R, 3] images."""
    space = get_space("efficientnet-lite0").with_resolution(resolution)
    net = Supernet(space)
    import_pretrained(net, "efficientnet-lite0")
    model = net.extract(space.parse_arch(LITE0_ARCH)).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            x = to_tensor(images[i : i + 64])
            x = x.flip(-1) if flip else x
            out.append(model.head(model.blocks(model.stem(model.normalize(x)))).mean((2, 3)).numpy())
    return np.concatenate(out)


def probe(train: np.ndarray, labels: np.ndarray, l2: float) -> torch.nn.Linear:
    """Multinomial logistic regression with an L2 penalty on the weights, fitted by L-BFGS."""
    x, y = torch.from_numpy(train).float(), torch.from_numpy(labels).long()
    linear = torch.nn.Linear(x.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=300)

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = F.cross_entropy(linear(x), y) + l2 * linear.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return linear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="the 3-class folder benchmarks/own_data.py made")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.1, 0.3, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.folder, image_size=args.input_size)
    start = time.time()
    train = np.concatenate([lite0_features(data.train_images, args.input_size, flip) for flip in (False, True)])
    test = lite0_features(data.test_images, args.input_size)
    seconds = time.time() - start
    mean, std = train.mean(0), train.std(0) + 1e-6
    labels = np.concatenate([data.train_labels, data.train_labels])
    for l2 in args.l2:
        linear = probe((train - mean) / std, labels, l2)
        with torch.no_grad():
            predicted = linear(torch.from_numpy((test - mean) / std).float()).argmax(1).numpy()
        print(
            f"linear probe on frozen ImageNet Lite0 features at {args.input_size} px, l2 {l2}: test accuracy "
            f"{100 * np.mean(predicted == data.test_labels):.2f}% ({len(data.test_labels)} images; features of "
            f"{len(data.train_labels)} training images x 2 flips and the test split in {seconds / 60:.1f} min)"
        )


if __name__ == "__main__":
    main()
