"""`specialize spaces` and `specialize cost`: the declared search spaces and the analytic cost model.

Pure numpy underneath: nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.markup import escape

from cli.common import console, handle_errors, print_json
from specialize.errors import SpecializeError

MACS_NOTE = "MACs are multiply-accumulates: what MobileNet-family papers call FLOPs (FLOPs here = 2 x MACs)."


def register(app: typer.Typer) -> None:
    app.command(
        "spaces", help="List the search-space presets: layers, candidates, fingerprint, MACs and params range."
    )(spaces)
    app.command(
        "cost", help="Cost of an architecture (MACs, params, bytes, intensity, peak activation), or per candidate."
    )(cost)


@handle_errors
def spaces(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    from specialize.cost import space_ranges
    from specialize.space import SPACES, get_space
    from specialize.table import DEFAULT_NAME, EMBEDDED_TABLES, load_table

    embedded = []
    for table_name in EMBEDDED_TABLES:
        space = load_table(table_name).space
        embedded.append(
            {
                "table": table_name,
                "default": table_name == DEFAULT_NAME,
                "space": space.name,
                "resolution": space.resolution,
                "num_classes": space.num_classes,
                "macs_range": list(space_ranges(space)["macs"]),
            }
        )
    rows = []
    for name in sorted(SPACES):
        space = get_space(name)
        ranges = space_ranges(space)
        rows.append(
            {
                "name": name,
                "layers": space.num_layers,
                "candidates": list(space.candidate_names),
                "resolution": space.resolution,
                "num_classes": space.num_classes,
                "fingerprint": space.fingerprint,
                "macs_range": list(ranges["macs"]),
                "params_range": list(ranges["params"]),
                **({"skip_layers": [l + 1 for l in space.skippable_layers()]} if space.skip else {}),
            }
        )
    if as_json:
        print_json({"spaces": rows, "embedded_tables": embedded, "note": MACS_NOTE})
        return
    console.print(_spaces_table(rows))
    for e in embedded:
        low, high = (m / 1e6 for m in e["macs_range"])
        console.print(
            f"embedded table {e['table']}{' (the default)' if e['default'] else ''}: space {e['space']}, "
            f"{e['resolution']} px, {e['num_classes']} classes, {low:.1f}-{high:.1f} MMACs (--table or --space "
            f"{e['table']})",
            highlight=False,
        )
    for names in sorted({tuple(r["candidates"]) for r in rows}):
        users = ", ".join(r["name"] for r in rows if tuple(r["candidates"]) == names)
        console.print(f"candidates ({users}): {' '.join(names)}", highlight=False)
    for r in rows:
        if "skip_layers" in r:
            console.print(
                f"elastic depth ({r['name']}): skip allowed on layers {' '.join(map(str, r['skip_layers']))} "
                f"(stride 1, equal channels; from 1)",
                highlight=False,
            )
    console.print(MACS_NOTE, style="dim")


def _spaces_table(rows: list[dict]) -> Table:
    table = Table(title="search spaces", box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold underline")
    for column in ("space", "res/classes", "layers", "cands", "fingerprint", "MMACs", "Mparams"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['resolution']}/{r['num_classes']}",
            str(r["layers"]),
            str(len(r["candidates"])),
            r["fingerprint"],
            _range(r["macs_range"], 1),
            _range(r["params_range"], 1),
        )
    return table


def _range(pair: list[int], digits: int) -> str:
    return f"{pair[0] / 1e6:.{digits}f}-{pair[1] / 1e6:.{digits}f}"


@handle_errors
def cost(
    space: str = typer.Option(
        "cifar10",
        "--space",
        "-s",
        help="Search-space preset, embedded table's name (the default's: lite0-cifar10-96) or table .json "
        "(see `specialize spaces`).",
    ),
    arch: Optional[str] = typer.Option(
        None, "--arch", "-a", help="Comma-separated candidate per layer, e.g. k3e3,k5e6se,..."
    ),
    per_candidate: bool = typer.Option(
        False, "--per-candidate", help="Print the [layers][candidates] cost arrays instead."
    ),
    dtype_bytes: int = typer.Option(
        4, "--dtype-bytes", min=1, help="Bytes per element for bytes moved (4 = fp32, 2 = fp16)."
    ),
    batch: int = typer.Option(
        1, "--batch", min=1, help="Batch size for bytes moved, peak activation and --profile's latency."
    ),
    profile: Optional[str] = typer.Option(
        None, "--profile", "-p", help="Device name or profile file: adds predicted latency_ms and its expected error."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from specialize.api.hardware import space_of
    from specialize.cost import arch_cost, cost_arrays

    search_space = space_of(space)
    if per_candidate == (arch is not None):
        raise SpecializeError(
            "give exactly one of --arch A (totals for one architecture) or --per-candidate (all candidates)"
        )
    if per_candidate:
        data = {
            "space": search_space.name,
            "candidates": list(search_space.candidate_names),
            "layers": list(range(1, search_space.num_layers + 1)),
            "layers_numbered_from": 1,
            **cost_arrays(search_space, dtype_bytes, batch).to_dict(),
            "note": MACS_NOTE,
        }
        return print_json(data) if as_json else _render_per_candidate(data)
    parsed = search_space.parse_arch(arch)
    totals = arch_cost(parsed, dtype_bytes, batch)
    if profile is not None:
        totals.update(predict_latency(profile, search_space, parsed, batch))
    if as_json:
        return print_json(
            {
                **totals,
                "space": search_space.name,
                "arch": str(parsed),
                "dtype_bytes": dtype_bytes,
                "batch": batch,
                "note": MACS_NOTE,
            }
        )
    _render_totals(totals, search_space.name, str(parsed))


def predict_latency(profile: str, space, arch, batch: int) -> dict:
    """Predicted latency at `batch` from a device profile (`profile`: a profile file (.json) or a device name),
    with the profile's expected error (None: unknown) and what the profile is."""
    from specialize.api.hardware import resolve_profile

    is_file = profile.endswith(".json") or Path(profile).is_file()
    resolved = (
        resolve_profile(None, space, profile_path=profile, batch=batch)
        if is_file
        else resolve_profile(profile, space, batch=batch)
    )
    return {
        "latency_ms": float(resolved.predict_ms(arch)),
        "latency_expected_error": resolved.expected_error,
        "latency_profile": resolved.label,
    }


