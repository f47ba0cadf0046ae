"""What every command shares: consoles, the one-line error contract (exit code 2), option parsing."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer import Abort
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException  # typer 0.2x vendors click
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import ClickException

from specialize.api.offline import PICK_FINETUNE_LR_HELP
from specialize.errors import SpecializeError, command_line_spelling, printable

# the pick fine-tune's options, declared once for the main command's --export and for `specialize export`
PickFinetuneEpochs = Annotated[
    float,
    typer.Option(
        "--pick-finetune-epochs",
        help="Train the exported network alone first, this many epochs on every training image of --data (else of "
        "the table's training data): LP-FT, warm-up, clipped, cosine. Measured before and after; a printed band is "
        "checked against the pick before it.",
    ),
]
PickFinetuneLr = Annotated[
    Optional[float],
    typer.Option(
        "--pick-finetune-lr", help=f"With --pick-finetune-epochs: the peak learning rate ({PICK_FINETUNE_LR_HELP})."
    ),
]
PickFinetuneDistill = Annotated[
    float,
    typer.Option(
        "--pick-finetune-distill",
        help="With --pick-finetune-epochs: this share of the loss from the supernet's largest network's soft labels "
        "(knowledge distillation, as once-for-all fine-tunes a specialized network; 0: plain cross entropy).",
    ),
]

# how the precisions that convert the fp32 graph are named where an export is shown
PRECISION_FORMS = {"int8": "int8 QDQ", "fp16": "fp16 (half-precision ONNX)"}


def converted(precision: str, fmt: str) -> bool:
    """Whether the written file is the fp32 graph converted (int8 QDQ, or an fp16 ONNX file), not the graph itself."""
    return precision == "int8" or (precision == "fp16" and fmt == "onnx")


console = Console()
err_console = Console(stderr=True)


def pick_finetune_line(finetuned: dict) -> str:
    """What an export's fine-tune of the pick alone did, in one line."""
    return (
        f"trained alone {finetuned['epochs']:g} epochs ({finetuned['steps']} steps, batch {finetuned['batch_size']}, "
        f"peak lr {finetuned['lr']:g}, warm-up {finetuned['warmup']:g}, clipped at {finetuned['clip_grad']:g}"
        + (
            f", {finetuned['distill']:g} of the loss distilled from the largest network"
            if finetuned.get("distill")
            else ""
        )
        + ") on "
        f"{finetuned['images']} training images of {finetuned['data']}, batch norm {finetuned['batch_norm']}, "
        f"{finetuned['minutes']:.1f} min"
        + (f" (resumed at step {finetuned['resumed_at_step']})" if finetuned.get("resumed_at_step") else "")
        + f"; before it the pick measured {100 * finetuned['accuracy_before']:.2f}% on the same test images"
    )


def fail(message: str) -> None:
    """One line on stderr, exit 2. The message is plain text: brackets in paths or names are never markup."""
    line = " ".join(map(_shortened, printable(str(message)).split()))  # one printable line, whatever it held
    err_console.print(Text.assemble(("error:", "bold red"), " ", line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _shortened(word: str, keep: int = 300) -> str:
    """A word of the message cut to `keep` characters (a 400-digit number from a file once filled the screen)."""
    return word if len(word) <= keep else f"{word[:keep]}...({len(word):,} characters)"


def handle_errors(fn: Callable) -> Callable:
    """Turn a SpecializeError (bad user input) into one clear line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with command_line_spelling():
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
    """Strict JSON on stdout: a NaN or infinity is refused (exit 2), never printed as `Infinity`."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        raise SpecializeError(
            "the result holds a non-finite number (NaN or infinity), which JSON cannot carry"
        ) from None
    sys.stdout.write(text + "\n")


class OneLineErrors(TyperGroup):
    """Click's own usage errors (a missing option, `--batch abc`, a value below an option's `min`) follow the same
    contract as SpecializeError: one line on stderr and exit code 2, instead of a usage block and a panel."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command group: its help, as click prints it
                exc.show()
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            try:
                fail(exc.format_message() + hint)
            except typer.Exit as done:
                sys.exit(done.exit_code)
        except Abort:
            err_console.print("Aborted.", markup=False, highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
