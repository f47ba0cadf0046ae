"""Does the tool beat what a user gets without it? The baseline side by side with the tool, per latency budget.

The baseline is what a user would do instead: EfficientNet-Lite0's own architecture, fine-tuned alone from the same
ImageNet file with the same recipe (the table's meta-stage settings: epochs, learning rate, weight decay, label
smoothing, batch, augmentation) on the same images, at the largest input resolution whose exported ONNX meets the
budget on this CPU (1 thread, timed as deployed); `--baseline-lr` replaces the recipe's learning rate
(`benchmarks/baseline_lr.py` sweeps it, into the same folder names, so its runs are reused here). The tool's answer
at the same budget is the main command's pick from the table under `--max-latency`, exported and measured the same
way. Each line: accuracy on the test split
(exported ONNX in onnxruntime), latency as deployed, MACs, and training CPU time (wall time at the same threads: the
supernet's whole training, beside the baseline's own).

    python benchmarks/baseline.py --table RUN/table.json --data ../shared/data/cifar10-jpg.tar.gz \\
        --budgets-at 64,80,96 --out /root/runs/baseline --threads 1 --pick-finetune-epochs 1

Budgets are given in ms (--budgets), or as Lite0's own latency at given resolutions (--budgets-at): this machine's
speed drifts by 10-35% within an hour, so a budget in ms picks a different baseline resolution from one timing to
the next; "as fast as Lite0 at 80 px, timed now" does not move. Without --profile, this CPU is profiled first at
every input size the table has (elastic resolution: one profile per size), so the tool predicts the machine as it
is now. The latencies and the tool's exports are measured next, on a quiet machine, every file timed in turn over
--rounds rounds, and saved in --out/measured.json; then the tool's picks are fine-tuned (--pick-finetune-epochs,
below) and printed, and each baseline trains (checkpointed in --out, resumed when the command is run again) and is
exported and measured on the test split.

With --pick-finetune-epochs N the tool's side is what `specialize ... --export --pick-finetune-epochs N` ships: each
pick, already timed in phase 1, is trained alone for N epochs on every training image and exported again (the same
graph, so the same latency), its accuracy before and after printed; the fine-tune's minutes are added to the tool's
training time. Each finished fine-tune is saved in --out/finetuned.json, an interrupted one resumes from its
checkpoint.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from hw_profiles.validate import time_deployed
from specialize.api import export_result, specialize
from specialize.api.offline import PICK_FINETUNE_LR_HELP
from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_json
from specialize.space import LITE0_ARCH, get_space
from specialize.table import load_table
from supernet.checkpoint import save_supernet_weights
from supernet.elastic import Supernet
from supernet.export import export_subnet, subnet_to_onnx
from supernet.pretrained import import_pretrained
from supernet.run_dir import lock_run_dir
from supernet.train import Trainer, TrainConfig
from supernet.train_config import FinetuneRecipe

FIT_SLACK = 0.05  # a pick more than 5% under its budget is searched again, larger

RECIPE = ("epochs", "lr", "batch_size", "weight_decay", "label_smoothing", "momentum", "schedule", "seed", "init")


def lite0_onnx(classes: int, resolution: int, path: Path) -> Path:
    """Lite0 at `resolution` with a `classes`-way classifier, exported as deployed (batch 1) to `path`."""
    space = get_space("efficientnet-lite0").with_classes(tuple(map(str, range(classes)))).with_resolution(resolution)
    net = Supernet(space)
    import_pretrained(net, "efficientnet-lite0")
    onnx_bytes, _, _ = subnet_to_onnx(net.extract(space.parse_arch(LITE0_ARCH)).eval(), resolution, {})
    path.write_bytes(onnx_bytes)
    return path


def interleaved_ms(files: dict[str, tuple[Path, int]], threads: int, rounds: int) -> dict[str, float]:
    """Fastest over `rounds` of each file's deployed median, the files timed in turn each round, so that a slow
    stretch of the machine falls on all of them rather than on one. The fastest, not the median: this machine's
    noise only ever adds time (a slow stretch moved one file's round median by up to 35%)."""
    samples: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(rounds):
        for name, (path, resolution) in files.items():
            [ms] = time_deployed([path], (1, 3, resolution, resolution), "onnxruntime", "fp32", threads, "all")
            samples[name].append(ms)
    return {name: min(values) for name, values in samples.items()}


def tool_exports(args, table, search_ms: dict[str, float], previous: dict) -> dict:
    """The tool's pick at every budget, searched under `search_ms` (per budget) over every input size the table has,
    exported and measured on the test split (a network exported before is reused)."""
    tool = {}
    for name, limit in search_ms.items():
        try:
            picked = specialize(table=table, profile=args.profiles, max_latency=f"{limit}ms")
        except SpecializeError as exc:
            tool[name] = {"refused": str(exc)}
            continue
        known = {(entry.get("arch"), entry.get("resolution")): entry for entry in previous.values()}
        if (picked.arch, picked.resolution) in known:
            tool[name] = dict(known[picked.arch, picked.resolution])
            continue
        path = args.out / f"tool-{name.removeprefix('tool@')}-{len(previous)}.onnx"
        shipped = export_result(picked, path, data=args.data).export
        tool[name] = {
            "accuracy": shipped["measured_accuracy"],
            "macs": shipped["macs"],
            "arch": picked.arch,
            "resolution": picked.resolution,
            "predicted_ms": picked.latency_ms,
            "file": str(path),
            "table": str(picked.table),
        }
    return tool


def profile_sizes(table, out: Path, threads: int) -> list[str]:
    """This CPU profiled now at every input size of the table (one measured profile per size), as
    `specialize profile` does; the files' paths. A profile already in --out (written whole: the write is atomic)
    is kept, so a rerun after an interruption goes on where it stopped."""
    from specialize.api.hardware import defaults, measure_profile

    paths, d = [], defaults()
    for size, path in (table.sizes() or {table.space.resolution: table.path}).items():
        target = out / f"this-cpu-{size}px.json"
        paths.append(str(target))
        if target.exists():
            continue
        measure_profile(
            "this-cpu", str(path), "onnxruntime", "fp32", d["batch"], threads, d["graph_optimization"],
            d["calibration_networks"], d["repeats"], True, target, lambda *_: None,
        )  # fmt: skip
    return paths


def measure_phase(args, table) -> dict:
    """Phase 1, on a quiet machine: Lite0's deployed latency at every resolution and the tool's exports at every
    budget, all timed interleaved. This machine drifts by 10-35% between profiling and use, so the tool's picks
    are timed, and each pick over its budget or more than FIT_SLACK under it is searched again at budget x its own
    predicted / measured, then timed again, up to --fit-rounds times, so that both sides use the budget on the
    machine as it is now; a pick still over it at the end gives way to the last one that met it. The first
    timing's median measured / predicted is kept as the drift. Saved to --out."""
    classes = table.space.num_classes
    if args.profiles is None:
        args.profiles = profile_sizes(table, args.out, args.threads)
    lite0 = {f"lite0@{r}": (lite0_onnx(classes, r, args.out / f"lite0-{r}px.onnx"), r) for r in args.resolutions}
    lite0_ms = interleaved_ms(lite0, args.threads, args.rounds)
    budgets = (
        {f"tool@{b:g}ms": b for b in args.budgets}
        if args.budgets
        else {f"tool@lite0-{r}px": lite0_ms[f"lite0@{r}"] for r in args.budgets_at}
    )
    search_ms, exported, drift, fallback = dict(budgets), {}, None, {}
    tool = tool_exports(args, table, search_ms, exported)
    for attempt in range(args.fit_rounds + 1):
        exported.update({f"{name} {attempt}": entry for name, entry in tool.items() if "file" in entry})
        timed = {name: (Path(e["file"]), e["resolution"]) for name, e in tool.items() if "file" in e}
        latency = interleaved_ms({**lite0, **timed}, args.threads, args.rounds)
        if not args.budgets:  # the budget is Lite0's latency at that size in this same timing
            budgets = {f"tool@lite0-{r}px": latency[f"lite0@{r}"] for r in args.budgets_at}
        ratios = {name: latency[name] / tool[name]["predicted_ms"] for name in timed}
        drift = drift or (statistics.median(ratios.values()) if ratios else 1.0)
        for name in timed:
            tool[name] = {**tool[name], "latency_ms": latency[name]}
            if latency[name] <= budgets[name]:
                fallback[name] = tool[name]
        unfit = [n for n in timed if not 1 - FIT_SLACK <= latency[n] / budgets[n] <= 1]  # over, or far under
        if not unfit or attempt == args.fit_rounds:
            break
        for name in unfit:  # over: the aim is under its own prediction, so another network comes back
            search_ms[name] = budgets[name] / ratios[name]
        tool = {**tool, **tool_exports(args, table, {name: search_ms[name] for name in unfit}, exported)}
    for name in tool:  # still over its budget after the last round: the last pick that met it, as timed then
        if "file" in tool[name] and tool[name]["latency_ms"] > budgets[name] and name in fallback:
            tool[name] = fallback[name]
    lite0_now = {r: latency[f"lite0@{r}"] for r in args.resolutions}
    return {"lite0_ms": lite0_now, "tool": tool, "drift": drift, "budgets": budgets, "profiles": args.profiles}


def finetune_pick(entry: dict, args, name: str) -> dict:
    """The tool's pick at one budget trained alone (`--pick-finetune-epochs`) and exported again through the
    product's path; its accuracy before and after and the fine-tune's minutes. Saved per budget in
    --out/finetuned.json, so a rerun reuses it; an interrupted fine-tune resumes from its own checkpoint."""
    saved = args.out / "finetuned.json"
    done = json.loads(saved.read_text()) if saved.exists() else {}
    key = (
        f"{name} {entry['arch']} {entry['resolution']} {args.pick_finetune_epochs:g}"
        + (f" distill {args.pick_finetune_distill:g}" if args.pick_finetune_distill else "")
        + f" lr {args.pick_finetune_lr or 'default'}"  # the default changed on 2026-12-07: older entries are redone
    )
    if key not in done:
        path = Path(entry["file"]).with_suffix(".finetuned.onnx")
        result = export_subnet(
            load_table(entry.get("table") or args.table).space.name,
            entry["arch"],
            path,
            weights=entry.get("table") or args.table,
            data=args.data,
            finetune=FinetuneRecipe(
                epochs=args.pick_finetune_epochs, lr=args.pick_finetune_lr, distill=args.pick_finetune_distill
            ).check(),
        )
        done[key] = {
            "accuracy": result.measured_accuracy,
            "accuracy_before": result.finetuned["accuracy_before"],
            "minutes": result.finetuned["minutes"],
            "lr": result.finetuned["lr"],
            "file": str(path),
        }
        atomic_write_json(saved, done)
    return done[key]


def tool_side(entry: dict, budget: float, args, name: str, tool_hours: float) -> tuple[dict, str]:
    """The tool's pick at one budget as a line (its accuracy after the pick fine-tune with --pick-finetune-epochs),
    and the entry with that accuracy."""
    if "refused" in entry:
        return entry, f"tool: refused ({entry['refused']})"
    finetuned, hours = "", tool_hours
    if args.pick_finetune_epochs > 0:
        pick = finetune_pick(entry, args, name)
        finetuned = (
            f" (as extracted {100 * pick['accuracy_before']:.2f}%; pick fine-tuned {args.pick_finetune_epochs:g} "
            f"epochs{at_lr(pick)}{distilled(args)}, {pick['minutes']:.0f} min)"
        )
        entry["accuracy"], hours = pick["accuracy"], tool_hours + pick["minutes"] / 60
    over = " OVER BUDGET" if entry["latency_ms"] > budget else ""
    return entry, (
        f"tool {100 * entry['accuracy']:.2f}%{finetuned} {entry['latency_ms']:.2f} ms "
        f"@{entry.get('resolution', '?')}px {entry['macs'] / 1e6:.0f}M MACs train {hours:.2f} h{over}"
    )


def distilled(args) -> str:
    return f", distill {args.pick_finetune_distill:g}" if args.pick_finetune_distill else ""


def at_lr(pick: dict) -> str:
    """The pick fine-tune's learning rate as the line prints it (entries saved before it was recorded: none)."""
    return f" at lr {pick['lr']:g}" if "lr" in pick else ""


def baseline_dir(out: Path, resolution: int, lr: float | None = None, epochs: int | None = None) -> Path:
    """Where the baseline at `resolution` trains (and resumes): one folder per learning rate, and per number of
    epochs, when they are given."""
    name = f"lite0-{resolution}px" if lr is None else f"lite0-{resolution}px-lr{lr:g}"
    return out / (name if epochs is None else f"{name}-ep{epochs:g}")


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
    result = export_subnet(trainer.space, LITE0_ARCH, out / "lite0.onnx", weights=str(weights), data=data)
    return result, trainer.state["wall"]["meta"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument(
        "--profile", dest="profiles", action="append", help="this CPU's measured profile, one per input size of the "
        "table (default: profile them all now)",
    )  # fmt: skip
    parser.add_argument("--data", required=True)
    budgets = parser.add_mutually_exclusive_group(required=True)
    budgets.add_argument("--budgets", type=floats, help="latency budgets in ms, comma-separated")
    budgets.add_argument(
        "--budgets-at", type=ints, help="budgets: Lite0's own latency at these resolutions, timed now (e.g. 64,80,96)"
    )
    parser.add_argument("--resolutions", default=[48, 64, 80, 96, 112, 128], type=ints)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument(
        "--fit-rounds",
        type=int,
        default=3,
        help="times a pick over (or 5%% under) its budget is searched again and retimed",
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--pick-finetune-epochs", type=float, default=0.0, help="train each tool pick alone this many epochs before "
        "its accuracy is measured, as `--export --pick-finetune-epochs` does (default 0: the pick as extracted)",
    )  # fmt: skip
    parser.add_argument(
        "--pick-finetune-distill", type=float, default=0.0, help="with --pick-finetune-epochs: this share of the "
        "loss from the supernet's largest network (`--pick-finetune-distill`)",
    )  # fmt: skip
    parser.add_argument(
        "--pick-finetune-lr", type=float, default=None, help="with --pick-finetune-epochs: the peak learning rate "
        f"(`--pick-finetune-lr`; {PICK_FINETUNE_LR_HELP})",
    )  # fmt: skip
    parser.add_argument(
        "--baseline-lr", type=float, default=None, help="train the baseline at this peak learning rate instead of "
        "the table's (benchmarks/baseline_lr.py sweeps it)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    try:  # two runs on one --out overwrite each other's exports mid-timing (it happened: one crashed, one misled)
        lock_run_dir(args.out, "baseline.py", "--out")  # held until exit
    except SpecializeError as exc:
        raise SystemExit(str(exc)) from None
    table = load_table(args.table)
    saved = args.out / "measured.json"
    if not saved.exists():
        atomic_write_json(saved, measure_phase(args, table))
    measured = json.loads(saved.read_text())
    lite0_ms = {int(r): ms for r, ms in measured["lite0_ms"].items()}
    print("Lite0 as deployed: " + ", ".join(f"{r}px {ms:.2f} ms" for r, ms in lite0_ms.items()), flush=True)
    print(
        f"machine drift since profiling (tool's picks, measured / predicted): x{measured['drift']:.2f}; a pick over "
        "or 5% under its budget was searched again at budget x its own predicted / measured",
        flush=True,
    )
    settings = table.provenance["settings"]
    recipe = {key: settings[key] for key in RECIPE if key in settings}
    if args.baseline_lr is not None:
        recipe["lr"] = args.baseline_lr
    tool_hours = sum(table.results["wall_seconds"].values()) / 3600
    lines = []
    budgets = measured.get("budgets") or {f"tool@{b:g}ms": b for b in args.budgets}
    tools = {}  # the tool's side first (its fine-tunes take minutes, each baseline an hour): all of it known early
    for name, budget in budgets.items():
        tools[name] = tool_side(dict(measured["tool"][name]), budget, args, name, tool_hours)
        print(f"budget {budget:.2f} ms ({name.removeprefix('tool@')}): {tools[name][1]}", flush=True)
    for name, budget in budgets.items():
        entry, tool = tools[name]
        at = name.removeprefix("tool@lite0-").removesuffix("px")
        fits = [int(at)] if at.isdigit() else [r for r, ms in lite0_ms.items() if ms <= budget]
        if not fits:
            lines.append(f"budget {budget:.2f} ms ({name}): {tool} | baseline: no resolution of Lite0 meets it")
            print(lines[-1], flush=True)
            continue
        resolution = max(fits)
        result, seconds = train_baseline(
            recipe, args.data, resolution, baseline_dir(args.out, resolution, args.baseline_lr), args.threads
        )
        gap = (
            ""
            if "refused" in entry
            else f" | tool - baseline {100 * (entry['accuracy'] - result.measured_accuracy):+.2f} points"
        )
        lines.append(
            f"budget {budget:.2f} ms ({name.removeprefix('tool@')}): {tool} | baseline Lite0 @{resolution}px "
            f"(lr {recipe['lr']:g}) {100 * result.measured_accuracy:.2f}% {lite0_ms[resolution]:.2f} ms "
            f"{result.macs / 1e6:.0f}M MACs "
            f"train {seconds / 3600:.2f} h{gap}"
        )
        print(lines[-1], flush=True)
    if len(lines) > 1:  # each line was printed as its baseline finished (hours apart); all of them together
        print("all budgets:\n" + "\n".join(lines))


def floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def ints(text: str) -> list[int]:
    return [int(value) for value in text.split(",")]


if __name__ == "__main__":
    main()
