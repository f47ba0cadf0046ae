"""Strict parsing and formatting of the quantities users type: counts, times, bytes, ratios.

- counts (MACs, parameters): a number with an optional SI suffix k, M, G or T (k = 1e3, M = 1e6, ...):
  `300M`, `4.2M`, `1.5G`, `250000`. A lower-case `m` is refused (milli or mega?).
- times (latency): a number with a unit us (or µs), ms or s. A bare number means milliseconds.
  The result is in milliseconds: `20ms` -> 20.0, `500us` -> 0.5, `0.02s` -> 20.0.
- bytes (memory): a number with an optional unit: B, k/kB, M/MB, G/GB (decimal, 1 kB = 1000 B) or
  KiB, MiB, GiB (binary, 1 KiB = 1024 B). A bare number means bytes.
- ratios (compute intensity, FLOPs per byte): a plain non-negative number, no unit.

Parsing goes through `Decimal`, so `32.8M` is exactly 32,800,000. Every `format_*` writes a string its
`parse_*` reads back to the same value (exactly for whole numbers, to 1e-12 relative otherwise).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from specialize.errors import SpecializeError

COUNT_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
TIME_UNITS_MS = {"": Decimal(1), "ms": Decimal(1), "us": Decimal("0.001"), "µs": Decimal("0.001"), "s": Decimal(1000)}
BYTE_UNITS = {
    "": 1,
    "B": 1,
    "k": 10**3,
    "K": 10**3,
    "kB": 10**3,
    "KB": 10**3,
    "M": 10**6,
    "MB": 10**6,
    "G": 10**9,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_QUANTITY_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-zµ]*)\s*$", re.ASCII)
MAX_EXPONENT = 30  # 1e30 of anything is beyond every space; larger numbers overflow Decimal and float


def _split(text: str | float | int, what: str, example: str) -> tuple[Decimal, str]:
    """Split '4.2M' into (Decimal('4.2'), 'M'); reject signs, NaN, empty strings."""
    if isinstance(text, bool):
        raise SpecializeError(f"malformed {what} {text!r}: expected e.g. {example}")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise SpecializeError(f"malformed {what} {text!r}: expected a finite non-negative number, e.g. {example}")
        return _in_range(Decimal(repr(float(text))) if isinstance(text, float) else Decimal(text), text, what), ""
    match = _QUANTITY_RE.match(str(text))
    if not match:
        raise SpecializeError(f"malformed {what} {text!r}: expected a non-negative number and unit, e.g. {example}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        raise SpecializeError(f"malformed {what} {text!r}: expected e.g. {example}") from None
    return _in_range(number, text, what), match.group(2)


def _in_range(number: Decimal, text: object, what: str) -> Decimal:
    if number and number.adjusted() > MAX_EXPONENT:
        raise SpecializeError(f"{what} {text!r} is too large: at most 1e{MAX_EXPONENT}")
    return number


def _unit(units: dict, unit: str, text: object, what: str, hint: str):
    if unit not in units:
        valid = ", ".join(u for u in units if u) or "none"
        raise SpecializeError(f"malformed {what} {text!r}: unknown unit {unit!r}; valid units: {valid}{hint}")
    return units[unit]


def parse_count(text: str | float | int) -> float:
    """`300M` -> 300000000.0 (MACs, parameters)."""
    number, unit = _split(text, "count", "300M, 4.2M, 1.5G or 250k")
    hint = " (a lower-case m is ambiguous: write M for millions)" if unit == "m" else ""
    return float(number * _unit(COUNT_UNITS, unit, text, "count", hint))


def parse_time_ms(text: str | float | int) -> float:
    """`20ms` -> 20.0, `500us` -> 0.5, `0.02s` -> 20.0; a bare number is milliseconds."""
    number, unit = _split(text, "time", "20ms, 500us or 0.02s")
    return float(number * _unit(TIME_UNITS_MS, unit, text, "time", ""))


def parse_bytes(text: str | float | int) -> float:
    """`2M` / `2MB` -> 2000000.0, `2MiB` -> 2097152.0; a bare number is bytes."""
    number, unit = _split(text, "size in bytes", "2M, 512kB or 1.5MiB")
    return float(number * _unit(BYTE_UNITS, unit, text, "size in bytes", ""))


def parse_ratio(text: str | float | int) -> float:
    """A plain non-negative number (compute intensity in FLOPs per byte)."""
    number, unit = _split(text, "ratio", "80 or 12.5")
    return float(number * _unit({"": 1}, unit, text, "ratio", ""))


def _format(value: float, units: list[tuple[str, float]], digits: int | None) -> str:
    """Pick the largest unit that keeps the number >= 1; `digits` None means exact (round-trips)."""
    if not math.isfinite(value) or value < 0:
        raise SpecializeError(f"cannot format {value!r}: expected a finite non-negative number")
    name, scale = units[0]
    for unit_name, unit_scale in units:
        if abs(value) >= unit_scale:
            name, scale = unit_name, unit_scale
    if digits is not None:
        return f"{value / scale:.{digits}g}{name}"
    if float(value).is_integer():
        text = format(Decimal(int(value)).scaleb(-round(math.log10(scale))).normalize(), "f")
    else:
        text = repr(value / scale)
    return f"{text}{name}"


def format_count(value: float, digits: int | None = None) -> str:
    """300000000 -> '300M'; `digits` rounds to that many significant digits for display."""
    return _format(value, [("", 1), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)], digits)


def format_bytes(value: float, digits: int | None = None) -> str:
    """Decimal units: 2000000 -> '2MB'."""
    return _format(value, [("B", 1), ("kB", 1e3), ("MB", 1e6), ("GB", 1e9)], digits)


def format_time_ms(value_ms: float, digits: int | None = None) -> str:
    """Milliseconds to text: 20.0 -> '20ms', 0.5 -> '500us', 1500.0 -> '1.5s'."""
    if 0.0 < value_ms < 1.0:
        us = value_ms * 1000
        return (f"{us:.{digits}g}" if digits is not None else repr(us)) + "us"
    return _format(value_ms, [("ms", 1), ("s", 1000)], digits)


def format_ratio(value: float, digits: int | None = None) -> str:
    return f"{value:.{digits}g}" if digits is not None else repr(float(value))
