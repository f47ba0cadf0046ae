"""The root command (`specialize --device jetson --max-flops 300M`) and `specialize pareto`.

Parses, calls `specialize.api`, renders. Bounds take units: latency 20ms / 500us / 0.02s (a bare
number is milliseconds), counts 300M / 4.2M / 1.5G (MACs = what MobileNet papers call FLOPs),
memory 2M / 2MB (decimal) or 2MiB (binary) bytes, intensity a plain number of FLOPs per byte.
numpy loads with the bound options; deap and highspy only when a search runs; matplotlib only for --plot.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from cli.bounds import bound_options
from cli.common import PRECISION_FORMS, PickFinetuneDistill, PickFinetuneEpochs, PickFinetuneLr, handle_errors
from specialize import api

DEVICE_HELP = "device name (e.g. jetson) or profile id; sets the latency model"
TABLE_HELP = "accuracy table file, or 'default' for the embedded one"
BATCH_HELP = (
    "batch size the latency is for (default 1): the device's measured profile at that batch, or its "
    "estimate built at that batch"
)
THREADS_HELP = "intra-op threads of the device's measured profile to use (default: 1 thread where shipped)"

# The options the main command and `pareto` share, declared once.
DeviceOption = Annotated[Optional[str], typer.Option("--device", "-d", help=DEVICE_HELP)]
TableOption = Annotated[str, typer.Option("--table", help=TABLE_HELP)]
ProfileOption = Annotated[
    Optional[Path], typer.Option("--profile", help="device profile file (instead of or refining --device)")
]
ProfilesOption = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--profile",
        help="device profile file (instead of or refining --device); for a table of several input sizes, give one "
        "per size (--profile a.json --profile b.json)",
    ),
]
BatchOption = Annotated[Optional[int], typer.Option("--batch", help=BATCH_HELP)]
ThreadsOption = Annotated[Optional[int], typer.Option("--threads", help=THREADS_HELP)]
PRECISION_HELP = (
    "precision the latency is for and --export ships: fp32, fp16 (a half ONNX file, or an fp16 TensorRT build) "
    "or int8 (QDQ); default fp32 where measured, else the estimate's own"
)
PrecisionOption = Annotated[Optional[str], typer.Option("--precision", help=PRECISION_HELP)]
RESOLUTION_HELP = (
    "input size to ship at, for a table trained with --resolutions (elastic resolution); default: every size the "
    "table has is searched and the most accurate answer wins"
)
ResolutionOption = Annotated[Optional[int], typer.Option("--resolution", help=RESOLUTION_HELP)]


def _library_defaults(fn) -> dict:
    """The defaults a library function declares: the CLI shows and passes the same ones."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def _strategy_help() -> str:
    from specialize.search.registry import get_strategy, is_offline, strategy_names

    online = [name for name in strategy_names() if not is_offline(name)]
    return (
        "search strategy: "
        + "; ".join(f"{name} ({get_strategy(name).summary})" for name in online)
        + "; the offline ones (epnas, random, ...) run under `specialize search`"
    )


STRATEGY_HELP = _strategy_help()
SPECIALIZE = _library_defaults(api.specialize)
PARETO = _library_defaults(api.pareto)


