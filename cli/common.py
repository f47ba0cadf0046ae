"""What every command shares: consoles, the one-line error contract (exit code 2), option parsing."""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer
from rich.console import Console
from rich.text import Text

from specialize.errors import SpecializeError

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """One line on stderr, exit 2. The message is plain text: brackets in paths or names are never markup."""
    line = " ".join(str(message).split())   # one line, whatever the message held
    err_console.print(Text.assemble(("error:", "bold red"), " ", line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def handle_errors(fn: Callable) -> Callable:
    """Turn a SpecializeError (bad user input) into one clear line on stderr and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecializeError as exc:
            fail(str(exc))
        except OSError as exc:  # a file the user cannot read or write: the readers name most of them
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"cannot access{where}: {exc.strerror or exc}")
        except RecursionError:
            fail("input nested too deeply to read")
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130)
    return wrapper


def print_json(data: Any) -> None:
    """Strict JSON on stdout: a NaN or infinity is refused (exit 2), never printed as `Infinity`."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        raise SpecializeError("the result holds a non-finite number (NaN or infinity), which JSON cannot carry") from None
    sys.stdout.write(text + "\n")
