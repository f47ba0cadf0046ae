"""`specialize profile` (measure, bundle, import, validate) and `specialize devices`."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import console, err_console, fail, handle_errors, print_json
from specialize.api.hardware import defaults

DEFAULTS = defaults()

profile_app = typer.Typer(
    help="Measure a device profile: without a subcommand, time every (layer, candidate) block, the stem and "
    "the head on --runtime and write -o PROFILE.json. Subcommands work with profiles.",
    no_args_is_help=False,
)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator:
    """A Rich bar on stderr; yields the `progress(key)` callback that library functions take."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[key]}"),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total, key="")
        yield lambda key: bar.update(task, advance=1, key=key)


@profile_app.callback(invoke_without_command=True)
@handle_errors
def profile(
    ctx: typer.Context,
    name: Optional[str] = typer.Option(None, "--name", help="Device name stored in the profile, e.g. this-cpu."),
    space: Optional[str] = typer.Option(
        None, "--space", "-s", help="Search space preset, or an accuracy table / weights file whose space to profile."
    ),
    runtime: str = typer.Option("onnxruntime", "--runtime", help="onnxruntime | torch-cuda | tensorrt."),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32 | fp16 | int8 (QDQ, quantized as `export --precision int8` ships it)."
    ),
    batch: int = typer.Option(DEFAULTS["batch"], "--batch", min=1, help="Batch size of every timed entry."),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        min=1,
        help="Intra-op threads (onnxruntime), recorded in the profile; deploy with the same. Default 1, the "
        "steadiest timings.",
    ),
    graph_optimization: str = typer.Option(
        DEFAULTS["graph_optimization"],
        "--graph-optimization",
        help="onnxruntime graph optimization level, recorded: disabled | basic | extended | all.",
    ),
    calibration_networks: int = typer.Option(
        DEFAULTS["calibration_networks"],
        "--calibration-networks",
        min=0,
        help="Whole networks exported and timed as deployed to fit the profile's correction and expected error "
        "(0: none).",
    ),
    repeats: int = typer.Option(DEFAULTS["repeats"], "--repeats", min=3, help="Timed samples per entry."),
    force: bool = typer.Option(False, "--force", help="Write the profile even if some entries stay noisy."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Profile JSON to write."),
    from_one_thread: Optional[Path] = typer.Option(
        None,
        "--from-one-thread",
        help="Instead of timing blocks at --threads, "
        "scale this 1-thread profile's blocks by a fit on --calibration-networks whole "
        "networks timed at --threads (steadier where cores come and go, e.g. a VM).",
    ),
) -> None:
    """Time every (layer, candidate) block, the stem and the head; write a measured profile."""
    if ctx.invoked_subcommand is not None:
        return
    if from_one_thread is not None:
        return profile_from_one_thread(from_one_thread, name, space, threads, calibration_networks, output)
    if name is None or space is None or output is None:
        fail(
            "`specialize profile` needs --name, --space and -o PROFILE.json (or a subcommand: bundle, import, validate)"
        )
    if not name.strip():
        fail("--name is empty; give the device a name, e.g. this-cpu")
    from specialize.api import hardware

    hardware.check_measurable(space, runtime, precision, threads, graph_optimization, output, batch)
    with progress_bar(
        f"profiling {space} on {runtime}",
        hardware.measure_steps(space, batch, calibration_networks, repeats, precision),
    ) as step:
        result = hardware.measure_profile(
            name,
            space,
            runtime,
            precision,
            batch,
            threads,
            graph_optimization,
            calibration_networks,
            repeats,
            force,
            output,
            step,
        )
    noisy = result.measurement["noisy"]
    note = f", {len(noisy)} noisy entries kept (--force)" if noisy else ""
    for warning in (hardware.busy_warning(result), hardware.drift_warning(result)):
        note += f"; {warning}" if warning else ""
    console.print(
        f"wrote {output}: {result.label}, {result.measurement['wall_s']} s{note}; {expected_error_text(result)}",
        markup=False,
    )


