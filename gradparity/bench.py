"""The bench driver: the wall time of ONE full training step (forward, backward, parameter
update) per backend and mode, against the NumPy reference measured in the same run.

Each backend runs in its own worker process (``gradparity.backends.worker``, job ``bench``),
one backend at a time and every one with the same thread count. The cases are built once, here,
and reach the workers as a run's cases do (large arrays as files they map), so a worker imports
nothing but its framework; how a worker times a step is in ``gradparity.backends.timing``. The
ratio of a mode (``ratio_to_reference``) is its median over the median of the reference (numpy,
eager): above 1 the mode is slower than the reference, below 1 faster. The table and the report say it in words, ``2× slower`` or
``1.6× faster`` (``gradparity.reports.digest.speed_text``).

Only NumPy and the standard library are imported here; frameworks live in the workers.
"""

from __future__ import annotations

import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from gradparity import venvs
from gradparity.backends import REGISTRY, entry, resolve
from gradparity.backends.timing import MIN_SAMPLE_S, unmeasured
from gradparity.backends.worker import MALLOC_ENVIRONMENT
from gradparity.core.cases import BENCH_SHAPES, Case
from gradparity.core.errors import GradparityError
from gradparity.core.network import check_dtype
from gradparity.core.results import BENCH_SCHEMA, BenchDocument
from gradparity.environment import fingerprint
from gradparity.runner import BackendOutcome, Progress, WorkerRun, run_backends

MODES = ("eager", "compiled")
REFERENCE = "numpy"
NOT_TIMED = ("finite-diff",)
DEFAULT_REPEATS = 7
DEFAULT_TIMEOUT = 1800.0
BANDWIDTH_BYTES = 256 * 2**20


class BenchError(GradparityError):
    """Bad input to ``gradparity bench`` (unknown shape, repeats or threads below 1)."""


def bench_cases(shapes: list[str], dtypes: list[str]) -> list[Case]:
    """Every shape in every dtype, shape-major, each a ``Case`` named by its shape; BenchError
    for an unknown shape."""
    for shape in shapes:
        if shape not in BENCH_SHAPES:
            raise BenchError(f"unknown shape {shape!r}; choose from {', '.join(BENCH_SHAPES)}")
    for dtype in dtypes:
        check_dtype(dtype)
    return [replace(BENCH_SHAPES[shape](dtype), name=shape) for shape in shapes for dtype in dtypes]


def backend_names(asked: list[str] | None) -> list[str]:
    """The reference first, then the asked backends (default: every one that trains)."""
    names = resolve(asked) if asked else [name for name in REGISTRY if name not in NOT_TIMED]
    return [REFERENCE, *(name for name in names if name != REFERENCE)]


def run_bench(cases: list[Case], names: list[str], threads: int, repeats: int, device: str,
              timeout: float, progress: Progress | None = None) -> dict[str, BackendOutcome]:
    """Time every case on every backend, one worker at a time, each with ``threads`` threads.
    The reference always runs on the CPU; the other backends on ``device``."""
    settings = {"threads": threads, "job": "bench", "bench": {"repeats": repeats}}
    entries = venvs.prepared({name: entry(name) for name in names})
    reference = {REFERENCE: entries.pop(REFERENCE)}
    outcomes = run_backends(WorkerRun(cases, {**settings, "device": "cpu"}, timeout), reference, progress)
    outcomes.update(run_backends(WorkerRun(cases, {**settings, "device": device}, timeout), entries, progress))
    return outcomes


def mode_entries(outcome: BackendOutcome, index: int) -> list[dict]:
    """The per-mode entries of case ``index`` on one backend, or every mode with the reason it failed."""
    if outcome.status != "ok":
        return [unmeasured(mode, outcome.reason) for mode in MODES]
    if index in outcome.errors:
        return [unmeasured(mode, outcome.errors[index]) for mode in MODES]
    return outcome.outputs[index][0]


