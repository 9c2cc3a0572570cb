"""Where a NaN or inf in a learner's arrays came from.

The learner's function runs under ``np.errstate(divide="call", over="call", invalid="call")``:
numpy then calls ``watched_call``'s recorder instead of warning (the results are the same) and
the caller's state comes back on exit. Each flag is recorded once per line of the learner's
code (the innermost frame outside numpy and gradparity), in the order raised:

    divide     x/0 = ±inf, log(0) = -inf
    invalid    0/0, inf/inf, inf - inf, 0 × inf, the log of a negative number: NaN
    overflow   a result beyond the largest float: inf (exp of a large argument); often
               harmless, as in 1/(1 + exp(-z)) = 0

A quantity that is not finite is traced to the first of the learner's arrays that is not, in
the order they are computed: A1 ... AL, then the cost, or for a gradient (the cost feeds none)
dA[L] and from the output down dA[l-1], dW[l], db[l]. Its cause is the first divide or invalid
flag (for a gradient the first on a line without a log, where there is one: the cost's logs
run before the backward pass and feed nothing in it), else the first overflow.
"""

from __future__ import annotations

import linecache
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from gradparity.core.mistakes import Mistake

FLAGS = {"divide by zero": "divide", "invalid value": "invalid", "overflow": "overflow"}
OURS = ("numpy", "gradparity")  # frames of these packages are not the learner's
MAX_EVENTS = 64  # distinct (flag, line) pairs kept; a learner's function raises a handful
LOG_CALL = re.compile(r"\blog(1p|2|10)?\s*\(")
DIVISION = re.compile(r"/|divide|reciprocal")
CAUSES = {("divide", "log"): ("log-of-0", "a log of 0 (log 0 = -inf)"),
          ("invalid", "log"): ("log-of-negative", "a log of a negative number (NaN)"),
          ("divide", "division"): ("division-by-zero", "a division by zero (x/0 = inf)"),
          ("invalid", "division"): ("division-0/0", "a division 0/0 or inf/inf (NaN)"),
          ("divide", "other"): ("division-by-zero", "a division by zero (inf)"),
          ("invalid", "other"): ("invalid", "an operation without a value, such as inf - inf or 0 × inf (NaN)")}
OVERFLOW = ("overflow", "an overflow (a result beyond the largest float is inf; exp of a large argument gives it)")


@dataclass(frozen=True)
class FloatingPointEvent:
    """One of numpy's floating-point flags (divide, invalid, overflow), first raised on this
    line of the learner's code."""

    flag: str
    file: str
    line: int
    text: str

    def where(self) -> str:
        """``file.py:12: dAL = -(np.divide(AL, Y) - ...)``."""
        return f"{Path(self.file).name}:{self.line}: {self.text}"

    def cause(self) -> tuple[str, str]:
        """The pattern and the words for what raised the flag, read from the flag and the line."""
        if self.flag == "overflow":
            return OVERFLOW
        return CAUSES[self.flag, operation(self.text)]


def operation(text: str) -> str:
    """What a line of code does that can raise divide or invalid: ``log`` (a call of log, log1p,
    log2, log10), else ``division`` (``/``, divide, reciprocal), else ``other``."""
    if LOG_CALL.search(text):
        return "log"
    if DIVISION.search(text):
        return "division"
    return "other"


def watched_call(function: Callable, *args: object) -> tuple[Any, list[FloatingPointEvent]]:
    """``function(*args)`` and the floating-point events it raised, first per flag and line,
    in order; numpy's error state and callback are restored afterwards, exception or not."""
    events: dict[tuple[str, str, int], FloatingPointEvent] = {}

    def record(message: str, _code: int) -> None:
        flag = FLAGS.get(message)
        if flag is None or len(events) >= MAX_EVENTS:
            return
        file, line = learner_site(sys._getframe(1))
        events.setdefault((flag, file, line), FloatingPointEvent(flag, file, line, linecache.getline(file, line).strip()))

    with np.errstate(call=record, divide="call", over="call", invalid="call"):
        result = function(*args)
    return result, list(events.values())


def learner_site(frame: FrameType | None) -> tuple[str, int]:
    """The file and line of the innermost frame from ``frame`` outward that is neither numpy's
    nor gradparity's."""
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] in OURS:
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("<unknown>", 0)


def computation_order(depth: int) -> list[str]:
    """``A1 ... AL, cost, dA[L]``, then from the output down ``dA[l-1], dW[l], db[l]``."""
    order = [*(f"A{layer}" for layer in range(1, depth + 1)), "cost", f"dA{depth}"]
    for layer in range(depth, 0, -1):
        order += [f"dA{layer - 1}", f"dW{layer}", f"db{layer}"]
    return order


@dataclass
class Trail:
    """The learner's arrays (the cost, the gradients and whatever else it returned of A[l] and
    dA[l]) in the order they are computed, and the floating-point events its function raised."""

    arrays: list[tuple[str, np.ndarray]]
    events: list[FloatingPointEvent]

    @classmethod
    def of(cls, cost: float | None, arrays: Mapping[str, np.ndarray], depth: int,
           events: list[FloatingPointEvent]) -> Trail:
        given = {**({} if cost is None else {"cost": np.asarray(cost)}), **arrays}
        return cls([(name, given[name]) for name in computation_order(depth) if name in given], events)

    def origin(self, quantity: str) -> str | None:
        """The first array that is not finite on the way to ``quantity``: the forward pass, then
        the cost for the cost, the backward pass for a gradient."""
        part = ("cost",) if quantity == "cost" else ("dA", "dW", "db")
        on_the_way = [(name, array) for name, array in self.arrays if name.startswith(("A", *part))]
        return next((name for name, array in on_the_way if not np.isfinite(array).all()), None)

    def cause(self, backward: bool) -> FloatingPointEvent | None:
        """The event that made the first NaN or inf: the first divide or invalid flag (in the
        backward pass the first on a line without a log, where there is one), else the first
        overflow; None when numpy raised none."""
        made = [event for event in self.events if event.flag != "overflow"]
        if backward:
            made = [event for event in made if not LOG_CALL.search(event.text)] or made
        candidates = made or self.events
        return candidates[0] if candidates else None

    def explain(self, quantity: str, mistake: Mistake) -> Mistake:
        """``mistake`` itself unless it is a NaN or inf; then it says where it first appears
        among the learner's arrays and what made it, quoting the line."""
        if mistake.pattern != "not-finite":
            return mistake
        origin = self.origin(quantity) or quantity
        where = "" if origin == quantity else f"; of your arrays, in the order they are computed, they first appear in {origin}"
        event = self.cause(backward=origin.startswith("d"))
        if event is None:
            return Mistake(mistake.pattern, f"{mistake.hint}{where}; numpy raised no divide, invalid or overflow flag "
                                            "in your function: they were put there as they are")
        pattern, words = event.cause()
        return Mistake(pattern, f"{mistake.hint}{where}, from {words} at {event.where()}")
