"""Pilot: how much does a short whole-network fine-tune of the search's pick add, with and without distillation?

The sub-networks of a PONAS table were never trained whole: the meta stage trains the largest, fine-tuning trains
each layer's candidates beside the largest. A user of NVIDIA ModelOpt prunes and then distils the pruned network
from the original; once-for-all offers fine-tuning a specialized sub-network. This starts from a finished run's
weights (`--checkpoint`, RUN/checkpoint.pt), trains `--arch` alone for `--epochs` of the run's own batches at the
run's fine-tuning learning rate (cosine), once plainly and once with `--distill` of the largest architecture's soft
labels (the meta network), and prints the test accuracy (batch norm recalibrated, as exports are) before and after
each, with the wall time.

    python benchmarks/pick_finetune.py --checkpoint /root/runs/lite0-cifar10-96/checkpoint.pt \\
        --arch k5e6,k3e6,... --epochs 0.5 --distill 0.5 --threads 1 [--lr 0.01] [--distilled-only]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from supernet.checkpoint import read_checkpoint
from supernet.train import Trainer
from supernet.train_config import TrainConfig


def finetune(trainer: Trainer, arch: list, steps: int, lr: float, warmup: float = 0.0) -> None:
    """`arch` alone for `steps` batches (SGD, cosine from `lr`, the first `warmup` of the steps ramping up, gradients
    clipped as the run's `clip_grad` says); with the run's `distill` > 0 the loss mixes in the largest
    architecture's soft labels on the same batch (the trainer's own loss)."""
    teacher = list(trainer.trained_space.largest_arch().candidates)
    opt = trainer.optimizer(lr)
    trainer.net.train(not trainer.eval_mode)
    ramp = max(1, round(warmup * steps))
    batches = (batch for epoch in range(steps) for batch in trainer.batches(30, epoch))
    for step, (x, y) in zip(range(steps), batches):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / ramp) * 0.5 * (1 + math.cos(math.pi * step / steps))
        soft = None
        if trainer.cfg.distill:
            with torch.no_grad():
                soft = F.softmax(trainer.net(x, teacher), dim=1)
        logits = trainer.model(x, [], arch[:1], arch[1:])[0]
        loss = trainer.loss(logits, y, soft)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        trainer.step(opt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--epochs", type=float, default=0.5)
    parser.add_argument("--distill", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=None, help="default: the run's fine-tuning learning rate")
    parser.add_argument("--warmup", type=float, default=0.0, help="fraction of the steps ramping the rate up")
    parser.add_argument("--clip-grad", type=float, default=0.0, help="clip gradients to this norm (0: off)")
    parser.add_argument("--all-images", action="store_true", help="train on every training image, held-out ones too")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the run's")
    parser.add_argument("--eval-mode", action="store_true", help="train with every batch norm frozen, no dropout")
    parser.add_argument("--label-smoothing", type=float, default=None, help="default: the run's")
    parser.add_argument("--distilled-only", action="store_true", help="skip the plain fine-tune")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    payload, _ = read_checkpoint(args.checkpoint)
    known = {f.name for f in fields(TrainConfig)}
    cfg = replace(TrainConfig(**{k: v for k, v in payload["config"].items() if k in known}), threads=args.threads)
    cfg = replace(cfg, clip_grad=args.clip_grad, batch_size=args.batch_size or cfg.batch_size)
    if args.label_smoothing is not None:
        cfg = replace(cfg, label_smoothing=args.label_smoothing)
    torch.set_num_threads(args.threads)
    lines = []
    for distill in (args.distill,) if args.distilled_only else (0.0, args.distill):
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(replace(cfg, distill=distill), tmp)
            trainer.net.load_state_dict(payload["net"])
            trainer.eval_mode = args.eval_mode
            if args.all_images:
                trainer.train_idx = np.arange(len(trainer.data.train_labels))
            arch = list(trainer.trained_space.parse_arch(args.arch).candidates)
            steps = max(1, round(args.epochs * trainer.steps_per_epoch()))
            before = trainer.test_accuracy(arch)
            start = time.time()
            finetune(trainer, arch, steps, args.lr or trainer.cfg.finetune_lr, args.warmup)
            wall = time.time() - start
            after = trainer.test_accuracy(arch)
        lines.append(
            f"distill {distill:4.2f}, {args.epochs:g} epoch ({steps} steps): test accuracy {100 * before:.2f}% -> "
            f"{100 * after:.2f}% ({100 * (after - before):+.2f} points, {wall / 60:.1f} min at {args.threads} thread)"
        )
        print(lines[-1], flush=True)
    print(f"pick {args.arch}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
