"""Rich renderings shared by commands (library code returns data; only the CLI draws)."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table


def _heat(value: float, lo: float, hi: float) -> str:
    """Colour from red (lo) to green (hi)."""
    t = 0.0 if hi <= lo else (value - lo) / (hi - lo)
    red, green = int(255 * (1 - t)), int(200 * t + 55)
    return f"rgb({red},{green},60)"


def accuracy_heatmap(table) -> Table:
    """Validation accuracy per layer (rows) and candidate (columns); the best per layer in bold. A `skip`
    cell on a layer that cannot be skipped shows "-" (its stored 0 is a placeholder the mask excludes)."""
    acc, allowed = table.accuracy, table.space.allowed_mask()
    title = escape(
        f"accuracy table · space {table.space.name} ({table.fingerprint}) · proxy "
        + ", ".join(f"{k}={v}" for k, v in table.proxy.items() if v is not None)
        + (" · batch norm frozen but the last layer and the head" if table.space.batch_norm == "frozen" else "")
    )
    grid = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold")
    grid.add_column("layer", justify="right", min_width=2, no_wrap=True)
    for name in table.space.candidate_names:
        grid.add_column(
            name.replace("se", "\nse") if name.endswith("se") else name, justify="right", min_width=4, no_wrap=True
        )
    shown = [v for row, ok in zip(acc, allowed) for v, o in zip(row, ok) if o]
    lo, hi = float(min(shown)), float(max(shown))
    for l, row in enumerate(acc):
        best = int(row.argmax())
        cells = [
            f"[{'bold ' if i == best else ''}{_heat(v, lo, hi)}]{100 * v:.1f}[/]" if allowed[l][i] else "-"
            for i, v in enumerate(row)
        ]
        grid.add_row(str(l + 1), *cells)
    grid.caption = escape(f"best architecture: {table.best_arch}")
    return grid
