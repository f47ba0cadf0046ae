"""The offline commands (each imports torch when run): `specialize search`, an offline strategy scoring
sub-networks with the supernet, and `specialize proxy-check`, EcoNAS rank consistency of reduced settings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.bounds import bound_options
from cli.common import console, handle_errors, print_json, progress_status
from specialize.api import OFFLINE_BUDGET


def register(app: typer.Typer) -> None:
    app.command(
        "search",
        help="Offline search: a strategy (epnas, random, ...) scores sub-networks of the table's "
        "supernet on its validation split, within --budget architectures.",
    )(search)
    app.command(
        "proxy-check",
        help="EcoNAS: train a zoo under reduced settings and a reference; Spearman rho of each "
        "against the reference, with its cost.",
    )(proxy_check)


@handle_errors
def proxy_check(
    data: Path = typer.Option(
        ..., "--data", help="Image folder or .tar.gz (validation images are held out of train/)."
    ),
    space: str = typer.Option("cifar10", "--space", "-s", help="Search space preset."),
    zoo: int = typer.Option(8, "--zoo", help="Architectures in the zoo, spread over the MACs range."),
    reference: str = typer.Option(
        "c0r0s0e4", "--reference", help="Reference setting (EcoNAS notation c<i>r<j>s<k>e<epochs>)."
    ),
    settings: str = typer.Option(
        "c2r0s0e4,c2r2s0e4,c0r0s2e4,c0r0s0e1", "--settings", help="Comma-separated reduced settings."
    ),
    val_per_class: int = typer.Option(50, "--val-per-class", min=1, help="Validation images held out per class."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch intra-op threads."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="PNG of rho per setting with its cost (EcoNAS Fig. 8 style)."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None,
        "--checkpoint",
        help="JSON written after every trained architecture; rerunning with it resumes a killed run.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from specialize.api import offline

    with progress_status("training the zoo") as update:
        results = offline.proxy_check(
            space, data, zoo, reference, settings, val_per_class, seed, threads, plot, checkpoint, progress=update
        )
    if as_json:
        return print_json(offline.proxy_check_json(results))
    from rich.table import Table

    table = Table(title=f"rank consistency against {results[0].setting}, {zoo} architectures of {space}")
    for column in (
        "setting",
        "width",
        "resolution",
        "sample ratio",
        "epochs",
        "cost ratio",
        "Spearman rho",
        "rho 90% bootstrap",
        "mean accuracy",
    ):
        table.add_column(column)
    for r in results:
        rho = "reference" if r is results[0] else ("-" if r.spearman_rho is None else f"{r.spearman_rho:.3f}")
        interval = "" if r.rho_interval is None else f"{r.rho_interval[0]:.2f} to {r.rho_interval[1]:.2f}"
        table.add_row(
            r.setting,
            f"{r.width:.3f}",
            str(r.resolution),
            f"{r.sample_ratio:g}",
            str(r.epochs),
            f"{r.cost_ratio:.3f}",
            rho,
            interval,
            f"{100 * sum(r.accuracies) / len(r.accuracies):.1f}%",
        )
    console.print(table)
    console.print(
        f"rho 90% bootstrap: the 5th-95th percentile of rho over resamples of the {zoo} architectures, "
        "how far a zoo this size lets the figure move (the reference's own training noise is not in it)"
    )


def _offline_strategy_help() -> str:
    from specialize.api import offline_strategy_names

    return "offline strategy: " + ", ".join(offline_strategy_names())


@handle_errors
@bound_options
def search(
    strategy: str = typer.Option("epnas", "--strategy", help=_offline_strategy_help()),
    table: str = typer.Option("default", "--table", help="accuracy table file, or 'default' for the embedded one"),
    data: Optional[Path] = typer.Option(
        None,
        "--data",
        help="the image folder or .tar.gz the table was trained on "
        "(its validation split is rebuilt; default: the path the table records)",
    ),
    bounds: dict = None,
    budget: int = typer.Option(
        OFFLINE_BUDGET, "--budget", help="distinct architectures the strategy may score with the supernet"
    ),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="device name or profile id (for latency bounds)"),
    profile: Optional[Path] = typer.Option(None, "--profile", help="device profile file"),
    penalty: str = typer.Option(
        "soft", "--penalty", help="soft: EPNAS's penalty on the reward; hard: rejected networks get the lowest reward"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same answer)"),
    val_images: Optional[int] = typer.Option(None, "--val-images", help="score on the first N validation images only"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Offline search under bounds, e.g.
    specialize search --strategy epnas --data cifar10-jpg.tar.gz --max-flops 45M."""
    from cli.search_cmd import check_counts
    from specialize.api import search_offline

    check_counts(seed=seed)
    with progress_status(f"{strategy}: scoring sub-networks"):
        result = search_offline(
            table,
            data,
            strategy=strategy,
            penalty=penalty,
            budget=budget,
            seed=seed,
            device=device,
            profile=profile,
            val_images=val_images,
            **bounds,
        )
    if as_json:
        return print_json(result.to_dict())
    render_offline(result)


def render_offline(result) -> None:
    from cli.search_cmd import _bound_text, _fmt

    accuracy = "-" if result.validation_accuracy is None else f"{100 * result.validation_accuracy:.2f}%"
    verdict = (
        "meets every bound" if result.meets_bounds else "NO architecture scored met every bound; the fittest scored"
    )
    lines = [
        f"{result.strategy} ({result.status}, penalty {result.penalty}, seed {result.seed}): {verdict}",
        f"validation accuracy {accuracy} ({result.validation_images} validation images, batch norm recalibrated)",
        f"MACs {_fmt('macs', result.macs)}, params {_fmt('params', result.params)}, intensity "
        f"{_fmt('intensity', result.intensity)}"
        + (
            "" if result.latency_ms is None else f", latency {_fmt('latency_ms', result.latency_ms)} on {result.device}"
        ),
    ]
    lines += [f"{b['label']}: {_fmt(b['metric'], b['value'])}  {_bound_text(b)}" for b in result.bounds]
    lines.append(
        f"{result.evaluations} of {result.budget} evaluations in {result.wall_seconds:.1f} s "
        f"({result.evaluations_per_second:.2f} evaluations/s)"
    )
    for line in lines:
        console.print(line, highlight=False)
    console.print("architecture (copy-paste):", highlight=False)
    console.print(result.arch or "-", highlight=False, markup=False, soft_wrap=True)