def _render_totals(totals: dict, space: str, arch: str) -> None:
    console.print(f"[bold]{escape(space)}[/] {escape(arch)}", highlight=False)
    table = Table()
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("MACs", f"{totals['macs'] / 1e6:.2f} M")
    table.add_row("params", f"{totals['params'] / 1e6:.3f} M")
    table.add_row("bytes moved", f"{totals['bytes'] / 1e6:.2f} MB")
    table.add_row("intensity", f"{totals['intensity']:.2f} FLOPs/byte")
    table.add_row("peak activation", f"{totals['peak_activation_bytes'] / 1e6:.2f} MB")
    if "latency_ms" in totals:
        band = totals["latency_expected_error"]
        table.add_row(
            "predicted latency",
            f"{totals['latency_ms']:.3f} ms " + ("(±?)" if band is None else f"(±{100 * band:.0f}%)"),
        )
    console.print(table)
    console.print(MACS_NOTE, style="dim")


def _render_per_candidate(data: dict) -> None:
    table = Table(title=f"MACs (M) per layer and candidate, {data['space']}", box=None, pad_edge=False, padding=(0, 1))
    table.add_column("layer")
    for name in data["candidates"]:
        table.add_column(name.replace("se", "\nse"), justify="right")
    for layer, row in enumerate(data["macs"]):
        table.add_row(str(layer + 1), *(f"{v / 1e6:.1f}" for v in row))
    console.print(table)
    fixed = data["fixed"]
    console.print(
        f"fixed stem + head: {fixed['macs'] / 1e6:.2f} M MACs, {fixed['params'] / 1e6:.3f} M params "
        "(use --json for params, bytes and peak activation per candidate)"
    )
    console.print(MACS_NOTE, style="dim")
