"""Timing one training step in a worker, for ``gradparity bench``. Per mode:

    first      the first call alone (a compiled mode compiles here)
    warm-up    ``WARMUP_CALLS`` more calls
    n          the smallest power of two whose n calls last at least ``MIN_SAMPLE_S``
    samples    ``repeats`` timings of n calls; one step = sample / n seconds
    reported   median, min and max of the per-step samples; compile = first - median step
               (compiled modes only)
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable

MIN_SAMPLE_S = 0.02
WARMUP_CALLS = 2


@dataclass
class Timing:
    """Per-step seconds of each sample (n steps timed together, divided by n) and the first call."""

    first_s: float
    samples: list[float]
    steps_per_sample: int

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples)


def time_step(step: Callable[[], None], repeats: int, min_sample_s: float = MIN_SAMPLE_S) -> Timing:
    """Time the first call of ``step`` alone, warm up, calibrate n (see the module docstring) and
    take ``repeats`` samples of n calls; the garbage collector is off while timing, as in timeit."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        first = _elapsed(step, 1)
        _elapsed(step, WARMUP_CALLS)
        n = _calls_per_sample(step, min_sample_s)
        return Timing(first, [_elapsed(step, n) / n for _ in range(repeats)], n)
    finally:
        if collecting:
            gc.enable()


def _elapsed(step: Callable[[], None], calls: int) -> float:
    """Seconds of ``calls`` consecutive calls of ``step``."""
    start = time.perf_counter()
    for _ in range(calls):
        step()
    return time.perf_counter() - start


def _calls_per_sample(step: Callable[[], None], min_sample_s: float) -> int:
    """The smallest power of two n whose n calls last at least ``min_sample_s``."""
    n = 1
    while _elapsed(step, n) < min_sample_s:
        n *= 2
    return n


def measured(mode: str, timing: Timing) -> dict:
    """One mode's timings as a result entry; compile_s = first call - median step (compiled only)."""
    median = timing.median_s
    return {"mode": mode, "median_s": median, "min_s": min(timing.samples), "max_s": max(timing.samples),
            "compile_s": timing.first_s - median if mode == "compiled" else None,
            "steps_per_sample": timing.steps_per_sample, "note": None}


def unmeasured(mode: str, note: str) -> dict:
    """A mode that was not timed, with the reason."""
    return {"mode": mode, "median_s": None, "min_s": None, "max_s": None, "compile_s": None,
            "steps_per_sample": None, "note": note}
