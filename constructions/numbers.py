"""Exact numbers as they appear in the JSON formats.

A JSON number means exactly the decimal text written (``0.1`` is 1/10, not the double
nearest to it); a JSON string ``"p/q"`` (or a decimal in a string) is the rational it
spells. Floats read from binary weight files are taken as the exact rationals they denote.
Every malformed number raises :class:`InputError` naming where it was found.
"""

from __future__ import annotations

import math
import re
import sys
from contextlib import contextmanager
from fractions import Fraction
from typing import Iterator

from promptlimits.constructions.errors import InputError

#: Longest accepted text of one number, and largest accepted decimal exponent. Both keep a
#: hostile file from making a single Fraction with millions of digits.
MAX_NUMBER_CHARS = 400
MAX_EXPONENT = 400

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_RATIO = re.compile(r"[+-]?\d+/[+-]?\d+")


class JsonDecimal(str):
    """The text of a JSON number literal, kept verbatim until it is read as a rational."""


class NonFiniteLiteral(str):
    """A JSON ``NaN`` / ``Infinity`` / ``-Infinity`` literal (never a valid number here)."""


def parse_exact(value: object, where: str) -> Fraction:
    """Return the exact rational that ``value`` denotes, or raise InputError.

    Accepted: ints, :class:`JsonDecimal` texts, Fractions, finite floats (exact binary
    value) and strings holding a decimal or ``p/q``. Rejected with a one-line reason:
    booleans, None, NaN/Infinity, ``q = 0``, non-numeric text, lists and objects.
    """
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got a boolean")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        if value.bit_length() > 4 * MAX_NUMBER_CHARS:
            raise InputError(f"{where}: integer too large")
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: {value!r} is not a finite number")
        return Fraction(value)
    if isinstance(value, NonFiniteLiteral):
        raise InputError(f"{where}: {value} is not a finite number")
    if isinstance(value, str):
        return _parse_text(value.strip(), where)
    if value is None:
        raise InputError(f"{where}: expected a number, got null")
    kind = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    raise InputError(f"{where}: expected a number, got {kind}")


def _parse_text(text: str, where: str) -> Fraction:
    shown = text if len(text) <= 40 else text[:37] + "..."
    if len(text) > MAX_NUMBER_CHARS:
        raise InputError(f"{where}: number text longer than {MAX_NUMBER_CHARS} characters")
    if _RATIO.fullmatch(text):
        num, den = text.split("/")
        if int(den) == 0:
            raise InputError(f"{where}: {shown!r} divides by zero")
        return Fraction(int(num), int(den))
    match = _DECIMAL.fullmatch(text)
    if match is None:
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise InputError(f"{where}: {shown!r} is not a finite number")
        raise InputError(f"{where}: {shown!r} is not a number (expected a decimal or 'p/q')")
    if match.group(3) is not None and abs(int(match.group(3)[1:])) > MAX_EXPONENT:
        raise InputError(f"{where}: exponent of {shown!r} is beyond +-{MAX_EXPONENT}")
    return Fraction(text)


@contextmanager
def unlimited_digits() -> Iterator[None]:
    """Lift CPython's 4300-digit cap on int ↔ str conversion while exact rationals of any size
    are written or read (inputs are bounded by the file readers' limits); the previous cap
    is restored afterwards. Also usable as a decorator."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


def is_binary64(x: Fraction) -> bool:
    """x is a binary64 number. Quick test: a power-of-two denominator ≤ 2^1022 with a
    numerator of at most 53 bits is one; otherwise round-trip through float exactly."""
    den = x.denominator
    if den & (den - 1) == 0 and den.bit_length() <= 1023 and abs(x.numerator).bit_length() <= 53:
        return True
    try:
        return Fraction(float(x)) == x
    except OverflowError:
        return False


def format_exact(x: Fraction) -> str:
    """Canonical exact text of a rational: ``"3"``, ``"-1/2"``."""
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def format_decimal(x: Fraction, digits: int = 30) -> str:
    """``x`` as a decimal with ``digits`` significant digits (display only, never decides)."""
    x = Fraction(x)
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    x = abs(x)
    exponent = len(str(x.numerator)) - len(str(x.denominator))
    if Fraction(10) ** exponent > x:
        exponent -= 1
    scaled = round(x * Fraction(10) ** (digits - 1 - exponent))
    if scaled >= 10**digits:
        scaled //= 10
        exponent += 1
    mantissa = str(scaled)
    text = f"{mantissa[0]}.{mantissa[1:]}".rstrip("0").rstrip(".")
    return f"{sign}{text}e{exponent}" if exponent else f"{sign}{text}"
