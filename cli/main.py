"""The `specialize` command: each module below parses, calls one library function, and renders."""

from __future__ import annotations

import sys

import typer

from cli import cache_cmd, export_cmd, offline_cmd, profile_cmd, search_cmd, space_cmd, train_cmd
from cli.common import OneLineErrors

app = typer.Typer(
    help="Train once, specialize in seconds, deploy anywhere.\n\n"
    "Example that binds on the embedded default (`specialize spaces` prints its MACs range): "
    "specialize --device jetson --max-flops 45M --export model.onnx",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
app.callback(invoke_without_command=True)(search_cmd.root)
search_cmd.register(app)
space_cmd.register(app)
export_cmd.register(app)
train_cmd.register(app)
profile_cmd.register(app)
cache_cmd.register(app)
offline_cmd.register(app)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # a terminal or pipe that cannot encode every character (PYTHONIOENCODING=ascii, LANG=C) gets '?' for the
        # ones it lacks (±, →) instead of a UnicodeEncodeError traceback
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    app()


if __name__ == "__main__":
    main()
