"""`specialize export`: one architecture of the supernet as a deployable ONNX file or TensorRT engine.

torch, onnx and onnxruntime are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cli.common import (
    PickFinetuneDistill,
    PickFinetuneEpochs,
    PickFinetuneLr,
    PRECISION_FORMS,
    console,
    converted,
    err_console,
    handle_errors,
    pick_finetune_line,
    print_json,
    progress_status,
)
from specialize.space import LITE_VARIANTS


def register(app: typer.Typer) -> None:
    app.command(
        "export",
        help="Export an architecture as ONNX (opset 17, dynamic batch, TensorRT-safe ops) or a TensorRT engine.",
    )(export)


@handle_errors
def export(
    arch: str = typer.Option(
        ..., "--arch", "-a", help="Comma-separated candidate per layer (see `specialize spaces`)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output file, e.g. model.onnx (model.engine with --format tensorrt)."
    ),
    space: Optional[str] = typer.Option(
        None,
        "--space",
        "-s",
        help="Space the architecture belongs to: a preset (see `specialize spaces`), an embedded table's name, or a "
        "table .json. Default: the space of --weights, else of the embedded default table (the main command's).",
    ),
    weights: Optional[str] = typer.Option(
        None,
        "--weights",
        "-w",
        help="Supernet weights file, an accuracy table (.json: its weights), 'default' for the shipped ones, or "
        f"{', '.join(LITE_VARIANTS)} (ImageNet). Omitted: the shipped ones where the space is theirs, else refused.",
    ),
    untrained: bool = typer.Option(
        False, "--untrained", help="Random weights, for latency work only: the model predicts nothing useful."
    ),
    data: Optional[Path] = typer.Option(
        None,
        "--data",
        help="Image folder or .tar.gz: batch norm is recalibrated on 500 of its "
        "training images and accuracy measured on its test split. Default: the table's "
        "training data if it exists here, else the calibration images shipped with the weights.",
    ),
    no_recalibrate: bool = typer.Option(
        False, "--no-recalibrate", help="Keep the supernet's batch-norm statistics (recorded in the metadata)."
    ),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or tensorrt."),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp32, int8 (QDQ ONNX: per-channel int8 weights, activation ranges from the batch-norm images), "
        "or fp16 (a half-precision ONNX file that takes float16 input; with --format tensorrt, an fp16 engine build "
        "from the fp32 ONNX).",
    ),
    pick_finetune_epochs: PickFinetuneEpochs = 0.0,
    pick_finetune_lr: PickFinetuneLr = None,
    pick_finetune_distill: PickFinetuneDistill = 0.0,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from specialize.api import offline

    with progress_status("exporting: batch-norm recalibration, ONNX, checks, measurement") as update:
        result = offline.export(
            space,
            arch,
            output,
            weights=weights,
            data=data,
            fmt=fmt,
            precision=precision,
            recalibrate=not no_recalibrate,
            untrained=untrained,
            pick_finetune_epochs=pick_finetune_epochs,
            pick_finetune_lr=pick_finetune_lr,
            pick_finetune_distill=pick_finetune_distill,
            progress=update,
        )
    for warning in result.warnings:
        err_console.print(f"WARNING: {warning}", style="bold yellow", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        return print_json(_to_json(result))
    _render(result)


def _to_json(result) -> dict:
    from dataclasses import asdict

    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}


def _render(result) -> None:
    table = Table(
        title=escape(f"exported {result.output}"), box=None, pad_edge=False, padding=(0, 1), show_header=False
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("space", result.space),
        ("network", f"{result.network_space} (fingerprint {result.fingerprint})"),
        ("architecture", result.arch),
        ("weights", f"{result.weights} ({'trained' if result.trained else 'UNTRAINED'})"),
        ("batch norm", result.bn_statistics),
        (
            "measured accuracy",
            "not measured" if result.measured_accuracy is None else f"{100 * result.measured_accuracy:.2f}%",
        ),
        ("measured on", result.measured_on),
        *([("fine-tune", pick_finetune_line(result.finetuned))] if result.finetuned else []),
        *(
            [
                (
                    "precision",
                    f"{PRECISION_FORMS[result.precision]}; the fp32 graph measured "
                    f"{100 * result.fp32_accuracy:.2f}% on the same images",
                )
            ]
            if result.fp32_accuracy is not None
            else [("precision", result.precision)]
        ),
        ("MACs", f"{result.macs / 1e6:.1f} M (what MobileNet papers call FLOPs)"),
        ("params", f"{result.params / 1e6:.3f} M"),
        (
            "onnxruntime vs torch",
            f"max abs diff {result.max_abs_diff:.2e} at batch 1 and 3"
            + (" (the fp32 graph, before conversion)" if converted(result.precision, result.fmt) else ""),
        ),
        ("ops", " ".join(result.ops)),
        ("ONNX", str(result.onnx_path)),
    ]
    if result.width_multiplier != 1:
        rows.insert(
            4,
            (
                "width",
                f"proxy width multiplier {result.width_multiplier:g} (full width: {result.full_macs / 1e6:.1f} M MACs)",
            ),
        )
    if result.engine_path:
        rows.append(("TensorRT engine", f"{result.engine_path} ({result.precision})"))
    if result.build_script:
        rows.append(("build script", f"{result.build_script} (run it on the target device)"))
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console.print(table, highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
