"""`specialize train` and `specialize table show|validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cli.common import console, handle_errors, print_json, progress_status
from specialize.api.offline import PICKS, train_config_type
from specialize.space import LITE_VARIANTS

TrainConfig = train_config_type()  # torch-free: its defaults are the options' defaults


def _recipe(key: str) -> str:
    scratch, pretrained = (TrainConfig.recipes()[kind][key] for kind in ("scratch", "pretrained"))
    return (
        f"Default: {scratch:g} from scratch, {pretrained:g} with --init (the recipes that trained the shipped tables)."
    )


table_app = typer.Typer(help="Inspect and validate accuracy tables.", no_args_is_help=True)


class ProgressReporter:
    """Draws the trainer's events as Rich progress bars (stage, epoch/layer, loss, accuracy, ETA)."""

    def __init__(self, progress):
        self.progress = progress
        self.task = None
        self.label = None
        self.started: dict[str, tuple[float, int]] = {}  # log lines: when each epoch or layer's first step came

    def eta(self, where: str, step: int, steps: int) -> str:
        """', ETA 12 min' for the epoch or layer `where`, from its steps so far in this process."""
        import time

        start, first = self.started.setdefault(where, (time.monotonic(), step))
        if step <= first:
            return ""
        left = (time.monotonic() - start) / (step - first) * (steps - step)
        return f", ETA {left / 60:.0f} min" if left >= 60 else f", ETA {left:.0f} s"

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "step" and not self.progress.console.is_terminal:
            where = f"epoch {event['epoch'] + 1}" if "epoch" in event else f"layer {event['layer'] + 1}"
            eta = self.eta(f"{event['stage']} {where}", event["step"], event["steps"])
            if event["step"] % 50 == 0 or event["step"] == event["steps"]:  # log lines instead of a bar
                self.progress.console.print(
                    f"{event['stage']} {where}: step {event['step']}/{event['steps']}, loss {event['loss']:.3f}{eta}",
                    highlight=False,
                )
        elif kind == "step":
            label = (
                f"meta epoch {event['epoch'] + 1}"
                if event["stage"] == "meta"
                else f"fine-tune layer {event['layer'] + 1}"
            )
            info = f"loss {event['loss']:.3f}" + (
                f" acc {event['train_accuracy']:.3f}" if "train_accuracy" in event else ""
            )
            if label != self.label:
                if self.task is not None:
                    self.progress.remove_task(self.task)
                self.task, self.label = self.progress.add_task(label, total=event["steps"], info=info), label
            self.progress.update(self.task, completed=event["step"], info=info)
        elif kind == "epoch":
            self.progress.console.print(
                f"meta epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}, "
                f"train accuracy {100 * event['train_accuracy']:.2f}%"
            )
        elif kind == "meta_done":
            self.progress.console.print(f"meta network test accuracy {100 * event['test_accuracy']:.2f}%")
        elif kind == "layer":
            self.progress.console.print(
                f"layer {event['layer']}/{event['layers']}: best {event['best']} "
                f"(validation accuracy {100 * event['accuracy']:.2f}%)"
            )
        elif kind == "eval" and event["stage"] == "spread":
            self.progress.console.print(
                f"accuracy fit: sub-network {event['index']}/{event['count']} "
                f"{event.get('split', 'validation')} accuracy {100 * event['accuracy']:.2f}%",
                highlight=False,
            )
        elif kind == "note":
            self.progress.console.print(f"note: {event['text']}", highlight=False, markup=False)
        elif kind == "resume":
            self.progress.console.print(
                f"resuming at stage {event['stage']}, epoch {event['epoch']}, layer {event['layer']}"
            )
        elif kind == "done":
            self.progress.console.print(
                f"best {event['best_arch']}: test accuracy {100 * event['best_test_accuracy']:.2f}%",
                highlight=False,
                soft_wrap=True,
            )