def profile_from_one_thread(
    base_path: Path,
    name: Optional[str],
    space: Optional[str],
    threads: Optional[int],
    calibration_networks: int,
    output: Optional[Path],
) -> None:
    """`specialize profile --from-one-thread P1.json --threads T -o PT.json`."""
    from specialize.api import hardware

    if output is None or threads is None:
        fail("`specialize profile --from-one-thread P.json` needs --threads T (2 or more) and -o PROFILE.json")
    with progress_bar(f"timing networks at {threads} threads", hardware.scaling_steps(calibration_networks)) as step:
        base, result = hardware.scale_profile(base_path, space, threads, calibration_networks, name, output, step)
    coef = result.calibration["thread_scaling"]
    console.print(
        f"wrote {output}: {result.label}; blocks from {base_path} x {coef['share_of_1_thread_ms']:.3f} "
        f"+ {1e3 * coef['ms_per_op']:.1f} µs per op; {expected_error_text(result)}",
        markup=False,
    )


def expected_error_text(profile) -> str:
    """How far off a whole-network prediction is expected to be, wherever a profile is shown."""
    band = profile.expected_error
    what = "estimated" if profile.kind == "estimated" else "measured"
    if band is None:
        return f"{what}, expected error unknown (no whole-network check)"
    return f"{what} ±{100 * band:.0f}%"


@profile_app.command("validate")
@handle_errors
def validate(
    profile_path: Path = typer.Option(..., "--profile", "-p", help="Profile JSON to check."),
    samples: int = typer.Option(30, "--samples", "-n", min=2, help="Held-out random networks to measure."),
    seed: int = typer.Option(0, "--seed"),
    calibrate: bool = typer.Option(
        False, "--calibrate", help="Fit scale and offset on separate networks; keep if it helps."
    ),
    fit_samples: Optional[int] = typer.Option(
        None, "--fit-samples", min=3, help="Networks for the calibration fit (default --samples)."
    ),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Measure on this runtime instead of the profile's."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Default: the profile's."),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="With --calibrate or --record: write the profile here (the input is rewritten only if -o names it).",
    ),
    record: bool = typer.Option(
        False,
        "--record",
        help="Append this validation to the profile written to -o; a later "
        "validation that misses by more widens the profile's expected error.",
    ),
    runs: int = typer.Option(
        DEFAULTS["runs"], "--runs", min=3, help="Single runs per network after warm-up; the figure is their median."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures and samples as JSON."),
) -> None:
    """Export random whole networks, time them as deployed, and compare with the profile's predictions."""
    from specialize.api import hardware

    total = 2 * (samples + ((fit_samples or samples) if calibrate else 0))
    with progress_bar("exporting and timing whole networks", total) as step:
        report, updated = hardware.validate(
            profile_path, samples, seed, calibrate, fit_samples, runtime, threads, runs, record, output, step
        )
    if as_json:
        print_json(report)
        return
    render_validation(report, output)
    if record:
        console.print(
            f"  recorded in {output}: the profile now expects ±{100 * updated.expected_error:.1f}%", markup=False
        )


def render_validation(report: dict, profile_path: Path) -> None:
    console.print(
        f"{report['label']}: {len(report['samples'])} networks on {report['runtime']}, "
        f"{report['threads']} thread(s); {report['protocol']}",
        markup=False,
    )
    console.print(
        f"  within ±10%: {100 * report['within_10pct']:.0f}%   MAPE: {100 * report['mape']:.1f}%   "
        f"Kendall τ: {report['kendall_tau']:.3f}"
    )
    raw = report["uncalibrated"]
    console.print(f"  uncalibrated: within ±10% {100 * raw['within_10pct']:.0f}%, MAPE {100 * raw['mape']:.1f}%")
    if "calibration" in report and "error" in report["calibration"]:
        console.print(f"  calibration not fitted: {report['calibration']['error']}", markup=False)
    elif "calibration" in report:
        c = report["calibration"]
        verdict = (
            f"kept, written to {profile_path}"
            if report["calibration_kept"]
            else "not kept (no better on held-out networks)"
        )
        console.print(f"  calibration scale {c['scale']:.3f}, offset {c['offset_ms']:.3f} ms: {verdict}", markup=False)


