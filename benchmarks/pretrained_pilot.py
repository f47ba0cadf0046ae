"""Pilot for the pretrained start: which training resolution, measured.

Fine-tunes the imported EfficientNet-Lite0 supernet (largest candidate everywhere, as PONAS's meta stage does) for
a fixed number of steps at one resolution, then prints test accuracy (after batch-norm recalibration) and the
measured training time per epoch on this machine. Run once per resolution (one thread each, in parallel):

    python benchmarks/pretrained_pilot.py --data ../shared/data/cifar10-jpg.tar.gz --resolution 64 --threads 1

`--batch-norm batch,frozen --lr 0.05,0.01` runs every pair of those in turn (same seed, batches and test images) and
prints one line each, side by side: batch statistics against `--batch-norm frozen` (supernet/bn.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from dataclasses import replace

from specialize.space import get_space
from supernet.data import augment, load_dataset, to_tensor
from supernet.elastic import Supernet
from supernet.evaluate import subnet_accuracy
from supernet.pretrained import import_pretrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", default="0.05", help="learning rates, comma-separated")
    parser.add_argument("--batch-norm", default="batch", help="batch, frozen or both, comma-separated")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data, image_size=args.resolution)
    for batch_norm in args.batch_norm.split(","):
        for lr in map(float, args.lr.split(",")):
            print(run(args, data, batch_norm, lr), flush=True)


def run(args: argparse.Namespace, data, batch_norm: str, lr: float) -> str:
    torch.manual_seed(0)
    space = get_space("efficientnet-lite0").with_classes(data.classes).with_resolution(args.resolution)
    net = Supernet(replace(space, batch_norm=batch_norm)).to(memory_format=torch.channels_last)
    import_pretrained(net, "efficientnet-lite0")
    arch = net.space.largest_arch()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    net.train()
    start = time.process_time()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        idx = rng.choice(len(data.train_labels), args.batch_size, replace=False)
        x = augment(to_tensor(data.train_images[idx]), gen, max(4, args.resolution // 8))
        loss = F.cross_entropy(
            net(x.contiguous(memory_format=torch.channels_last), arch),
            torch.from_numpy(data.train_labels[idx]),
            label_smoothing=0.1,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    cpu = time.process_time() - start
    test = rng.choice(len(data.test_labels), min(args.test_images, len(data.test_labels)), replace=False)
    calib = [to_tensor(data.train_images[rng.choice(len(data.train_labels), 100, replace=False)]) for _ in range(3)]
    acc = subnet_accuracy(net, arch, to_tensor(data.test_images[test]), torch.from_numpy(data.test_labels[test]), calib)
    per_epoch = cpu / (args.steps * args.batch_size) * len(data.train_labels) / 60
    return (
        f"resolution {args.resolution:4d}  batch norm {batch_norm:6s}  lr {lr:g}  steps {args.steps} x "
        f"{args.batch_size}  test accuracy {100 * acc:.2f}% ({len(test)} images)  training cpu {cpu:.0f} s  = "
        f"{per_epoch:.1f} min per epoch at {args.threads} thread(s)"
    )


if __name__ == "__main__":
    main()
