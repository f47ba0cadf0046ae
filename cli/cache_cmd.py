"""`specialize cache`: where decoded datasets are cached, how large the cache is, and `--clear` to empty it."""
from __future__ import annotations

import typer

from cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    app.command("cache", help="Show where decoded image datasets are cached and their size; --clear empties the cache.")(cache)


@handle_errors
def cache(clear: bool = typer.Option(False, "--clear", help="Delete every cached decoded dataset.")) -> None:
    from supernet.data import cache_root, clear_cache, directory_bytes

    root = cache_root() / "datasets"
    if clear:
        freed = clear_cache()
        console.print(f"removed {root} ({freed / 1e6:.1f} MB freed)", markup=False, highlight=False)
        return
    entries = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    console.print(f"decoded-dataset cache: {root} ({directory_bytes(root) / 1e6:.1f} MB in {len(entries)} entries; "
                  f"set SPECIALIZE_CACHE to move it, `specialize cache --clear` to empty it)", markup=False, highlight=False)
