"""`specialize proxy-check`: EcoNAS rank consistency of reduced training settings (imports torch when run)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.common import console, handle_errors, print_json, progress_status


def register(app: typer.Typer) -> None:
    app.command("proxy-check", help="EcoNAS: train a zoo under reduced settings and a reference; Spearman rho of each "
                                    "against the reference, with its cost.")(proxy_check)


@handle_errors
def proxy_check(
    data: Path = typer.Option(..., "--data", help="Image folder or .tar.gz (validation images are held out of train/)."),
    space: str = typer.Option("cifar10", "--space", "-s", help="Search space preset."),
    zoo: int = typer.Option(8, "--zoo", help="Architectures in the zoo, spread over the MACs range."),
    reference: str = typer.Option("c0r0s0e4", "--reference", help="Reference setting (EcoNAS notation c<i>r<j>s<k>e<epochs>)."),
    settings: str = typer.Option("c2r0s0e4,c2r2s0e4,c0r0s2e4,c0r0s0e1", "--settings", help="Comma-separated reduced settings."),
    val_per_class: int = typer.Option(50, "--val-per-class", min=1, help="Validation images held out per class."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch intra-op threads."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of rho per setting with its cost (EcoNAS Fig. 8 style)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from specialize.errors import SpecializeError
    from specialize.fileio import check_writable
    from specialize.space import get_space

    search_space = get_space(space)
    if not 3 <= zoo <= 10_000:
        raise SpecializeError(f"--zoo must be 3..10000, got {zoo}")
    from supernet.proxy_check import Setting

    ref = Setting.parse(reference)
    reduced = [Setting.parse(s) for s in settings.split(",") if s.strip()]
    if plot is not None:
        check_writable(plot)
    import torch

    from supernet.data import load_dataset
    from supernet.proxy_check import plot_proxy_check, proxy_check as run_check, to_dict

    if threads:
        torch.set_num_threads(threads)
    dataset = load_dataset(data, image_size=search_space.resolution)
    with progress_status("training the zoo") as update:
        results = run_check(search_space.with_classes(dataset.classes), dataset, zoo, ref, reduced, seed, val_per_class,
                              progress=update)
    if plot is not None:
        plot_proxy_check(results, plot, f"{space}: rank consistency over {zoo} architectures")
    if as_json:
        return print_json(to_dict(results))
    from rich.table import Table

    table = Table(title=f"rank consistency against {results[0].setting}, {zoo} architectures of {space}")
    for column in ("setting", "width", "resolution", "sample ratio", "epochs", "cost ratio", "Spearman rho", "mean accuracy"):
        table.add_column(column)
    for r in results:
        rho = "reference" if r is results[0] else ("-" if r.spearman_rho is None else f"{r.spearman_rho:.3f}")
        table.add_row(r.setting, f"{r.width:.3f}", str(r.resolution), f"{r.sample_ratio:g}", str(r.epochs),
                      f"{r.cost_ratio:.3f}", rho, f"{100 * sum(r.accuracies) / len(r.accuracies):.1f}%")
    console.print(table)
