"""``gradparity bench``: the document's structure from a real tiny run, the timing loop on a fake
clock, failed backends recorded beside working ones, one-line usage errors, and the reference's
bench step doing exactly the reference's update. No timing assertions: the machines are noisy."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradparity.backends.numpy import Adapter as NumpyAdapter
from gradparity.backends.timing import MIN_SAMPLE_S, WARMUP_CALLS, Timing, measured, time_step, unmeasured
from gradparity.backends import REGISTRY, missing_requirement
from gradparity.bench import NOT_TIMED, bench_cases, failed_backends, result_rows
from gradparity.cli import main
from gradparity.core import reference
from gradparity.core.cases import BENCH_SHAPES
from gradparity.core.results import BENCH_SCHEMA, BenchDocument, BenchRow
from gradparity.reports.digest import speed_text
from gradparity.reports.schema import validate_bench
from gradparity.reports.terminal import print_bench_table
from gradparity.runner import BackendOutcome, WorkerRun, run_backends
from shipped import assert_follows_its_shipped_schema

ROOT = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
RESULT_KEYS = ["shape", "dtype", "backend", "mode", "median_s", "min_s", "max_s", "compile_s", "ratio_to_reference",
               "note", "steps_per_sample"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradparity", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[int, dict]:
    """``bench --shapes seed --backends numpy,torch --repeats 3 --threads 1``: exit status and document."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    status = main(["bench", "--shapes", "seed", "--backends", "numpy,torch", "--repeats", "3", "--threads", "1",
                   "--json", str(out)])
    return status, json.loads(out.read_text())


def test_tiny_run_writes_a_valid_bench_document(tiny_run):
    status, document = tiny_run
    assert status == 0
    assert validate_bench(document) == []
    assert_follows_its_shipped_schema(document)
    assert document["schema"] == "gradparity-bench/1"
    assert document["environment"]["threads"] == 1 and document["environment"]["repeats"] == 3
    assert [(r["dtype"], r["backend"], r["mode"]) for r in document["results"]] == [
        (dtype, backend, mode) for dtype in ("float64", "float32") for backend in ("numpy", "torch")
        for mode in ("eager", "compiled")]
    assert all(list(row) == RESULT_KEYS and row["shape"] == "seed" for row in document["results"])


def test_tiny_run_timings_are_ordered_and_relative_to_the_reference(tiny_run):
    rows = tiny_run[1]["results"]
    for dtype in ("float64", "float32"):
        reference_row = next(r for r in rows if (r["dtype"], r["backend"], r["mode"]) == (dtype, "numpy", "eager"))
        assert reference_row["ratio_to_reference"] == 1.0
        for row in (r for r in rows if r["dtype"] == dtype and r["median_s"] is not None):
            assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
            assert row["ratio_to_reference"] == pytest.approx(row["median_s"] / reference_row["median_s"], rel=1e-12)
            assert row["note"] is None and row["steps_per_sample"] >= 1
            assert (row["compile_s"] is not None) == (row["mode"] == "compiled")
        for row in (r for r in rows if r["dtype"] == dtype and r["median_s"] is None):
            assert row["note"] and row["min_s"] is row["max_s"] is row["compile_s"] is row["ratio_to_reference"] is None


def test_tiny_run_reports_each_mode_that_cannot_run_with_its_reason(tiny_run):
    notes = {(r["dtype"], r["backend"], r["mode"]): r["note"] for r in tiny_run[1]["results"]}
    assert notes[("float64", "numpy", "compiled")] == "NumPy has no compiler"
    if HAS_TORCH:
        assert notes[("float64", "torch", "eager")] is None
    else:
        assert "torch is not installed" in notes[("float64", "torch", "eager")]