def result_rows(cases: list[Case], outcomes: dict[str, BackendOutcome]) -> list[dict]:
    """One entry per shape, dtype, backend and mode, with the ratio of its median to the reference's
    (``ratio_to_reference``, backend / reference: above 1 slower than the reference)."""
    rows = []
    for index, case in enumerate(cases):
        reference = next((e["median_s"] for e in mode_entries(outcomes[REFERENCE], index) if e["mode"] == "eager"),
                         None)
        for name, outcome in outcomes.items():
            for entry in mode_entries(outcome, index):
                median = entry["median_s"]
                ratio = median / reference if median is not None and reference else None
                rows.append({"shape": case.name, "dtype": case.dtype, "backend": name, **entry,
                             "ratio_to_reference": ratio})
    order = ("shape", "dtype", "backend", "mode", "median_s", "min_s", "max_s", "compile_s", "ratio_to_reference",
             "note", "steps_per_sample")
    return [{key: row[key] for key in order} for row in rows]


def read_bandwidth(threads: int, nbytes: int = BANDWIDTH_BYTES, repeats: int = DEFAULT_REPEATS) -> float:
    """Achievable read bandwidth in bytes/s: a float64 array of ``nbytes`` split into ``threads``
    contiguous parts, each summed by its own thread (NumPy releases the GIL); the median of
    ``repeats`` timings after one warm-up pass."""
    parts = np.array_split(np.ones(nbytes // 8), threads)
    with ThreadPoolExecutor(threads) as pool:
        def read() -> float:
            start = time.perf_counter()
            list(pool.map(np.sum, parts))
            return time.perf_counter() - start

        read()
        return nbytes / statistics.median(read() for _ in range(repeats))


def bandwidth_limits(cases: list[Case], rows: list[dict], bandwidth: float) -> list[dict]:
    """For each signs case: floor = 2 X.nbytes / bandwidth (X read in the forward W1 X and in the
    backward dZ1 X^T), the reference's median step and the fastest one, as fractions of the floor."""
    limits = []
    for case in (case for case in cases if case.name == "signs"):
        x_bytes = case.X.nbytes
        timed = [r for r in rows if (r["shape"], r["dtype"]) == (case.name, case.dtype) and r["median_s"] is not None]
        floor = 2 * x_bytes / bandwidth
        reference = next((r for r in timed if r["backend"] == REFERENCE), None)
        fastest = min(timed, key=lambda r: r["median_s"], default=None)
        limits.append({"shape": case.name, "dtype": case.dtype, "x_bytes": x_bytes, "floor_s": floor,
                       "reference_s": reference and reference["median_s"],
                       "fastest": fastest and f"{fastest['backend']} {fastest['mode']}",
                       "fastest_s": fastest and fastest["median_s"]})
    return limits


def bench_document(cases: list[Case], outcomes: dict[str, BackendOutcome], threads: int, repeats: int,
                   device: str, with_bandwidth: bool) -> BenchDocument:
    """The ``gradparity-bench/1`` document of a run: environment, one row per shape, dtype,
    backend and mode, and with ``with_bandwidth`` the read bandwidth and the signs limits."""
    rows = result_rows(cases, outcomes)
    document = {"schema": BENCH_SCHEMA,
                "environment": {**fingerprint(outcomes, device, False).to_dict(), "threads": threads, "repeats": repeats,
                                "min_sample_s": MIN_SAMPLE_S,
                                "malloc": MALLOC_ENVIRONMENT if platform.libc_ver()[0] == "glibc" else None},
                "results": rows, "bandwidth": None}
    if with_bandwidth:
        bandwidth = read_bandwidth(threads)
        document["bandwidth"] = {"read_bytes_per_s": bandwidth, "array_bytes": BANDWIDTH_BYTES, "threads": threads,
                                 "signs": bandwidth_limits(cases, rows, bandwidth)}
    return BenchDocument.from_dict(document)


def failed_backends(outcomes: dict[str, BackendOutcome]) -> list[str]:
    """The backends that failed to load, crashed, timed out or failed on a shape."""
    return [outcome.name for outcome in outcomes.values() if outcome.status == "error" or outcome.errors]
