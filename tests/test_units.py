"""Strict parsing of the quantities users type, and parse(format(x)) round trips."""

import math

import pytest
from hypothesis import given, strategies as st

from specialize.errors import SpecializeError
from specialize.units import (
    format_bytes,
    format_count,
    format_ratio,
    format_time_ms,
    parse_bytes,
    parse_count,
    parse_ratio,
    parse_time_ms,
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("300M", 300e6),
        ("4.2M", 4.2e6),
        ("32.8M", 32.8e6),
        ("1.5G", 1.5e9),
        ("250k", 250e3),
        ("250K", 250e3),
        ("1e6", 1e6),
        ("42", 42.0),
        (" 7 M ", 7e6),
    ],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize(
    "text, ms",
    [("20ms", 20.0), ("500us", 0.5), ("500µs", 0.5), ("0.02s", 20.0), ("20", 20.0), (20, 20.0), ("1.5 s", 1500.0)],
)
def test_parse_time_is_milliseconds_and_bare_numbers_are_ms(text, ms):
    assert parse_time_ms(text) == pytest.approx(ms, rel=1e-12)


@pytest.mark.parametrize(
    "text, nbytes",
    [
        ("2M", 2e6),
        ("2MB", 2e6),
        ("2MiB", 2 * 2**20),
        ("512k", 512e3),
        ("512KiB", 512 * 1024),
        ("100", 100.0),
        ("1GB", 1e9),
        ("3B", 3.0),
    ],
)
def test_parse_bytes(text, nbytes):
    assert parse_bytes(text) == nbytes


@pytest.mark.parametrize(
    "parse, text, words",
    [
        (parse_count, "300m", "ambiguous"),
        (parse_count, "300 MB", "unknown unit"),
        (parse_count, "-5M", "non-negative"),
        (parse_count, "", "expected"),
        (parse_count, "1.2.3M", "expected"),
        (parse_count, "nan", "expected"),
        (parse_count, float("inf"), "finite"),
        (parse_time_ms, "20 min", "unknown unit"),
        (parse_time_ms, "ms", "expected"),
        (parse_bytes, "2Mb", "unknown unit"),
        (parse_ratio, "80x", "unknown unit"),
        (parse_count, True, "expected"),
    ],
)
def test_malformed_values_raise_a_clear_error(parse, text, words):
    with pytest.raises(SpecializeError, match=words):
        parse(text)


def test_display_formatting():
    assert format_count(32774144, 3) == "32.8M"
    assert format_time_ms(0.5) == "500.0us" and format_time_ms(1500.0) == "1.5s" and format_time_ms(20.0) == "20ms"
    assert format_bytes(2_000_000) == "2MB"


whole = st.integers(min_value=0, max_value=10**15)
real = st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False)


@given(whole)
def test_whole_counts_and_bytes_round_trip_exactly(n):
    assert parse_count(format_count(n)) == n
    assert parse_bytes(format_bytes(n)) == n


@given(real)
def test_real_values_round_trip(x):
    for parse, fmt in (
        (parse_count, format_count),
        (parse_bytes, format_bytes),
        (parse_time_ms, format_time_ms),
        (parse_ratio, format_ratio),
    ):
        assert math.isclose(parse(fmt(x)), x, rel_tol=1e-12, abs_tol=1e-300)


@given(real)
def test_numpy_numbers_parse_like_python_ones(x):
    """A bound computed with numpy (np.float64 is a float whose repr is 'np.float64(...)') parses as its value."""
    import numpy as np

    for parse in (parse_count, parse_bytes, parse_time_ms, parse_ratio):
        assert parse(np.float64(x)) == parse(x)
    assert parse_count(np.int64(42)) == parse_count(42)
