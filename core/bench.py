"""``gradparity bench``: the wall time of ONE full training step (forward, backward, parameter
update) per backend and mode, against the NumPy reference measured in the same run.

Each backend runs in its own spawned worker (``backends.worker``, job ``bench``), one backend
at a time and every one with the same thread count. Workers receive only ``(shape, dtype)`` and
build the case themselves, so no arrays are pickled while another backend is being timed. In
the worker, per mode:

    first      the first call alone (a compiled mode compiles here)
    warm-up    ``WARMUP_CALLS`` more calls
    n          the smallest power of two whose n calls last at least ``MIN_SAMPLE_S``
    samples    ``repeats`` timings of n calls; one step = sample / n seconds
    reported   median, min and max of the per-step samples; compile = first - median step
               (compiled modes only); ratio = median / median of the reference (numpy, eager)

Only NumPy and the standard library are imported here; frameworks live in the workers.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from backends import REGISTRY, resolve
from backends.worker import HEAP_PAD_BYTES
from core.cases import Case, build_case, make_case
from core.cli import EXIT_FAILED, EXIT_OK, comma_list, write_json
from core.environment import fingerprint
from core.errors import GradparityError
from core.network import DTYPES, NetworkSpec, check_dtype
from core.reference import initial_params
from core.runner import BackendOutcome, Progress, default_parallel, run_backends

SCHEMA = "gradparity-bench/1"
MODES = ("eager", "compiled")
REFERENCE = "numpy"
NOT_TIMED = ("finite-diff",)
DEFAULT_REPEATS = 7
MIN_SAMPLE_S = 0.02
WARMUP_CALLS = 2
DEFAULT_TIMEOUT = 1800.0
BANDWIDTH_BYTES = 256 * 2**20


class BenchError(GradparityError):
    """Bad input to ``gradparity bench`` (unknown shape, repeats or threads below 1)."""


def _deep(dtype: str) -> Case:
    """20-16-8-4-1 sigmoid/bce on seeded synthetic data: X ~ N(0, 1) of shape (20, 400) from
    ``default_rng(0)``, label y = [x1 x2 + x3 > 0]; Xavier init (seed 0), learning rate 0.5."""
    X = np.random.default_rng(0).standard_normal((20, 400))
    Y = (X[0] * X[1] + X[2] > 0).astype(np.float64)[np.newaxis, :]
    spec = NetworkSpec((20, 16, 8, 4, 1), "sigmoid", "bce")
    return make_case("deep", "20-16-8-4-1 sigmoid/bce on seeded synthetic data, m = 400",
                     X, Y, initial_params(spec, "xavier"), spec, dtype, learning_rate=0.5)


SHAPES: dict[str, Callable[[str], Case]] = {
    "seed": lambda dtype: build_case("seed-2layer", dtype),  # 2-4-1 sigmoid/bce, flower, m = 400
    "deep": _deep,
    "digits": lambda dtype: build_case("softmax-digits", dtype),  # 64-25-12-10 relu/softmax-ce, m = 1797
    "signs": lambda dtype: build_case("signs-shape", dtype),  # 12288-25-12-6 relu/softmax-ce, m = 1080
}


@dataclass(frozen=True)
class BenchCase:
    """A bench shape in one dtype; a worker builds its ``Case`` (data and parameters) itself."""

    shape: str
    dtype: str

    @property
    def key(self) -> str:
        return f"{self.shape}/{self.dtype}"

    def build(self) -> Case:
        return SHAPES[self.shape](self.dtype)


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


def bench_cases(shapes: list[str], dtypes: list[str]) -> list[BenchCase]:
    """Every shape in every dtype, shape-major; BenchError for an unknown shape."""
    for shape in shapes:
        if shape not in SHAPES:
            raise BenchError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    for dtype in dtypes:
        check_dtype(dtype)
    return [BenchCase(shape, dtype) for shape in shapes for dtype in dtypes]


def backend_names(asked: list[str] | None) -> list[str]:
    """The reference first, then the asked backends (default: every one that trains)."""
    names = resolve(asked) if asked else [name for name in REGISTRY if name not in NOT_TIMED]
    return [REFERENCE, *(name for name in names if name != REFERENCE)]


def run_bench(cases: list[BenchCase], names: list[str], threads: int, repeats: int, device: str,
              timeout: float, progress: Progress | None = None) -> dict[str, BackendOutcome]:
    """Time every case on every backend, one worker at a time, each with ``threads`` threads.
    The reference always runs on the CPU; the other backends on ``device``."""
    settings = {"threads": threads, "job": "bench", "bench": {"repeats": repeats}}
    entries = {name: REGISTRY[name] for name in names}
    reference = {REFERENCE: entries.pop(REFERENCE)}
    outcomes = run_backends(cases, reference, {**settings, "device": "cpu"}, timeout, 1, progress)
    outcomes.update(run_backends(cases, entries, {**settings, "device": device}, timeout, 1, progress))
    return outcomes


def mode_entries(outcome: BackendOutcome, index: int) -> list[dict]:
    """The per-mode entries of case ``index`` on one backend, or every mode with the reason it failed."""
    if outcome.status != "ok":
        return [unmeasured(mode, outcome.reason) for mode in MODES]
    if index in outcome.errors:
        return [unmeasured(mode, outcome.errors[index]) for mode in MODES]
    return outcome.outputs[index][0]


def result_rows(cases: list[BenchCase], outcomes: dict[str, BackendOutcome]) -> list[dict]:
    """One entry per shape, dtype, backend and mode, with the ratio of its median to the reference's."""
    rows = []
    for index, case in enumerate(cases):
        reference = next((e["median_s"] for e in mode_entries(outcomes[REFERENCE], index) if e["mode"] == "eager"),
                         None)
        for name, outcome in outcomes.items():
            for entry in mode_entries(outcome, index):
                median = entry["median_s"]
                ratio = median / reference if median is not None and reference else None
                rows.append({"shape": case.shape, "dtype": case.dtype, "backend": name, **entry,
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


def bandwidth_limits(cases: list[BenchCase], rows: list[dict], bandwidth: float) -> list[dict]:
    """For each signs case: floor = 2 X.nbytes / bandwidth (X read in the forward W1 X and in the
    backward dZ1 X^T), the reference's median step and the fastest one, as fractions of the floor."""
    limits = []
    for case in (case for case in cases if case.shape == "signs"):
        x_bytes = case.build().X.nbytes
        timed = [r for r in rows if (r["shape"], r["dtype"]) == (case.shape, case.dtype) and r["median_s"] is not None]
        floor = 2 * x_bytes / bandwidth
        reference = next((r for r in timed if r["backend"] == REFERENCE), None)
        fastest = min(timed, key=lambda r: r["median_s"], default=None)
        limits.append({"shape": case.shape, "dtype": case.dtype, "x_bytes": x_bytes, "floor_s": floor,
                       "reference_s": reference and reference["median_s"],
                       "fastest": fastest and f"{fastest['backend']} {fastest['mode']}",
                       "fastest_s": fastest and fastest["median_s"]})
    return limits


def seconds(value: float | None) -> str:
    """``12.3 µs`` / ``4.56 ms`` / ``1.23 s``; an em dash for None."""
    if value is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def print_table(document: dict) -> None:
    """The rich table: shape, dtype, backend, mode, median, min–max, compile, × reference, note."""
    from rich.console import Console
    from rich.table import Table

    environment = document["environment"]
    table = Table(title=f"gradparity bench: one training step (forward, backward, update), "
                        f"{environment['threads']} threads, device {environment['device']}")
    for column, justify in (("shape", "left"), ("dtype", "left"), ("backend", "left"), ("mode", "left"),
                            ("median", "right"), ("min–max", "right"), ("compile", "right"),
                            ("× reference", "right"), ("note", "left")):
        table.add_column(column, justify=justify)
    for row in document["results"]:
        spread = f"{seconds(row['min_s'])}–{seconds(row['max_s'])}" if row["median_s"] is not None else "—"
        ratio = "—" if row["ratio_to_reference"] is None else f"{row['ratio_to_reference']:.3g}"
        table.add_row(row["shape"], row["dtype"], row["backend"], row["mode"], seconds(row["median_s"]), spread,
                      seconds(row["compile_s"]), ratio, row["note"] or "")
    console = Console(width=160)
    console.print(table, highlight=False)
    for limit in document.get("bandwidth", {}).get("signs", []):
        console.print(bandwidth_line(limit, document["bandwidth"]["read_bytes_per_s"]), highlight=False)


def bandwidth_line(limit: dict, bandwidth: float) -> str:
    """One line: the signs step against the time of reading X twice at the measured bandwidth."""
    text = (f"signs {limit['dtype']}: reading X ({limit['x_bytes'] / 1e6:.0f} MB) twice at {bandwidth / 1e9:.1f} GB/s "
            f"takes {seconds(limit['floor_s'])}")
    if limit["reference_s"]:
        text += (f"; the reference step takes {seconds(limit['reference_s'])}, "
                 f"{limit['floor_s'] / limit['reference_s']:.0%} of that bandwidth limit")
    if limit["fastest_s"] and limit["fastest_s"] != limit["reference_s"]:
        text += (f"; the fastest, {limit['fastest']}, takes {seconds(limit['fastest_s'])}, "
                 f"{limit['floor_s'] / limit['fastest_s']:.0%}")
    return text


def check_positive(what: str, value: int) -> int:
    """``value`` when it is at least 1; BenchError naming ``what`` otherwise."""
    if value < 1:
        raise BenchError(f"{what} must be at least 1, got {value}")
    return value


def command_bench(args: argparse.Namespace) -> int:
    """Time the shapes on the backends, print the table and write the optional JSON document.
    Exit 0 when every installed backend ran; 1 when one failed to load, crashed or timed out."""
    from core.cli import progress_bar
    from core.engine import RunOptions

    repeats = check_positive("--repeats", args.repeats)
    threads = check_positive("--threads", default_parallel() if args.threads is None else args.threads)
    cases = bench_cases(args.shapes, args.dtype)
    names = backend_names(args.backends)
    with progress_bar(len(cases), RunOptions(backends=names)) as progress:
        outcomes = run_bench(cases, names, threads, repeats, args.device, args.timeout, progress)
    rows = result_rows(cases, outcomes)
    document = {"schema": SCHEMA,
                "environment": {**fingerprint(outcomes, args.device, False), "threads": threads, "repeats": repeats,
                                "min_sample_s": MIN_SAMPLE_S,
                                "malloc_top_pad_bytes": HEAP_PAD_BYTES if platform.libc_ver()[0] == "glibc" else None},
                "results": rows}
    if args.bandwidth:
        bandwidth = read_bandwidth(threads)
        document["bandwidth"] = {"read_bytes_per_s": bandwidth, "array_bytes": BANDWIDTH_BYTES, "threads": threads,
                                 "signs": bandwidth_limits(cases, rows, bandwidth)}
    print_table(document)
    if args.json:
        write_json(args.json, document)
        print(f"wrote {args.json}")
    failed = [o.name for o in outcomes.values() if o.status == "error" or o.errors]
    if failed:
        print(f"failed: {', '.join(failed)} (see the notes)", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity bench`` to the CLI's subcommands."""
    bench = commands.add_parser(
        "bench", help="time one training step per backend and mode against the NumPy reference",
        description="Time ONE full training step (forward, backward, parameter update) per backend, eagerly and "
                    "compiled where the framework has a compiler, each backend in its own process, one at a time, "
                    "all with the same thread count. Reports the median and min-max per step over --repeats "
                    f"samples (each >= {MIN_SAMPLE_S * 1e3:g} ms of steps, after warm-up), the one-off compile time "
                    "(first call - median step) and the ratio to the NumPy reference (numpy, eager, always run, "
                    "on the CPU). Exit 0: every installed backend ran; 1: one failed; 2: bad usage.")
    bench.add_argument("--shapes", type=comma_list, default=list(SHAPES), metavar="LIST",
                       help="networks to time, comma-separated (default: all): seed = 2-4-1 sigmoid/bce flower m=400, "
                            "deep = 20-16-8-4-1 sigmoid/bce m=400, digits = 64-25-12-10 relu/softmax-ce m=1797, "
                            "signs = 12288-25-12-6 relu/softmax-ce m=1080")
    bench.add_argument("--backends", type=comma_list, metavar="LIST",
                       help="comma-separated backends (default: every installed one that trains): numpy, jax, torch, "
                            "tensorflow, keras-tensorflow, keras-jax, keras-torch, keras; numpy is always added")
    bench.add_argument("--dtype", type=comma_list, default=list(DTYPES), metavar="LIST",
                       help="dtypes, comma-separated (default: float64,float32)")
    bench.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, metavar="N",
                       help=f"timed samples per mode (default: {DEFAULT_REPEATS})")
    bench.add_argument("--threads", type=int, metavar="N", help="threads for every backend (default: all cores)")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the framework backends")
    bench.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"limit per backend (default: {DEFAULT_TIMEOUT:g})")
    bench.add_argument("--bandwidth", action="store_true",
                       help="also measure NumPy's read bandwidth and compare the signs step with reading X twice")
    bench.add_argument("--json", metavar="FILE", help="write the gradparity-bench/1 document")
    bench.set_defaults(handler=command_bench)