@profile_app.command("calibrate")
@handle_errors
def calibrate(
    profile: str = typer.Option(
        ..., "--profile", "-p", help="Profile JSON, or a registered device name (its estimate)."
    ),
    timings: Path = typer.Option(..., "--timings", "-t", help="JSON of 5-20 whole-network timings on the device."),
    space: Optional[str] = typer.Option(
        None, "--space", "-s", help="Space of the estimate when --profile is a device name."
    ),
    batch: Optional[int] = typer.Option(
        None, "--batch", help="Batch of the estimate when --profile is a device name (default 1); the timings' batch."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Profile JSON to write (default: --profile's file)."
    ),
) -> None:
    """Fit a profile to a few whole-network timings; report its leave-one-out error."""
    from specialize.api import hardware

    target, result = hardware.calibrate(profile, timings, space, batch, output)
    few_shot = result.hardware.get("few_shot")
    detail = (
        f"estimate's error before {100 * few_shot['estimate_mape']:.1f}%, terms {few_shot['multipliers']}"
        if few_shot
        else f"calibration {'kept' if result.calibration else 'not kept (no better)'}"
    )
    console.print(f"wrote {target}: {result.label}; leave-one-out {expected_error_text(result)}; {detail}")


@profile_app.command("bundle")
@handle_errors
def bundle(
    space: str = typer.Option(
        ..., "--space", "-s", help="Search space preset, or an accuracy table / weights file whose space to bundle."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Directory to write (created; must be empty if it exists)."
    ),
    batch: int = typer.Option(DEFAULTS["batch"], "--batch", min=1),
    networks: int = typer.Option(
        DEFAULTS["networks"],
        "--networks",
        min=0,
        help="Whole networks spread over the space, timed for the calibration (5-20 suit the few-shot fit).",
    ),
    seed: int = typer.Option(0, "--seed"),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32 | int8: int8 writes every graph quantized (QDQ) as an INT8 export ships it."
    ),
    runtime: str = typer.Option(
        "onnxruntime", "--runtime", help="onnxruntime | tensorrt: the runtime whose INT8 QDQ form the graphs take."
    ),
) -> None:
    """Write every block, the stem, the head and some whole networks as ONNX, with a standalone runner."""
    from specialize.api import hardware

    hardware.check_bundle_options(precision, runtime)
    total = hardware.bundle_steps(space, batch, networks, precision)
    hardware.prepare_bundle(output)  # refused before the progress bar starts, so the error stays one line
    with progress_bar(f"exporting {space}", total) as step:
        manifest = hardware.write_bundle(space, output, batch, networks, seed, step, precision, runtime)
    console.print(
        f"wrote {len(manifest['entries'])} ONNX files to {output}; on the device run:\n"
        f"  python run_bundle.py            (needs onnxruntime and numpy, or trtexec)\n"
        f"then here: specialize profile import {output} --name DEVICE -o PROFILE.json",
        markup=False,
    )


@profile_app.command("import")
@handle_errors
def import_bundle_cmd(
    directory: Path = typer.Argument(..., help="Bundle directory holding the runner's results.json."),
    output: Path = typer.Option(..., "--output", "-o", help="Profile JSON to write."),
    name: Optional[str] = typer.Option(None, "--name", help="Device name (default: the one the runner recorded)."),
    estimate: Optional[str] = typer.Option(
        None,
        "--estimate",
        help="Few-shot: fit this registered device's estimate (compute, memory, kernel terms) to the "
        "bundle's timed whole networks instead of assembling its per-block timings.",
    ),
) -> None:
    """Turn a bundle's measured results into a profile (calibrated from its whole networks)."""
    from specialize.api import hardware

    if name is not None and not name.strip():
        fail("--name is empty; give the device a name or leave it out to use the one the runner recorded")
    result = hardware.import_bundle(directory, output, name, estimate)
    few_shot = result.hardware.get("few_shot") if result.hardware else None
    fit = f", calibration scale {result.calibration['scale']:.3f}" if result.calibration else ""
    if few_shot:
        fit = (
            f", few-shot fit of {few_shot['networks']} networks: leave-one-out error {100 * few_shot['loo_mape']:.1f}% "
            f"(the uncalibrated estimate: {100 * few_shot['estimate_mape']:.1f}%)"
        )
    console.print(f"wrote {output}: {result.label}{fit}", markup=False)


