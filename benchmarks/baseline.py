"""Does the tool beat what a user gets without it? The baseline side by side with the tool, per latency budget.

The baseline is what a user would do instead: EfficientNet-Lite0's own architecture, fine-tuned alone from the same
ImageNet file with the same recipe (the table's meta-stage settings: epochs, learning rate, weight decay, label
smoothing, batch, augmentation) on the same images, at the largest input resolution whose exported ONNX meets the
budget on this CPU (1 thread, timed as deployed). The tool's answer at the same budget is the main command's pick
from the table under `--max-latency`, exported and measured the same way. Each line: accuracy on the test split
(exported ONNX in onnxruntime), latency as deployed, MACs, and training CPU time (wall time at the same threads: the
supernet's whole training, beside the baseline's own).

    python benchmarks/baseline.py --table RUN/table.json --profile P.json --data ../shared/data/cifar10-jpg.tar.gz \\
        --budgets 1.5,2.5,4 --out /root/runs/baseline --threads 1

Baseline runs checkpoint in --out and resume when the command is run again.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from hw_profiles.validate import time_deployed
from specialize.api import export_result, specialize
from specialize.space import LITE0_ARCH, get_space
from specialize.table import load_table
from supernet.checkpoint import save_supernet_weights
from supernet.elastic import Supernet
from supernet.export import export_subnet, subnet_to_onnx
from supernet.pretrained import import_pretrained
from supernet.train import Trainer, TrainConfig

RECIPE = ("epochs", "lr", "batch_size", "weight_decay", "label_smoothing", "momentum", "schedule", "seed", "init")


def lite0_latency_ms(classes: int, resolution: int, threads: int) -> float:
    """Lite0 at `resolution` with a `classes`-way classifier, exported and timed as deployed (batch 1)."""
    space = get_space("efficientnet-lite0").with_classes(tuple(map(str, range(classes)))).with_resolution(resolution)
    net = Supernet(space)
    import_pretrained(net, "efficientnet-lite0")
    onnx_bytes, _, _ = subnet_to_onnx(net.extract(space.parse_arch(LITE0_ARCH)).eval(), resolution, {})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lite0.onnx"
        path.write_bytes(onnx_bytes)
        [median] = time_deployed([path], (1, 3, resolution, resolution), "onnxruntime", "fp32", threads, "all")
    return median


def train_baseline(recipe: dict, data: str, resolution: int, out: Path, threads: int) -> tuple[object, float]:
    """Lite0 alone, fine-tuned with the table's recipe at `resolution`; (export result, training wall seconds at
    `threads`, summed over resumes as the checkpoint records it)."""
    cfg = TrainConfig(
        space="efficientnet-lite0", data=data, input_size=resolution, meta_arch=LITE0_ARCH, threads=threads, **recipe
    )
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, out)
    trainer.meta_stage(resume=True)
    weights = out / "weights.pt"
    save_supernet_weights(weights, trainer.net)
    result = export_subnet(trainer.space.name, LITE0_ARCH, out / "lite0.onnx", weights=str(weights), data=data)
    return result, trainer.state["wall"]["meta"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--profile", required=True, help="this CPU's measured profile for the table's space")
    parser.add_argument("--data", required=True)
    parser.add_argument("--budgets", required=True, help="latency budgets in ms, comma-separated")
    parser.add_argument("--resolutions", default="32,48,64,80,96,112,128,160")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    table = load_table(args.table)
    settings = table.provenance["settings"]
    recipe = {key: settings[key] for key in RECIPE if key in settings}
    classes = table.space.num_classes
    latency = {r: lite0_latency_ms(classes, r, args.threads) for r in map(int, args.resolutions.split(","))}
    print("Lite0 as deployed: " + ", ".join(f"{r}px {ms:.2f} ms" for r, ms in latency.items()), flush=True)
    tool_cpu = sum(table.results["wall_seconds"].values())
    lines = []
    for budget in map(float, args.budgets.split(",")):
        fits = [r for r, ms in latency.items() if ms <= budget]
        picked = specialize(table=table, profile=args.profile, max_latency=f"{budget}ms")
        shipped = export_result(picked, args.out / f"tool-{budget:g}ms.onnx", data=args.data).export
        tool = (
            f"tool {100 * shipped['measured_accuracy']:.2f}% {shipped.get('measured_latency_ms', float('nan')):.2f} ms "
            f"{shipped['macs'] / 1e6:.0f}M MACs train {tool_cpu / 3600:.2f} h"
        )
        if not fits:
            lines.append(f"budget {budget:g} ms: {tool} | baseline: no resolution of Lite0 meets it")
            continue
        resolution = max(fits)
        result, cpu = train_baseline(recipe, args.data, resolution, args.out / f"lite0-{resolution}px", args.threads)
        gap = 100 * (shipped["measured_accuracy"] - result.measured_accuracy)
        lines.append(
            f"budget {budget:g} ms: {tool} | baseline Lite0 @{resolution}px {100 * result.measured_accuracy:.2f}% "
            f"{latency[resolution]:.2f} ms {result.macs / 1e6:.0f}M MACs train {cpu / 3600:.2f} h | "
            f"tool - baseline {gap:+.2f} points"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
