"""User-facing errors: the CLI prints the message on one line and exits with code 2."""


class SpecializeError(Exception):
    """Bad input that the user can fix: the message says what is wrong and what is valid."""


class InfeasibleError(SpecializeError):
    """No architecture in the space satisfies the bounds; `limits` says what the space can reach."""

    def __init__(self, message: str, limits: dict | None = None):
        super().__init__(message)
        self.limits = limits or {}


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control or format character (an escape sequence, a bell, a bidi override): a
    string from a file that would reach the terminal as a command, not as text. Loaders refuse such names."""
    import unicodedata

    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)