@handle_errors
def train(
    space: str = typer.Option(..., help="Search space preset (see `specialize spaces`)."),
    data: Path = typer.Option(..., help="Image folder (ROOT/train/<class>, ROOT/test/<class>) or a .tar.gz of one."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Run directory: table.json, weights.pt, checkpoint.pt, log.jsonl."
    ),
    width: float = typer.Option(TrainConfig.width, help="EcoNAS proxy c: channel width multiplier."),
    resolution: Optional[int] = typer.Option(None, help="EcoNAS proxy r: input resolution (default: the space's)."),
    sample_ratio: float = typer.Option(TrainConfig.sample_ratio, help="EcoNAS proxy s: share of training images used."),
    epochs: int = typer.Option(TrainConfig.epochs, help="EcoNAS proxy e: meta-training epochs."),
    finetune_epochs: float = typer.Option(
        TrainConfig.finetune_epochs, help="Passes over the sampled data per fine-tuned layer."
    ),
    batch_size: int = typer.Option(TrainConfig.batch_size),
    lr: Optional[float] = typer.Option(None, help=f"Meta-training learning rate. {_recipe('lr')}"),
    finetune_lr: Optional[float] = typer.Option(None, help=f"Fine-tuning learning rate. {_recipe('finetune_lr')}"),
    schedule: str = typer.Option(TrainConfig.schedule, help="cosine or step."),
    weight_decay: Optional[float] = typer.Option(None, help=f"SGD weight decay. {_recipe('weight_decay')}"),
    warmup: float = typer.Option(
        TrainConfig.warmup, help="Share of each stage's steps (each fine-tuned layer's own) the learning rate warms up."
    ),
    clip_grad: float = typer.Option(TrainConfig.clip_grad, help="Clip gradients to this norm (0: off)."),
    label_smoothing: float = typer.Option(
        TrainConfig.label_smoothing, help="Label smoothing of the cross-entropy loss."
    ),
    val_per_class: Optional[int] = typer.Option(
        None,
        help="Validation images held out per class (default: 2,500 in all, at most a fifth of the smallest class).",
    ),
    calib_images: int = typer.Option(
        TrainConfig.calib_images, help="Images for batch-norm recalibration (shipped beside the weights)."
    ),
    spread_samples: int = typer.Option(
        TrainConfig.spread_samples, help="Sub-networks measured after training to fit table score to accuracy."
    ),
    picks: int = typer.Option(
        PICKS,
        help="Then fit the predictions on the search's own answers at this many MACs ceilings, measured on the fit "
        "split (as `table refit --picks`); 0: predictions read the fit on random sub-networks, which overrates them.",
    ),
    seed: int = typer.Option(TrainConfig.seed),
    threads: Optional[int] = typer.Option(None, help="torch intra-op threads."),
    candidates_per_pass: Optional[int] = typer.Option(
        None,
        help="Strict fairness: candidates per forward pass (default all; fewer saves memory, recomputes the prefix).",
    ),
    init: Optional[str] = typer.Option(
        None,
        help=f"Pretrained start: {', '.join(LITE_VARIANTS)} (pip install -e '.[pretrained]'; each with --space of "
        "its name) or a state dict in that layout.",
    ),
    input_size: Optional[int] = typer.Option(
        None,
        help="Deployed input resolution (default: the space's); images are resized to it with Pillow's "
        "bilinear filter.",
    ),
    fit_images: int = typer.Option(
        TrainConfig.fit_images,
        help="Training images held out to measure the sub-networks the accuracy fit is made from (0: the "
        "validation split, which the table picked on, so its predictions run high).",
    ),
    head_init: str = typer.Option(
        TrainConfig.head_init,
        help="With --init and a new classifier: probe (fitted on the pretrained network's frozen features before "
        "training, LP-FT) or random.",
    ),
    batch_norm: str = typer.Option(
        TrainConfig.batch_norm,
        help="With --init: batch (batch statistics, re-estimated for each sub-network) or frozen (the pretrained "
        "statistics kept everywhere but the last layer and the head; for small data sets; keep --lr at most 0.01).",
    ),
    resolutions: Optional[str] = typer.Option(
        None,
        help="Elastic resolution: more input sizes, comma-separated (e.g. 64,80,96); each batch trains at one, and "
        "each gets a table (table-<r>px.json) the search picks among.",
    ),
    distill: float = typer.Option(
        TrainConfig.distill, help="Fine-tuning: weight of in-place distillation (0: none, 1: soft labels only)."
    ),
    teacher: Optional[str] = typer.Option(
        None, help="Distillation teacher architecture (default: the pretrained one with --init, else the largest)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output after an interruption."),
) -> None:
    """PONAS two-stage training of the supernet; writes an accuracy table."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from specialize.api import offline

    cfg = TrainConfig(
        space=space,
        data=str(data),
        width=width,
        resolution=resolution,
        sample_ratio=sample_ratio,
        epochs=epochs,
        finetune_epochs=finetune_epochs,
        batch_size=batch_size,
        lr=lr,
        finetune_lr=finetune_lr,
        schedule=schedule,
        val_per_class=val_per_class,
        calib_images=calib_images,
        seed=seed,
        threads=threads,
        candidates_per_pass=candidates_per_pass,
        weight_decay=weight_decay,
        warmup=warmup,
        clip_grad=clip_grad,
        label_smoothing=label_smoothing,
        spread_samples=spread_samples,
        init=init,
        input_size=input_size,
        resolutions=TrainConfig.parse_sizes(resolutions),
        fit_images=fit_images,
        head_init=head_init,
        batch_norm=batch_norm,
        distill=distill,
        teacher=teacher,
    )
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        table = offline.train(cfg, output, resume, ProgressReporter(progress), picks)
    console.print(f"wrote {output / 'table.json'} and {output / 'weights.pt'}", markup=False)
    fit = table.prediction_fit
    console.print(
        f"meta network test accuracy {100 * table.results['meta_test_accuracy']:.2f}%; best sub-network "
        f"{table.best_arch}: test accuracy {100 * table.results['best_test_accuracy']:.2f}%",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    console.print(
        f"accuracy fit over {fit['samples']} {table.fitted_on}: residual spread ±{100 * fit['band']:.2f} points "
        f"({fit['split']} split, {fit['images']} images)",
        highlight=False,
    )


@table_app.command("show")
@handle_errors
def show(
    table: str = typer.Option("default", help="Accuracy table file, or `default`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (keys space, fingerprint, accuracy, loss)."),
) -> None:
    """Print an accuracy table as a heat map (or JSON)."""
    from specialize.table import load_table

    t = load_table(table)
    if as_json:
        print_json(
            {
                "space": t.space.name,
                "fingerprint": t.fingerprint,
                "candidates": list(t.space.candidate_names),
                "accuracy": t.accuracy.tolist(),
                "loss": t.loss.tolist(),
                "best_arch": t.best_arch,
                "proxy": t.proxy,
                "prediction_fit": fit_summary(t.prediction_fit),
                "random_subnetwork_fit": fit_summary(t.accuracy_fit),
            }
        )
        return
    from cli.render import accuracy_heatmap

    console.print(accuracy_heatmap(t))
    fit = t.prediction_fit
    if fit is None:
        console.print("predictions: the table's sum alone (no measured fit, no band)", markup=False)
        return
    line = (
        f"predictions: {fit_summary(fit)['method']} fit over {fit['samples']} {t.fitted_on} ({fit['split']} split, "
        f"{fit['images']} images), band ±{100 * fit['band']:.2f} points"
    )
    if fit is t.pick_fit and t.accuracy_fit:
        line += f"; the fit over random sub-networks: band ±{100 * t.accuracy_fit['band']:.2f}"
    console.print(line, highlight=False, markup=False)


def fit_summary(fit: dict | None) -> dict | None:
    """What `table show` says of a score -> accuracy fit: its method, samples, split, images and band."""
    if fit is None:
        return None
    return {"method": fit.get("method", "line"), **{k: fit.get(k) for k in ("samples", "split", "images", "band")}}


@table_app.command("validate")
@handle_errors
def validate(
    data: Path = typer.Option(..., help="Image folder or .tar.gz with the test split to measure on."),
    table: str = typer.Option("default", help="Accuracy table file, or `default`."),
    samples: int = typer.Option(20, help="Architectures to sample across the MACs range."),
    seed: int = typer.Option(0),
    plot: Optional[Path] = typer.Option(None, help="Scatter plot PNG (predicted score vs measured accuracy)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (keys kendall_tau, spearman_rho, samples)."),
) -> None:
    """Rank correlation between the table's predicted scores and measured sub-network accuracy."""
    from specialize.api import offline

    with progress_status("measuring sub-networks") as update:
        fidelity = offline.validate_table(
            table, data, samples, seed, plot, progress=lambda i, n: update(f"measured {i}/{n} sub-networks")
        )
    if as_json:
        print_json(fidelity.to_dict())
        return
    from rich.table import Table

    grid = Table(title=escape(f"table fidelity on {data}"))
    for column in ("arch", "MACs", "table score (T_d sum)", "test accuracy"):
        grid.add_column(column)
    for sample in fidelity.samples:
        grid.add_row(
            sample["arch"],
            f"{sample['macs'] / 1e6:.1f}M",
            f"{sample['predicted']:.4f}",
            f"{100 * sample['accuracy']:.2f}%",
        )
    console.print(grid)
    console.print(
        f"Kendall tau {fidelity.kendall_tau:.3f}, Spearman rho {fidelity.spearman_rho:.3f} over "
        f"{len(fidelity.samples)} sub-networks"
    )


