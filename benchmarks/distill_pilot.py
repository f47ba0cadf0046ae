"""Pilot: does in-place distillation help PONAS's fine-tuning stage from a pretrained, meta-trained supernet?

Starts twice from the same checkpoint taken right after a run's meta stage (`--checkpoint`, e.g. a copy of
RUN/checkpoint.pt when log.jsonl says meta_done), fine-tunes the first layer exactly as the run would (its
settings, its batches), once without distillation and once with `--distill`, then evaluates every candidate of
that layer on the first `--val-images` validation images after batch-norm recalibration. Prints, side by side,
the mean and best candidate accuracy and the wall time of each.

    python benchmarks/distill_pilot.py --checkpoint /root/runs/meta-done-checkpoint.pt --distill 0.5 --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from supernet.checkpoint import read_checkpoint
from supernet.train import Trainer
from supernet.train_config import TrainConfig


def one_setting(cfg: TrainConfig, checkpoint: Path, val_images: int) -> tuple[list[float], float]:
    payload, state = read_checkpoint(checkpoint)
    if state["stage"] != "finetune" or state["layer"] != 0:
        raise SystemExit(f"{checkpoint} is not a checkpoint taken right after the meta stage")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp)
        trainer.net.load_state_dict(payload["net"])  # the run's weights (its settings may not change there)
        trainer.val_x, trainer.val_y = trainer.val_x[:val_images], trainer.val_y[:val_images]
        start = time.time()
        trainer.finetune_layer(trainer.optimizer(cfg.finetune_lr), 0, [])
        row = trainer.evaluate_layer(0, [])
        return [row[i] for i in trainer.space.allowed_indices(0)], time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--distill", type=float, default=0.5)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    payload, _ = read_checkpoint(args.checkpoint)
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in payload["config"].items() if k in known})
    cfg = replace(cfg, threads=args.threads)
    torch.set_num_threads(args.threads)
    lines = []
    for distill in (0.0, args.distill):
        accuracies, wall = one_setting(replace(cfg, distill=distill), args.checkpoint, args.val_images)
        lines.append(
            f"distill {distill:4.2f}: layer 1's {len(accuracies)} candidates on {args.val_images} validation "
            f"images: mean {100 * np.mean(accuracies):.2f}%, best {100 * max(accuracies):.2f}%, "
            f"worst {100 * min(accuracies):.2f}%  ({wall / 60:.1f} min)"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
