"""A user's own data without the tool: EfficientNet-Lite0 alone, fine-tuned from ImageNet on the 3-class folder
benchmarks/own_data.py builds (cat, dog, bird x 500 training images; 3,000 test images). The trainer's meta stage
with Lite0's architecture as the meta architecture, then exported and measured on the test split in onnxruntime.
Prints one JSON line: the ceiling the supernet's own-data run is measured against (issue 18, point 6).

    python benchmarks/own_data_alone.py --folder /root/runs/own-data/three-classes --epochs 15 --batch 64 \\
        --lr 0.02 --input-size 96 --out /root/runs/own-pilot
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from specialize.space import LITE0_ARCH
from supernet.checkpoint import save_supernet_weights
from supernet.export import export_subnet
from supernet.train import Trainer, TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="the 3-class folder benchmarks/own_data.py made")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    out = args.out / f"e{args.epochs}-b{args.batch}-lr{args.lr}-r{args.input_size}"
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        space="efficientnet-lite0",
        data=args.folder,
        input_size=args.input_size,
        meta_arch=LITE0_ARCH,
        threads=args.threads,
        epochs=args.epochs,
        batch_size=args.batch,
        lr=args.lr,
        init="efficientnet-lite0",
        label_smoothing=0.1,
    )
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    trainer = Trainer(cfg, out, report=lambda e: print(e, flush=True) if e.get("event") == "epoch" else None)
    trainer.meta_stage(resume=True)
    train_s = time.time() - start
    save_supernet_weights(out / "weights.pt", trainer.net)
    result = export_subnet(
        trainer.space, LITE0_ARCH, out / "lite0.onnx", weights=str(out / "weights.pt"), data=args.folder
    )
    print(
        json.dumps(
            {
                "epochs": args.epochs,
                "batch": args.batch,
                "lr": args.lr,
                "res": args.input_size,
                "acc": result.measured_accuracy,
                "train_min": train_s / 60,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
