"""User-facing errors: the CLI prints the message on one line and exits with code 2.

A message that names an option spells it the way the caller gave it: `--max-flops 45M` on the command line,
`max_flops='45M'` from Python. Library code names options with `option()`; the CLI's commands run inside
`command_line_spelling()`.
"""

import contextlib
import re
import contextvars
from typing import Iterator

_COMMAND_LINE = contextvars.ContextVar("specialize_command_line_spelling", default=False)
_NO_VALUE = object()


@contextlib.contextmanager
def command_line_spelling() -> Iterator[None]:
    """Inside it (the CLI's commands), messages name options as flags."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def option(name: str, value: object = _NO_VALUE) -> str:
    """The option `name` (its Python keyword, e.g. 'max_flops') as the caller wrote it, with `value` if given
    (`True` for a flag: `--force` on the command line, `force=True` from Python)."""
    if _COMMAND_LINE.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is _NO_VALUE or value is True else f"{flag} {value}"  # True: a flag, `--force`
    return name if value is _NO_VALUE else f"{name}={value!r}"


class SpecializeError(Exception):
    """Bad input that the user can fix: the message says what is wrong and what is valid."""


class InfeasibleError(SpecializeError):
    """No architecture in the space satisfies the bounds; `limits` says what the space can reach."""

    def __init__(self, message: str, limits: dict | None = None):
        super().__init__(message)
        self.limits = limits or {}


ANSI_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)")


def printable(text: str) -> str:
    """`text` with terminal escape sequences removed and any other control or format character made a space: what
    an error message may carry to the terminal, whoever wrote it (a library's message holds bold codes)."""
    import unicodedata

    text = ANSI_SEQUENCE.sub("", text)
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control or format character (an escape sequence, a bell, a bidi override): a
    string from a file that would reach the terminal as a command, not as text. Loaders refuse such names."""
    import unicodedata

    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)