def test_time_step_calibrates_samples_on_a_fake_clock(monkeypatch):
    """One step = 1 ms of fake time: n = 32 is the first power of two reaching 20 ms."""
    clock = {"now": 0.0, "calls": 0}
    monkeypatch.setattr("gradparity.backends.timing.time.perf_counter", lambda: clock["now"])

    def step() -> None:
        clock["now"] += 1e-3
        clock["calls"] += 1

    timing = time_step(step, repeats=5, min_sample_s=MIN_SAMPLE_S)
    assert timing.steps_per_sample == 32 and timing.first_s == pytest.approx(1e-3)
    assert timing.samples == pytest.approx([1e-3] * 5)
    assert clock["calls"] == 1 + WARMUP_CALLS + (1 + 2 + 4 + 8 + 16 + 32) + 5 * 32
    entry = measured("compiled", timing)
    assert entry["median_s"] == pytest.approx(1e-3) and entry["compile_s"] == pytest.approx(0.0, abs=1e-15)
    assert measured("eager", timing)["compile_s"] is None


def test_failed_and_missing_backends_are_recorded_beside_the_others():
    cases = bench_cases(["seed"], ["float64"])
    timing = Timing(2e-3, [1e-3, 2e-3, 3e-3], 4)
    outcomes = {
        "numpy": BackendOutcome("numpy", outputs={0: ([measured("eager", timing), unmeasured("compiled", "no")], 0.1)}),
        "jax": BackendOutcome("jax", status="skipped", reason="jax is not installed"),
        "torch": BackendOutcome("torch", errors={0: "worker process died (exit code -11)"}),
    }
    rows = {(r["backend"], r["mode"]): r for r in result_rows(cases, outcomes)}
    assert rows[("numpy", "eager")]["median_s"] == 2e-3 and rows[("numpy", "eager")]["ratio_to_reference"] == 1.0
    assert rows[("numpy", "compiled")]["note"] == "no"
    for mode in ("eager", "compiled"):
        assert rows[("jax", mode)]["note"] == "jax is not installed" and rows[("jax", mode)]["median_s"] is None
        assert rows[("torch", mode)]["note"] == "worker process died (exit code -11)"


def test_the_table_says_slower_or_faster_than_the_reference(capsys):
    """A backend whose step takes twice the reference's reads 2× slower, one taking half of it
    2× faster, from the medians through result_rows to the printed table."""
    cases = bench_cases(["seed"], ["float64"])

    def timed(mode: str, median: float) -> dict:
        return measured(mode, Timing(median, [median] * 3, 1))

    outcomes = {
        "numpy": BackendOutcome("numpy", outputs={0: ([timed("eager", 1e-3), unmeasured("compiled", "no")], 0.1)}),
        "torch": BackendOutcome("torch", outputs={0: ([timed("eager", 2e-3), timed("compiled", 5e-4)], 0.1)})}
    rows = [BenchRow.from_dict(row) for row in result_rows(cases, outcomes)]
    print_bench_table(BenchDocument(BENCH_SCHEMA, {"threads": 1, "device": "cpu"}, rows))
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert max(map(len, lines)) <= 100
    assert next(line for line in lines if "backend" in line).split()[-3:] == ["vs", "reference", "note"]
    row = re.compile(r"\b(numpy|torch)\s+(eager|compiled)\s.*\s(≈ same|[\d.]+× (?:slower|faster)|—)(?:\s+(\[\d+\]))?\s*$")
    cells = {match.group(1, 2): match.group(3, 4) for match in map(row.search, lines) if match}
    assert cells == {("numpy", "eager"): ("≈ same", None), ("numpy", "compiled"): ("—", "[1]"),
                     ("torch", "eager"): ("2× slower", None), ("torch", "compiled"): ("2× faster", None)}
    assert "[1] no" in lines and "≈ same: within 3%" in " ".join(output.split())


def test_the_performance_pages_bench_table_says_how_the_fastest_compares_with_the_reference():
    """Every ratio cell of the bench table in the performance explanation is in words, in the table's own direction:
    the fastest framework's time over the reference's, as speed_text says it; bold where the
    reference is the quicker."""
    times = r"([\d.]+) (µs|ms|s)"
    scale = {"µs": 1e-6, "ms": 1e-3, "s": 1.0}
    lines = (ROOT / "docs" / "explanation" / "performance.md").read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| shape |") and "fastest vs reference" in line)
    assert "÷" not in lines[start]
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    rows = [line.strip("| ").split(" | ") for line in lines[start + 2:end]]
    assert len(rows) == 4 and all(len(cells) == 7 for cells in rows)
    for cells in rows:
        for reference, fastest, said in (cells[1:4], cells[4:7]):
            words = said.strip().strip("*")
            assert re.fullmatch(r"[\d.]+× (faster|slower)|≈ same", words), said
            (r, r_unit), (f, f_unit) = re.search(times, reference).groups(), re.search(f"{times}$", fastest).groups()
            assert words == speed_text(float(f) * scale[f_unit] / (float(r) * scale[r_unit])), cells
            assert said.startswith("**") == words.endswith("slower"), said


