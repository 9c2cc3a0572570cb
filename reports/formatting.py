"""How every figure and count in the reports and the terminal reads: one function per kind of
value, each with an em dash (or its own word) for a missing one, so that a relative error, a
time or a plural is written the same way in the Markdown, the HTML, the plots and the terminal."""

from __future__ import annotations

import math

from gradparity.core.record import finite

MISSING = "—"  # a value not measured, in a table cell or a sentence
UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 backend``, ``3 backends``; ``words`` where adding an s is wrong (``entries``)."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {words or word + 's'}"


def number(x: float | None) -> str:
    """A cost or a parameter as it is, in up to ten significant digits."""
    x = finite(x)
    if x is None:
        return MISSING
    return f"{x:.10g}"


def sci(x: float | None, digits: int = 1) -> str:
    """An error or a tolerance in scientific notation, ``digits`` after the point: ``2.2e-16``; 0 as ``0``."""
    x = finite(x)
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    return f"{x:.{digits}e}"


def relative(x: float) -> str:
    """A relative error in words: ``6.3e-01 relative``."""
    return f"{x:.1e} relative"


def significant(x: float, digits: int = 1) -> str:
    """``x`` with ``digits`` significant digits and no padding in the exponent: 2.2e-8, 6e-1."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def two_digits(x: float | None) -> str:
    """A figure in two significant digits (``0.75``, ``3.4e15``); ``inf`` for a missing one
    (NaN, infinite, no value)."""
    x = finite(x)
    if x is None:
        return "inf"
    return f"{x:.2g}".replace("e+", "e").replace("e-0", "e-")


def ulps(x: float | None) -> str:
    """A difference in units of the dtype's eps: ``3.5``, ``1,024``, ``2.8e+15``."""
    x = finite(x)
    if x is None:
        return MISSING
    if x < 10:
        return f"{x:.1f}"
    if x < 1e5:
        return f"{x:,.0f}"
    return f"{x:.1e}"


def cosine(c: float | None) -> str:
    """Cosine similarity; near 1 written as 1 − (1 − c), the informative part."""
    c = finite(c)
    if c is None:
        return MISSING
    if c == 1:
        return "1"
    if 0.999 < c < 1:
        return f"1 − {1 - c:.1e}"
    return f"{c:.4f}"


def multiple(x: float | None, of: float) -> str:
    """``x`` as a multiple of ``of``: ``0.31×``, ``42×``, ``4.2e+08×``."""
    x = finite(x)
    if x is None or not of:
        return MISSING
    ratio = x / of
    if ratio < 10:
        return f"{ratio:.2g}×"
    if ratio < 1e5:
        return f"{ratio:,.0f}×"
    return f"{ratio:.1e}×"


def tolerance_share(share: float) -> str:
    """The share of its tolerance a quantity used: ``inf``, ``<0.01``, ``0.07``, ``42``, ``3e6``."""
    if math.isinf(share):
        return "inf"
    if share < 0.01:
        return "<0.01"
    if share < 100:
        return f"{share:.2g}"
    return significant(share)


def factor(x: float) -> str:
    """How many times: three significant digits below 1.1 (so that 1.04 does not read 1.0), two
    below 10, none after the point from there on: ``1.04``, ``8.6``, ``240``."""
    if x < 1.1:
        return f"{x:.3g}"
    if x < 10:
        return f"{x:.2g}"
    return f"{x:,.0f}"


def seconds(value: float | None, unit: str | None = None, digits: int = 3) -> str:
    """A time in ``digits`` significant digits (all of its whole part from ``10 ** digits`` on),
    in ``unit`` (``s``, ``ms``, ``µs``, ``ns``) or else the largest of them that ``value`` is
    at least one of: ``12.3 µs``, ``4.56 ms``, ``72.4 s``, ``1,234 s``; ``0 s`` for none at
    all, an em dash for None."""
    if value is None:
        return MISSING
    if unit is None:
        unit = _unit(value)
    scaled = value / dict(UNITS)[unit]
    if abs(scaled) >= 10 ** digits:
        return f"{scaled:,.0f} {unit}"
    return f"{scaled:.{digits}g} {unit}"


def _unit(value: float) -> str:
    """The largest of s, ms, µs, ns that ``value`` (seconds) is at least one of; s for 0."""
    if value == 0:
        return "s"
    return next((unit for unit, scale in UNITS if abs(value) >= scale), "ns")


def seconds_range(low: float | None, high: float | None) -> str:
    """``353–356 µs``: both ends in the unit of the higher; an em dash for None."""
    if low is None or high is None:
        return MISSING
    unit = _unit(high)
    return f"{seconds(low, unit).split()[0]}–{seconds(high, unit)}"


def index(position: list[int]) -> str:
    """An element's index as Python writes a tuple: ``(1, 0)``, ``(3,)``; an em dash for none."""
    if not position:
        return MISSING
    if len(position) == 1:
        return f"({position[0]},)"
    return "(" + ", ".join(map(str, position)) + ")"


def optional(value: object | None) -> str:
    """A value as text, an em dash for None."""
    if value is None:
        return MISSING
    return str(value)
