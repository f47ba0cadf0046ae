"""Was the baseline's learning rate a fair one? Lite0 alone with the table's recipe at other peak learning rates.

`benchmarks/baseline.py` trains the baseline (Lite0's architecture alone, from the ImageNet file) with the table's
meta-stage recipe as it stands: 4 epochs, lr 0.02, batches of 128, label smoothing 0.1. The tool's pick got its
learning rate from a sweep (docs/training.md, "It was the learning rate"); the baseline's was never swept. A side by
side is only fair if the baseline is as well tuned, so this trains the same baseline, through the same function
(`baseline.train_baseline`: same recipe, images, export and measurement), at each --lrs, and prints one line each.

    python benchmarks/baseline_lr.py --table specialize/defaults/lite0-cifar10-96.table.json \\
        --data ../shared/data/cifar10-jpg.tar.gz --resolution 80 --lrs 0.01 --out /root/runs/baseline-lr --threads 1

Each rate trains in its own folder under --out (checkpointed: the same command resumes it). `--epochs N` trains longer
than the table's recipe (its own folder), to see whether more of Lite0 alone closes the gap to the tool.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import RECIPE, baseline_dir, train_baseline  # noqa: E402

from specialize.table import load_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="the table whose meta-stage recipe the baseline takes")
    parser.add_argument("--data", required=True)
    parser.add_argument("--resolution", type=int, default=80)
    parser.add_argument("--lrs", type=float, nargs="+", required=True, help="peak learning rates to train at")
    parser.add_argument(
        "--epochs", type=int, default=None, help="train this many epochs instead of the table's (its own folder)"
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    settings = load_table(args.table).provenance["settings"]
    recipe = {key: settings[key] for key in RECIPE if key in settings}
    for lr in args.lrs:
        start = time.time()
        at_lr = {**recipe, "lr": lr, **({} if args.epochs is None else {"epochs": args.epochs})}
        result, seconds = train_baseline(
            at_lr, args.data, args.resolution, baseline_dir(args.out, args.resolution, lr, args.epochs), args.threads
        )
        shown = ", ".join(f"{key} {value}" for key, value in at_lr.items() if key != "init")
        print(
            f"baseline Lite0 @{args.resolution}px from ImageNet, the table's recipe at lr {lr:g} ({shown}): test "
            f"accuracy {100 * result.measured_accuracy:.2f}% ({result.measured_on}); MACs {result.macs / 1e6:.1f}M; "
            f"training {seconds / 60:.1f} min, in all {(time.time() - start) / 60:.1f} min at {args.threads} threads",
            flush=True,
        )


if __name__ == "__main__":
    main()