@table_app.command("int8-check")
@handle_errors
def int8_check(
    table: str = typer.Option("default", help="Accuracy table file, or `default`."),
    data: Optional[Path] = typer.Option(
        None, help="Image folder or .tar.gz with the test split (default: the data the table was trained on)."
    ),
    networks: int = typer.Option(20, help="Sub-networks spread over the MACs range, each exported FP32 and INT8."),
    seed: int = typer.Option(0),
    record: bool = typer.Option(False, "--record", help="Keep the result in the table: predictions at int8 use it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """INT8's accuracy drop: sub-networks exported FP32 and INT8 (QDQ), both measured on the test split."""
    from specialize.api import offline

    with progress_status("exporting and measuring sub-networks") as update:
        result = offline.int8_check(table, data, networks, seed, record, update)
    if as_json:
        print_json(result)
        return
    for row in result["networks"]:
        console.print(
            f"{row['arch']}  {row['macs'] / 1e6:.1f}M MACs  fp32 {100 * row['fp32']:.2f}%  int8 "
            f"{100 * row['int8']:.2f}%  drop {100 * (row['fp32'] - row['int8']):+.2f}",
            highlight=False,
            markup=False,
        )
    band = "" if result["band"] is None else f", band ±{100 * result['band']:.2f}"
    console.print(
        f"INT8 accuracy drop over {len(result['networks'])} networks ({result['measured_on']}): median "
        f"{100 * result['median_drop']:.2f} points, worst {100 * result['worst_drop']:.2f}{band}"
        + ("; recorded in the table" if record else ""),
        highlight=False,
        markup=False,
    )


@table_app.command("refit")
@handle_errors
def refit(
    table: str = typer.Option(..., help="Accuracy table file to refit in place."),
    picks: Optional[int] = typer.Option(
        None,
        help="Fit on the search's own answers instead: this many MACs ceilings spread over the space, each "
        "answer measured on the run's fit split (validation split in runs without one). Predictions then read it.",
    ),
    data: Optional[Path] = typer.Option(
        None, help="With --picks: the data the table was trained on (default: its recorded path)."
    ),
    seed: int = typer.Option(0, help="With --picks: the search's seed."),
) -> None:
    """Refit the table's score -> accuracy prediction from the sub-networks its training measured, or, with
    --picks, from the search's own answers (which the spread fit overrates)."""
    from specialize.api import offline

    if picks is None:
        old, new = offline.refit_accuracy(table)
        what = "sub-networks"
    else:
        with progress_status("searching and measuring the search's answers") as update:
            old, new = offline.calibrate_on_picks(table, data, picks, seed, update)
        what = f"search answers at {picks} MACs ceilings ({new['split']} split, {new['images']} images)"
        for row in new["picks"]:
            console.print(
                f"{row['macs'] / 1e6:6.1f}M MACs  spread fit predicts "
                + ("-" if row["spread_fit"] is None else f"{100 * row['spread_fit']:.2f}%")
                + f"  measured {100 * row['accuracy']:.2f}%  {row['arch']}",
                highlight=False,
                markup=False,
            )
    before = "none" if old is None else f"{old.get('method', 'line')}, band ±{100 * old['band']:.2f}"
    console.print(
        f"accuracy fit over {new['samples']} {what}: was {before}; now {new['method']}, band "
        f"±{100 * new['band']:.2f} points (leave-one-out)",
        highlight=False,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.add_typer(table_app, name="table")
