"""`specialize cache`: where decoded datasets are cached, how large the cache is, and `--clear` to empty it."""

from __future__ import annotations

import typer

from cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    app.command(
        "cache", help="Show where decoded image datasets are cached and their size; --clear empties the cache."
    )(cache)


@handle_errors
def cache(clear: bool = typer.Option(False, "--clear", help="Delete every cached decoded dataset.")) -> None:
    from specialize.api import offline

    if clear:
        root, freed = offline.clear_cache()
        console.print(f"removed {root} ({freed / 1e6:.1f} MB freed)", markup=False, highlight=False)
        return
    root, used, entries = offline.cache_summary()
    console.print(
        f"decoded-dataset cache: {root} ({used / 1e6:.1f} MB in {entries} entries; "
        f"set SPECIALIZE_CACHE to move it, `specialize cache --clear` to empty it)",
        markup=False,
        highlight=False,
    )