# The modes an adapter itself says it cannot time (``bench_modes``): every other row is filled.
NOT_TIMED_MODES = {("numpy", "compiled"), ("keras-torch", "compiled")}


@pytest.mark.slow
def test_every_bench_shape_steps_in_every_installed_backends_worker():
    """Each bench shape, built as ``gradparity bench`` builds it, through the bench job of every
    installed backend's worker, one sample of one step per mode. The workers run two at a time
    and sample no minimum time: only the rows are checked, not the timings. About 35 s on two
    cores, most of it the compiled modes' first compile (torch.compile ~15 s, keras-jax ~13 s);
    the shapes alternate between the two dtypes."""
    cases = [bench_cases([shape], [dtype])[0] for shape, dtype in zip(BENCH_SHAPES, ["float64", "float32"] * 2)]
    entries = {name: entry for name, entry in REGISTRY.items()
               if name not in NOT_TIMED and not missing_requirement(entry)}
    options = {"threads": 1, "job": "bench", "bench": {"repeats": 1, "min_sample_s": 0.0}}
    outcomes = run_backends(WorkerRun(cases, options, timeout=600, parallel=2), entries)
    assert failed_backends(outcomes) == [], {name: outcome.errors for name, outcome in outcomes.items()}
    rows = result_rows(cases, outcomes)
    assert len(rows) == len(cases) * len(entries) * 2  # eager and compiled
    unfilled = [row for row in rows if row["median_s"] is None]
    assert {(row["backend"], row["mode"]) for row in unfilled} <= NOT_TIMED_MODES, unfilled


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_cuda_without_a_gpu_is_a_note_not_a_traceback(tmp_path):
    import torch

    from gradparity.backends.layout import no_gpu

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "bench.json"
    result = run_cli("bench", "--shapes", "seed", "--dtype", "float32", "--backends", "torch", "--device", "cuda",
                     "--repeats", "1", "--json", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = {(r["backend"], r["mode"]): r for r in json.loads(out.read_text())["results"]}
    assert rows[("numpy", "eager")]["median_s"] > 0
    for mode in ("eager", "compiled"):
        kind, message = re.fullmatch(r"(\w+): (.*) \(at \S+\)", rows[("torch", mode)]["note"]).groups()
        assert (kind, message) == ("GradparityError", str(no_gpu("torch")))  # the error for no GPU, as a note


def test_reference_bench_step_updates_exactly_like_the_reference_optimizer(flower_case, monkeypatch):
    """One bench step goes through core.optimizers.step, on a private copy of the parameters,
    and leaves them exactly where cost_and_gradients + optimizers.sgd put a fresh copy."""
    import gradparity.backends.numpy as numpy_backend
    from gradparity.core import optimizers

    updated = []

    def spy(params, grads, state, training):
        optimizers.step(params, grads, state, training)
        updated.append(params)

    monkeypatch.setattr(numpy_backend, "update", spy)
    before = {name: value.copy() for name, value in flower_case.params.items()}
    NumpyAdapter("numpy").bench_step(flower_case, "eager")()
    assert len(updated) == 1, "the numpy bench step did not go through core.optimizers.step"
    expected = {name: value.copy() for name, value in before.items()}
    _, grads, _ = reference.cost_and_gradients(before, flower_case.X, flower_case.Y, flower_case.spec)
    optimizers.sgd(expected, grads, optimizers.OptimizerState(), flower_case.training)
    for name, value in expected.items():
        np.testing.assert_array_equal(updated[0][name], value)
        assert not np.array_equal(value, before[name]), name
        np.testing.assert_array_equal(flower_case.params[name], before[name])