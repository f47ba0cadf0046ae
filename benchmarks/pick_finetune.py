"""What `--pick-finetune-epochs` adds: the search's pick trained alone before export, measured before and after.

A PONAS table's sub-networks are never trained whole (the meta stage trains the largest, the fine-tuning stage each
layer's candidates beside it), and the pick never sees the images the table held out. This exports `--arch` from a
run's table through the product's own path (`specialize export --pick-finetune-epochs`: recalibrate, measure the ONNX
file on the test split, train the pick alone on every training image, recalibrate, export, measure again) once per
`--epochs` value, and prints before and after side by side with the wall time.

    python benchmarks/pick_finetune.py --table RUN/table.json --arch k3e6,... --data ROOT --epochs 2 8 --threads 2

With --out DIR the files stay there (`pick-<epochs>ep.onnx`) to be read back by hand, and a killed fine-tune resumes
from its checkpoint beside them when the same command runs again; without it they go to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from specialize.api.offline import PICK_FINETUNE_LR_HELP  # noqa: E402
from specialize.table import load_table  # noqa: E402
from supernet.export import export_subnet  # noqa: E402
from supernet.train_config import FinetuneRecipe  # noqa: E402


@contextlib.contextmanager
def kept_or_temporary(out: Path | None):
    """`out` (made if missing) where the files are to be kept, else a temporary folder removed afterwards."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="a run's table.json (its weights and calibration beside it)")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--data", default=None, help="default: the table's training data, where it exists here")
    parser.add_argument("--epochs", type=float, nargs="+", default=[8.0])
    parser.add_argument("--lr", type=float, default=None, help=PICK_FINETUNE_LR_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--no-probe", action="store_true", help="keep the table's classifier (no LP before FT)")
    parser.add_argument("--distill", type=float, default=0.0, help="share of the loss from the largest network")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="of the cross entropy on the labels")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = []
    for epochs in args.epochs:
        with kept_or_temporary(args.out) as folder:
            start = time.time()
            result = export_subnet(
                load_table(args.table).space.name,
                args.arch,
                folder / f"pick-{epochs:g}ep.onnx",
                weights=args.table,
                data=args.data,
                finetune=FinetuneRecipe(
                    epochs=epochs,
                    lr=args.lr,
                    probe=not args.no_probe,
                    distill=args.distill,
                    label_smoothing=args.label_smoothing,
                ).check(),
            )
        done = result.finetuned
        before, after = 100 * done["accuracy_before"], 100 * result.measured_accuracy
        probe = (
            ("probe refitted first, " if done["probe"] else "")
            + (f"distill {args.distill:g} from the largest network, " if args.distill else "")
            + (f"label smoothing {args.label_smoothing:g}, " if args.label_smoothing else "")
        )
        lines.append(
            f"pick fine-tuned {epochs:g} epochs at lr {done['lr']:g} ({done['steps']} steps of {done['batch_size']}, "
            f"{done['images']} images, {probe}batch norm {done['batch_norm']}): "
            f"test accuracy {before:.2f}% -> {after:.2f}% "
            f"({after - before:+.2f} points; fine-tune {done['minutes']:.1f} min, export in all "
            f"{(time.time() - start) / 60:.1f} min at {args.threads} threads)  MACs {result.macs / 1e6:.1f}M"
        )
        print(lines[-1], flush=True)
    print(f"# pick {args.arch}; {result.measured_on}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