@handle_errors
@bound_options
def root(
    ctx: typer.Context,
    device: DeviceOption = None,
    bounds: dict = None,
    table: TableOption = "default",
    profiles: ProfilesOption = None,
    batch: BatchOption = None,
    threads: ThreadsOption = None,
    precision: PrecisionOption = None,
    resolution: ResolutionOption = None,
    seed: int = typer.Option(SPECIALIZE["seed"], "--seed", help="GA random seed (same seed, same answer)"),
    strategy: str = typer.Option(SPECIALIZE["strategy"], "--strategy", help=STRATEGY_HELP),
    solver: Optional[str] = typer.Option(None, "--solver", hidden=True, help="older name of --strategy"),
    penalty: str = typer.Option(
        SPECIALIZE["penalty"], "--penalty", help="hard: reject children that break a bound; soft: EPNAS penalty"
    ),
    time_limit: float = typer.Option(
        SPECIALIZE["time_limit"],
        "--time-limit",
        help="seconds for the whole search; an exact answer "
        "not proven by then is labelled so, with HiGHS's bound and gap",
    ),
    rerank: Optional[str] = typer.Option(
        None,
        "--rerank",
        help="surrogate: re-rank the --rerank-k best architectures "
        "by the table with PNAS's surrogate fit on the table's measured sub-networks",
    ),
    rerank_k: int = typer.Option(
        SPECIALIZE["rerank_k"], "--rerank-k", help="with --rerank: how many of the table's best to re-rank"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    export: Optional[Path] = typer.Option(
        None,
        "--export",
        help="write the chosen sub-network as ONNX here (batch norm "
        "recalibrated, accuracy and latency measured where possible)",
    ),
    data: Optional[Path] = typer.Option(
        None,
        "--data",
        help="with --export: image folder or .tar.gz to recalibrate "
        "batch norm on (train split) and measure accuracy on (test split)",
    ),
    no_recalibrate: bool = typer.Option(
        False,
        "--no-recalibrate",
        help="with --export: keep the supernet's batch-norm statistics (recorded in the ONNX metadata)",
    ),
    pick_finetune_epochs: PickFinetuneEpochs = 0.0,
    pick_finetune_lr: PickFinetuneLr = None,
    pick_finetune_distill: PickFinetuneDistill = 0.0,
) -> None:
    """Specialize the supernet for a device: pick one block per layer under the bounds, in under a second.

    Example that binds on the embedded default (`specialize spaces` prints its MACs range):
    specialize --device jetson --max-flops 45M --export model.onnx. A bound the whole space meets is
    reported as not binding, with the space's reachable value.
    """
    if ctx.invoked_subcommand is not None:
        return
    if _nothing_given(ctx):
        typer.echo(ctx.get_help())
        return
    from specialize.api import export_result, specialize

    check_counts(seed=seed)
    check_rerank_k(rerank_k)
    check_pick_finetune(export, pick_finetune_epochs, pick_finetune_lr, pick_finetune_distill)
    if export is not None:
        from specialize.fileio import check_not_input, check_writable

        check_writable(export)
        check_not_input(export, table, *(profiles or []), data)
    profile = profiles[0] if profiles and len(profiles) == 1 else profiles or None
    result = specialize(
        device,
        table=table,
        profile=profile,
        seed=seed,
        strategy=solver or strategy,
        penalty=penalty,
        time_limit=time_limit,
        batch=batch,
        threads=threads,
        rerank=rerank,
        rerank_k=rerank_k,
        precision=precision,
        resolution=resolution,
        **bounds,
    )
    if export is not None:
        from cli.common import progress_status

        with progress_status("exporting: batch-norm recalibration, ONNX, checks, measurement") as update:
            result = export_result(
                result,
                export,
                data=data,
                recalibrate=not no_recalibrate,
                pick_finetune_epochs=pick_finetune_epochs,
                pick_finetune_lr=pick_finetune_lr,
                pick_finetune_distill=pick_finetune_distill,
                progress=update,
            )
    if as_json:
        from cli.common import print_json

        print_json(result.to_dict())
    else:
        render_result(result)


@handle_errors
@bound_options
def pareto(
    objective: str = typer.Option("latency", "--objective", help="trade accuracy loss against: latency or macs"),
    device: DeviceOption = None,
    bounds: dict = None,
    table: TableOption = "default",
    profile: ProfileOption = None,
    batch: BatchOption = None,
    threads: ThreadsOption = None,
    seed: int = typer.Option(PARETO["seed"], "--seed", help="random seed"),
    generations: int = typer.Option(PARETO["generations"], "--generations", help="NSGA-II generations"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the front as JSON here"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="draw the front as a PNG here"),
    as_json: bool = typer.Option(False, "--json", help="print the front as JSON"),
) -> None:
    """Accuracy loss versus latency or MACs: the Pareto front found by NSGA-II, checked against the exact solver."""
    from specialize.api import pareto as pareto_front
    from specialize.fileio import atomic_write_json, check_writable

    check_counts(seed=seed, generations=generations)
    for path in (output, plot):
        if path is not None:
            check_writable(path)
    front = pareto_front(
        device,
        objective=objective,
        table=table,
        profile=profile,
        seed=seed,
        generations=generations,
        batch=batch,
        threads=threads,
        **bounds,
    )
    if output is not None:
        atomic_write_json(output, front.to_dict())
    if plot is not None:
        plot_front(front, plot)
    if as_json:
        from cli.common import print_json

        print_json(front.to_dict())
    else:
        render_front(front, output, plot)


def register(app: typer.Typer) -> None:
    app.command("pareto")(pareto)


def check_counts(seed: int, generations: int = 1) -> None:
    """--seed in 0..2^32-1 (what numpy seeds take) and --generations 1 or more, refused in one line otherwise."""
    from specialize.errors import SpecializeError

    if not 0 <= seed < 2**32:
        raise SpecializeError(f"--seed {seed} is out of range: 0..{2**32 - 1}")
    if not 1 <= generations <= 1_000_000:
        raise SpecializeError(f"--generations {generations} is out of range: 1..1000000")


def check_rerank_k(k: int) -> None:
    from specialize.errors import SpecializeError

    if not 2 <= k <= 100:
        raise SpecializeError(f"--rerank-k {k} is out of range: 2..100")


def _nothing_given(ctx: typer.Context) -> bool:
    """`specialize` alone prints help; any option runs the search."""
    return all(getattr(ctx.get_parameter_source(name), "name", "DEFAULT") == "DEFAULT" for name in ctx.params)


# -- rendering (the only place that draws) ----------------------------------------------------
def _fmt(metric: str, value: float | None) -> str:
    from specialize.search.constraints import METRICS

    return "-" if value is None else METRICS[metric].format(value, 4)


def _bound_text(bound: dict | None) -> str:
    if bound is None:
        return ""
    lo, hi = bound["lower"], bound["upper"]
    parts = ([f">= {_fmt(bound['metric'], lo)}"] if lo is not None else []) + (
        [f"<= {_fmt(bound['metric'], hi)}"] if hi is not None else []
    )
    mark = "[green]ok[/]" if bound["ok"] else "[red]broken[/]"
    tolerance = f" (± {_fmt(bound['metric'], bound['tolerance'])} tolerance)" if bound.get("tolerance") else ""
    return f"{', '.join(parts)}{tolerance}  {mark}"


def render_result(result) -> None:
    from rich.table import Table

    from cli.common import console

    blocks = Table(show_edge=False)
    for name in ("layer", "in -> out", "stride", "block", "T_d loss", "MACs") + (
        ("latency",) if result.latency_ms is not None else ()
    ):
        blocks.add_column(name, justify="right" if name not in ("block",) else "left")
    for b in result.blocks:
        row = [
            str(b.layer),
            f"{b.in_channels} -> {b.out_channels}",
            str(b.stride),
            b.block,
            f"{100 * b.accuracy_loss:+.2f}%",
            _fmt("macs", b.macs),
        ]
        blocks.add_row(*row + ([_fmt("latency_ms", b.latency_ms)] if result.latency_ms is not None else []))
    fixed = ["stem, head", "", "", "fixed", "", _fmt("macs", result.macs - sum(b.macs for b in result.blocks))]
    if result.latency_ms is not None:  # the rows add up to the totals below
        fixed.append(_fmt("latency_ms", result.latency_ms - sum(b.latency_ms for b in result.blocks)))
    blocks.add_row(*fixed)
    blocks.caption = (
        "T_d loss: the table's accuracy drop of the block against its layer's best candidate (PONAS's "
        "T_d); the predicted accuracy is fitted on their sum"
    )
    console.print(blocks)
    console.print(_summary(result))
    for bound in result.bounds:
        if bound.get("note"):
            console.print(f"{_flag_text(bound)}: {bound['note']}", highlight=False, markup=False)
    console.print(_solver_line(result), highlight=False, markup=False)
    if result.device_note:
        console.print(f"note: {result.device_note}", highlight=False, markup=False)
    for line in _choice_lines(result.precision_choice or [], "precision", PRECISION_TITLE):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for line in _choice_lines(result.resolution_choice or [], "resolution", RESOLUTION_TITLE):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.rerank is not None:
        console.print(_rerank_line(result.rerank), highlight=False, markup=False, soft_wrap=True)
    console.print("architecture (copy-paste):", highlight=False)
    console.print(result.arch, highlight=False, markup=False, soft_wrap=True)
    if result.export is not None:
        _render_export(result.export)


PRECISION_TITLE = "precision auto (highest predicted accuracy at its precision; ties to the faster):"
RESOLUTION_TITLE = "input sizes searched (elastic resolution; highest predicted accuracy wins, ties to the faster):"


def _choice_lines(choice: list[dict], key: str, title: str) -> list[str]:
    """--precision auto, or a table of several input sizes: one line per option tried, the chosen one marked."""
    lines = []
    for c in choice:
        name = f"{c[key]} px" if key == "resolution" else c[key]
        if "infeasible" in c or "not_searched" in c:
            lines.append(f"         {name}: no answer ({c.get('infeasible') or c['not_searched']})")
            continue
        band = "" if c["predicted_accuracy_band"] is None else f" (±{100 * c['predicted_accuracy_band']:.1f})"
        latency = "" if c["latency_ms"] is None else f", {_fmt('latency_ms', c['latency_ms'])}"
        mark = "chosen" if c["chosen"] else "      "
        elsewhere = " [profile from another machine]" if c.get("device_note") else ""
        lines.append(
            f"  {mark} {name}: predicted {100 * c['predicted_accuracy']:.2f}%{band}{latency}, "
            f"{_fmt('macs', c['macs'])} MACs, {c['arch']}{elsewhere}"
        )
    return [title, *lines] if lines else []


def _flag_text(bound: dict) -> str:
    from specialize.search.constraints import Bound

    return " ".join(Bound(bound["metric"], bound["lower"], bound["upper"]).flags())


def check_pick_finetune(export: Path | None, epochs: float, lr: float, distill: float = 0.0) -> None:
    """Refuse a pick fine-tune that cannot happen before the search runs: without --export, or out of range."""
    from specialize.api.offline import pick_finetune_recipe
    from specialize.errors import SpecializeError

    if epochs and export is None:
        raise SpecializeError("--pick-finetune-epochs trains the exported network: give --export M.onnx too")
    pick_finetune_recipe(epochs, lr, distill)


def _render_export(export: dict) -> None:
    from cli.common import console, err_console, pick_finetune_line

    for warning in export["warnings"]:
        err_console.print(f"WARNING: {warning}", highlight=False, markup=False, soft_wrap=True)
    band = "" if export["predicted_accuracy_band"] is None else f" ± {100 * export['predicted_accuracy_band']:.1f}"
    measured = (
        f"; {export['measured_on']}"
        if export["measured_accuracy"] is None
        else f", measured {100 * export['measured_accuracy']:.2f}% ({export['measured_on']})"
    )
    lines = [
        f"exported {export['file']}: {_fmt('macs', export['macs'])} MACs, {_fmt('params', export['params'])} "
        "parameters "
        f"(the figures above); batch norm {export['bn_statistics']}",
        f"accuracy: predicted {100 * export['predicted_accuracy']:.2f}%{band}{measured}",
    ]
    if export.get("finetuned"):
        lines[-1] = (
            f"accuracy: predicted {100 * export['predicted_accuracy']:.2f}%{band} for the pick as the supernet holds "
            f"it, measured {100 * export['finetuned']['accuracy_before']:.2f}%; after its fine-tune{measured[1:]}"
        )
        lines.append(f"fine-tune: {pick_finetune_line(export['finetuned'])}")
    if export.get("fp32_accuracy") is not None:
        lines.append(
            f"precision: {PRECISION_FORMS[export['precision']]}; the same network's fp32 graph measured "
            f"{100 * export['fp32_accuracy']:.2f}% on the same images"
        )
    if export["predicted_latency_ms"] is not None:
        got = (
            f"; {export['latency_note']}"
            if export["measured_latency_ms"] is None
            else f", measured {_fmt('latency_ms', export['measured_latency_ms'])} ({export['latency_note']})"
        )
        lines.append(f"latency: predicted {_fmt('latency_ms', export['predicted_latency_ms'])}{got}")
    for line in lines + [f"note: {n}" for n in export["notes"]]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for miss in export.get("misses", []):
        err_console.print(f"WARNING: {miss}", highlight=False, markup=False, soft_wrap=True)


def _summary(result):
    from rich.markup import escape
    from rich.table import Table

    bounds = {b["metric"]: b for b in result.bounds}
    where = (
        f"{result.device} ({device_setting(result.device_kind, result.batch, result.threads, result.precision)})"
        if result.device
        else "no device given"
    )
    size = f", input {result.resolution}x{result.resolution}" if result.resolution else ""
    table = Table(title=escape(f"space {result.space}{size}, {where}"), title_justify="left", show_edge=False)
    for name in ("", "value", "bound"):
        table.add_column(name)
    band = "" if result.predicted_accuracy_band is None else f" (±{100 * result.predicted_accuracy_band:.1f})"
    table.add_row("predicted accuracy", f"{100 * result.predicted_accuracy:.2f}%{band}", escape(result.accuracy_basis))
    rows = [
        ("latency", "latency_ms"),
        ("MACs", "macs"),
        ("params", "params"),
        ("intensity (FLOPs/byte)", "intensity"),
        ("peak activation", "peak_activation_bytes"),
    ]
    for label, key in rows:
        value = getattr(result, key)
        if value is not None or key in bounds:
            table.add_row(
                label,
                _fmt(key, value) + (_latency_band(result) if key == "latency_ms" else ""),
                _bound_text(bounds.get(key)),
            )
    return table


def device_setting(kind: str | None, batch: int | None, threads: int | None, precision: str | None = None) -> str:
    """'estimated, fp16, batch 32' or 'measured, int8, batch 1, 2 threads'."""
    thread_text = "" if threads is None else f", {threads} thread{'s' if threads > 1 else ''}"
    return f"{kind}{f', {precision}' if precision else ''}, batch {batch}{thread_text}"


def _latency_band(result) -> str:
    """' (estimated ±8%)' for an estimated device, ' (estimated ±?)' where no anchor bounds its error."""
    if result.latency_ms is None or result.device_kind is None:
        return ""
    band = "?" if result.latency_expected_error is None else f"{100 * result.latency_expected_error:.0f}%"
    return f" ({result.device_kind} ±{band})"


def _solver_line(result) -> str:
    optimum = (
        f"optimum {100 * result.optimum_value:+.3f}%"
        if result.optimum_status == "optimal"
        else (
            f"best known {100 * result.optimum_value:+.3f}%, not proven: HiGHS's bound "
            f"{100 * result.optimum_bound:+.3f}%, "
            f"gap {100 * result.optimality_gap:.3f} points"
        )
    )
    timing = f"searched in {result.search_seconds:.3f} s"
    if "skipped" in result.strategy_details:
        return f"answer: optimal; {result.strategy_details['skipped']}, so {result.strategy} did not run; {timing}"
    value = "-" if result.strategy_value is None else f"{100 * result.strategy_value:+.3f}%"
    gap = "-" if result.strategy_gap is None else f"{100 * result.strategy_gap:.3f} points"
    details = result.strategy_details
    stopped = (
        f", stopped after {details['generations']} of {details['generations_asked']} generations: {details['stopped']}"
        if details.get("stopped")
        else ""
    )
    if result.strategy == "exact":
        return f"answer: exact ({result.status}); {optimum}; {timing}"
    source = (
        f"{result.strategy}'s"
        if result.answer_from == result.strategy
        else f"exact's ({result.strategy} found a worse one)"
    )
    return (
        f"answer: {source}, {result.status}{stopped}; penalty {result.penalty}, seed {result.seed}; "
        f"{result.strategy} {value}, {optimum}, gap {gap}; {timing} "
        f"({result.strategy} {result.strategy_seconds:.3f} s, exact {result.exact_seconds:.3f} s)"
    )


def _rerank_line(rerank: dict) -> str:
    """One line: whether re-ranking the table's k best changed the answer, and what the reranker rests on."""
    rows = rerank["candidates"]
    chosen = next(r for r in rows if r["rerank_position"] == 1)
    error = "-" if rerank["cv_error"] is None else f"{100 * rerank['cv_error']:.1f} points"
    basis = f"{rerank['method']} fit on {rerank['samples']} measured sub-networks, cross-validated error {error}"
    if not rerank["changed"]:
        return (
            f"rerank ({basis}): kept the answer; of the table's {rerank['k']} best it is also the "
            f"{rerank['method']}'s ({100 * chosen['predicted_accuracy']:.2f}%)"
        )
    was = next((r for r in rows if r["was_answer"]), None)
    before = "" if was is None else f" over {100 * was['predicted_accuracy']:.2f}% for the table's answer"
    return (
        f"rerank ({basis}): changed the answer to #{rows.index(chosen) + 1} of the table's {rerank['k']} best "
        f"({rerank['method']} {100 * chosen['predicted_accuracy']:.2f}%{before})"
    )


def render_front(front, output: Path | None, plot: Path | None) -> None:
    from rich.table import Table

    from cli.common import console

    where = f"{front.device} ({device_setting(front.device_kind, front.batch, None)})" if front.device else "no device"
    table = Table(
        title=escape(f"Pareto front: accuracy loss vs {front.objective}, space {front.space}, {where}"),
        title_justify="left",
        show_edge=False,
    )
    for name in ("", front.objective, "predicted accuracy", "loss", "optimum at this cost", "arch"):
        table.add_column(name)
    for p in front.points:
        optimum = "" if p.optimum_loss is None else f"{100 * p.optimum_loss:+.2f}%"
        table.add_row(
            p.label or "",
            _fmt(front.cost_key, p.cost),
            f"{100 * p.predicted_accuracy:.2f}%",
            f"{100 * p.accuracy_loss:+.2f}%",
            optimum,
            escape(p.arch),
        )
    console.print(table)
    console.print(
        f"{len(front.points)} points in {front.search_seconds:.2f} s"
        + (f"; front written to {output}" if output else "")
        + (f"; plot written to {plot}" if plot else ""),
        markup=False,
        highlight=False,
    )


def plot_front(front, path: Path) -> None:
    """PNG of the front with the labelled points named (matplotlib, Agg backend, imported here only)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from specialize.fileio import atomic_write_bytes

    scale, unit = (1.0, "ms") if front.cost_key == "latency_ms" else (1e-6, "M MACs")
    x = [p.cost * scale for p in front.points]
    y = [100 * p.predicted_accuracy for p in front.points]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.plot(x, y, "o-", markersize=3, label="NSGA-II front")
    middle = (min(x) + max(x)) / 2
    labelled = [(p, xi, yi) for p, xi, yi in zip(front.points, x, y) if p.label]
    for n, (p, xi, yi) in enumerate(labelled, start=1):
        right = xi > middle  # labels point inward, so none runs off the plot
        ax.annotate(
            f"({n}) {p.label}: {yi:.1f}%",
            (xi, yi),
            fontsize=7,
            xytext=(-6 if right else 6, -12),
            textcoords="offset points",
            ha="right" if right else "left",
        )
        ax.plot([xi], [yi], "r*", markersize=8)
    ax.margins(x=0.08, y=0.1)
    notes = "\n".join(f"({n}) {p.arch}" for n, (p, _, _) in enumerate(labelled, start=1))
    fig.text(0.01, -0.02, notes, fontsize=6, family="monospace", va="top")
    ax.set_xlabel(f"{front.objective} ({unit})")
    ax.set_ylabel("predicted accuracy (%)")
    ax.set_title(f"{front.space}" + (f" on {front.device}" if front.device else ""))
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
