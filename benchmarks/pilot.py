"""Training-recipe pilot: meta-network (largest block everywhere) training on a subset, to choose weight decay,
label smoothing and learning rate by measurement before a long run.

    python benchmarks/pilot.py --data ../shared/data/cifar10-jpg.tar.gz --name B --weight-decay 5e-4 \
        --label-smoothing 0.1 --epochs 5 --images 12800

Prints one JSON line per epoch: test accuracy on 2,000 test images, last loss, wall seconds. The README's
recipe comparison (A: wd 4e-5, no smoothing; B: wd 5e-4, smoothing 0.1; 12,800 images, 5 epochs, lr 0.1,
one thread each, side by side) came from two runs of this script.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--name", default="pilot")
    parser.add_argument("--weight-decay", type=float, default=4e-5)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--space", default="cifar10")
    args = parser.parse_args()

    from specialize.space import get_space
    from supernet.data import augment, load_dataset, to_tensor
    from supernet.elastic import Supernet
    from supernet.evaluate import top1_accuracy

    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = get_space(args.space)
    data = load_dataset(args.data, image_size=space.resolution)
    idx = np.random.default_rng(0).choice(len(data.train_labels), args.images, replace=False)
    net = Supernet(space).to(memory_format=torch.channels_last)
    largest = [space.largest] * space.num_layers
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay, nesterov=True)
    batch, steps_per_epoch = 128, args.images // 128
    total, step, g, start = args.epochs * steps_per_epoch, 0, torch.Generator().manual_seed(1), time.time()
    test_x, test_y = to_tensor(data.test_images[:2000]), torch.from_numpy(data.test_labels[:2000])

    class Fixed(torch.nn.Module):  # the largest architecture as a plain module, for the shared evaluator
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x, largest)

    for epoch in range(args.epochs):
        net.train()
        order = idx[torch.randperm(len(idx), generator=g).numpy()]
        for s in range(steps_per_epoch):
            b = order[s * batch : (s + 1) * batch]
            x = augment(to_tensor(data.train_images[b]), g).contiguous(memory_format=torch.channels_last)
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(
                net(x, largest), torch.from_numpy(data.train_labels[b]), label_smoothing=args.label_smoothing
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        accuracy = top1_accuracy(Fixed(), test_x, test_y)  # eval mode: running BN statistics
        print(
            json.dumps(
                {
                    "pilot": args.name,
                    "epoch": epoch + 1,
                    "test_acc": accuracy,
                    "loss": round(loss.item(), 4),
                    "wall": round(time.time() - start),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
