"""A user's own data: 3 classes, 500 training images each, from an ImageNet start and from scratch, side by side.

Builds the folder a user would have (cat, dog and bird from CIFAR-10's training split, 500 each; their whole
test split) under --work, then runs the README's own-data commands through the library: `train --init
efficientnet-lite0 --batch-norm frozen --head-init probe` at --input-size with --epochs meta epochs (README's: 128
px, none), the same with batch statistics (at ten times the learning rates, the pretrained recipe's), and the same
data from scratch on the `cifar10` plan at 32x32 (--scratch-epochs meta epochs). Each table's best sub-network is
exported (with `--pick-finetune-epochs N`, after N epochs of the pick alone, as README's export line does) and
measured in onnxruntime on the test split. Prints one line per run:

    python benchmarks/own_data.py --data ../shared/data/cifar10-jpg.tar.gz --work /root/runs/own-data --threads 2
"""

from __future__ import annotations

import argparse
import tarfile
import time
from pathlib import Path

from specialize.api import offline

CLASSES = ("bird", "cat", "dog")


def make_folder(archive: Path, root: Path, per_class: int) -> Path:
    """ROOT/train/<class>/ with the first `per_class` images of each class, ROOT/test/<class>/ with all of them."""
    if (root / "test").is_dir():
        return root
    taken: dict[str, int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts  # cifar10/<split>/<class>/<n>.jpg
            if not member.isfile() or len(parts) != 4 or parts[2] not in CLASSES:
                continue
            key = f"{parts[1]}/{parts[2]}"
            if parts[1] == "train" and taken.get(key, 0) >= per_class:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = root / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    return root


def run(name: str, cfg, out: Path, pick_finetune_epochs: float = 0.0) -> str:
    start = time.time()
    table = offline.train(cfg, out, resume=True, report=lambda event: None, picks=offline.PICKS)
    wall = time.time() - start
    result = offline.export(
        table.space.name,
        table.best_arch,
        out / "best.onnx",
        weights=str(out / "table.json"),
        data=Path(cfg.data),
        fmt="onnx",
        precision="fp32",
        recalibrate=True,
        pick_finetune_epochs=pick_finetune_epochs,
    )
    tuned = result.finetuned
    pick = (
        f" (the pick as trained {100 * tuned['accuracy_before']:.2f}%, then {tuned['epochs']:g} epochs alone in "
        f"{tuned['minutes']:.1f} min: export --pick-finetune-epochs)"
        if tuned
        else ""
    )
    return (
        f"{name:44s} test accuracy {100 * result.measured_accuracy:6.2f}% (exported ONNX, onnxruntime){pick}  "
        f"MACs {result.macs / 1e6:6.1f}M  training wall {wall / 60:5.1f} min  best {table.best_arch}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the CIFAR-10 .tar.gz")
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--input-size", type=int, default=128, help="of the runs from ImageNet")
    parser.add_argument(
        "--epochs", type=int, default=0, help="meta epochs from ImageNet (0: the probe, then the layers)"
    )
    parser.add_argument("--scratch-epochs", type=int, default=4, help="meta epochs from scratch")
    parser.add_argument("--finetune-epochs", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=0.0, help="train --warmup (the runs from ImageNet)")
    parser.add_argument("--clip-grad", type=float, default=0.0, help="train --clip-grad (the runs from ImageNet)")
    parser.add_argument("--val-per-class", type=int, default=None, help="train --val-per-class (default: train's)")
    parser.add_argument(
        "--fit-images", type=int, default=offline.train_config_type().fit_images, help="train --fit-images"
    )
    parser.add_argument(
        "--pick-finetune-epochs", type=float, default=0.0, help="export --pick-finetune-epochs (0: the pick as trained)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="frozen,pretrained,scratch", help="which of them, comma-separated")
    args = parser.parse_args()
    folder = make_folder(args.data, args.work / "three-classes", args.per_class)
    config = offline.train_config_type()
    common = dict(
        data=str(folder),
        batch_size=64,
        weight_decay=4e-5,
        label_smoothing=0.1,
        finetune_epochs=args.finetune_epochs,
        val_per_class=args.val_per_class,
        fit_images=args.fit_images,
        threads=args.threads,
        seed=0,
    )
    pretrained = dict(
        space="efficientnet-lite0",
        init="efficientnet-lite0",
        input_size=args.input_size,
        epochs=args.epochs,
        warmup=args.warmup,
        clip_grad=args.clip_grad,
        **common,
    )
    at = f"@{args.input_size}, {args.epochs} meta epochs" + (
        f", warm-up {args.warmup:g}, clip {args.clip_grad:g}" if args.warmup or args.clip_grad else ""
    )
    runs = {
        "pretrained": (
            f"--init efficientnet-lite0 {at}",
            config(lr=0.02, finetune_lr=0.005, **pretrained),
        ),
        "frozen": (
            f"--init ... --batch-norm frozen {at}",
            config(lr=0.002, finetune_lr=0.0005, batch_norm="frozen", head_init="probe", **pretrained),
        ),
        "scratch": (
            f"from scratch (cifar10 @32, {args.scratch_epochs} meta epochs)",
            config(space="cifar10", lr=0.1, finetune_lr=0.02, epochs=args.scratch_epochs, **common),
        ),
    }
    lines = [
        run(runs[name][0], runs[name][1], args.work / name, args.pick_finetune_epochs) for name in args.runs.split(",")
    ]
    print(
        f"{len(CLASSES)} classes x {args.per_class} training images ({', '.join(CLASSES)}), "
        f"{args.finetune_epochs:g} fine-tuning epochs per layer, {args.threads} thread(s):"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
