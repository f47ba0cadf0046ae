"""What every command shares: consoles, the one-line error contract (exit code 2), option parsing."""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from typing import Any, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape

from specialize.errors import SpecializeError

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def handle_errors(fn: Callable) -> Callable:
    """Turn a SpecializeError (bad user input) into one clear line on stderr and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecializeError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130)
    return wrapper


@contextlib.contextmanager
def progress_status(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with updatable text on a terminal; off a terminal (logs, CI) one plain line per update
    (and none for the opening text, so an error stays the only line)."""
    if err_console.is_terminal:
        with err_console.status(escape(text)) as status:
            yield lambda update: status.update(escape(update))
        return
    yield lambda update: err_console.print(update, markup=False, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