@handle_errors
def devices(
    precision: Optional[str] = typer.Option(
        None, help="Only devices with a latency figure at fp32, fp16 or int8, each estimate banded at it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List registered devices (roofline estimates) and shipped measured profiles."""
    from specialize.api import hardware

    rows = hardware.list_devices(precision)
    if as_json:
        print_json(rows)
        return
    wide = console.width >= 120  # the description only fits on wide terminals; --json has it all
    table = Table(title="devices", box=box.SIMPLE_HEAD)
    columns = ("name", "kind", "runtime", "space", "anchor") + (("date", "description") if wide else ())
    for column in columns:  # narrow terminals: date and description are in --json
        table.add_column(column, no_wrap=column in ("name", "kind"), overflow="fold")
    for row in rows:
        cells = [escape(str(row["name"])), kind_cell(row), runtime_cell(row), row["space"] or "", anchor_cell(row)]
        table.add_row(*cells, *([(row["date"] or "")[:10], escape(str(row["description"]))] if wide else []))
    console.print(table)
    elsewhere = sorted({row["space"] for row in rows if row.get("measured_on")})
    if elsewhere:
        console.print(
            f"profiles marked 'not here' were timed on another machine; profile this one with "
            f"`specialize profile --name this-cpu --space {elsewhere[0]} -o PROFILE.json`",
            markup=False,
        )
    aliases = ", ".join(f"{alias} = {row['name']}" for row in rows for alias in row["aliases"])
    console.print(f"aliases: {aliases}", markup=False)
    console.print(
        "estimated = op-type roofline on datasheet figures, scaled to a published latency (anchor: each fit "
        "network with its published ms, each check network with the estimate's residual on it; v1, v2, v3_large "
        "= MobileNet, b0 = EfficientNet-B0, mnasnet = MNASNet-1.0; in brackets, the runtime that published the fit "
        "anchor: --json has its runtime, threads and statistic); ±X% = expected error, ±? = no anchor to tell; "
        "measured = timed here."
    )


def runtime_cell(row: dict) -> str:
    """'onnxruntime fp32, batch 1, 1 thread' (measured) or 'roofline fp16, any batch' (estimated)."""
    batch = "any batch" if row["batch"] == "any" else f"batch {row['batch']}"
    threads = "" if row["threads"] is None else f", {row['threads']} thread{'s' if row['threads'] > 1 else ''}"
    precision = "/".join(p.split()[0] for p in row["precisions"]) if row.get("precisions") else row["precision"]
    return f"{row['runtime']} {precision or ''}, {batch}{threads}"


def kind_cell(row: dict) -> str:
    band = row.get("expected_error")
    if row["kind"] == "estimated":
        return f"[yellow]estimated {'±%.0f%%' % (100 * band) if band is not None else '±?'}[/]"
    if row.get("measured_on"):
        return "[red]measured, not here ±?[/]"
    return f"[green]measured{' ±%.0f%%' % (100 * band) if band is not None else ''}[/]"


def network_label(name: str) -> str:
    """A reference network's short name: mobilenet_v2_1.0_224 -> v2, efficientnet_b0_224 -> b0,
    mnasnet_1.0_224 -> mnasnet."""
    return re.sub(r"^(mobilenet|efficientnet)_|(_1\.0)?_224$", "", name)


def anchor_cell(row: dict) -> str:
    """One line per anchor: fit anchors with their published ms, checks and other-family rows with their residual."""
    anchors = row.get("anchors") or []
    if not any(a["role"] == "fit" for a in anchors):
        return "none" if row["kind"] == "estimated" else ""

    def runtime(a: dict) -> str:  # who published it: the runtime's first words ("ncnn benchncnn")
        return escape(str(a.get("runtime", "?")).split(",")[0])

    fits = [
        f"{network_label(a['network'])} {a['latency_ms']:.3g}ms fit ({runtime(a)})"
        for a in anchors
        if a["role"] == "fit"
    ]
    checks = [f"{network_label(a['network'])} {100 * a['residual']:+.0f}%" for a in anchors if a["role"] == "check"]
    others = [
        f"{network_label(a['network'])} {100 * a['residual']:+.0f}% (other family, not in the band)"
        for a in anchors
        if a["role"] == "other-family"
    ]
    return "\n".join(fits + checks + others)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")
    app.command("devices")(devices)
