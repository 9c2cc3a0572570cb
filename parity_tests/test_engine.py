"""The engine's isolation and verdicts, with misbehaving backends injected through the API."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import subprocess
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gradparity
from gradparity import runner
from gradparity.backends import REGISTRY, BackendEntry
from gradparity.backends.worker import start_environment
from gradparity.cli import main
from gradparity.core import deviations
from gradparity.core.cases import build_case, make_case
from gradparity.core.compare import ComparisonContext, compare, tolerance, trajectory_growth
from gradparity.core.network import NetworkSpec
from gradparity.core.results import Document
from gradparity.engine import RunOptions, run


FAKES = ("WrongGradient", "SilentFloat32", "Crash", "Segfault", "Hang", "Raises", "BrokenImport", "Float32Matmul",
         "MissingGradient", "MissingTrajectoryParameter", "NoActivations", "FirstActivationOnly", "NoTrajectory",
         "EmptyArrays", "MaskedFloat32", "EmptyMask", "NotAnEvaluation", "Noisy", "SgdOnly", "AlgorithmOneAdam",
         "MislabelledAdam", "ImportsOptionally", "CountsRefaults", "SaysWhichCase", "SecondOrderModes")


def fake(name: str) -> BackendEntry:
    """A backend entry whose Adapter is ``parity_tests/fake_backends.<name>``."""
    return BackendEntry("fake_backend_" + name.lower())


@pytest.fixture(autouse=True)
def fake_modules(tmp_path, monkeypatch):
    """One importable module per fake adapter (a worker gets this process's sys.path)."""
    for name in FAKES:
        (tmp_path / f"fake_backend_{name.lower()}.py").write_text(
            f"from fake_backends import {name} as Adapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    yield
    runner.shutdown()  # a test's warm workers end with it


def run_fakes(*names: str, cases=("seed-2layer", "single-example"), timeout: float = 60.0) -> Document:
    selected = [build_case(case) for case in cases]
    options = RunOptions(backends=["numpy"], extra_backends={n: fake(n) for n in names}, timeout=timeout)
    return run(selected, options)


def statuses(document: Document, backend: str) -> list[str]:
    return [result.backends[backend].status for result in document.results]


def test_a_wrong_gradient_fails_with_an_assert_close_message():
    document = run_fakes("WrongGradient")
    assert statuses(document, "numpy") == ["pass", "pass"]
    assert statuses(document, "WrongGradient") == ["fail", "fail"]
    result = document.results[0].backends["WrongGradient"]
    failed = [check.quantity for check in result.checks if check.verdict == "fail"]
    assert failed == ["dW1"]
    assert result.reason.startswith("dW1 of WrongGradient is not close to the reference (float64).")
    assert re.findall(r"(\d+) / (\d+) \(([\d.]+)%\)", result.reason) == [("8", "8", "100.0")]  # mismatched of all
    difference, row, column, allowed = re.search(r"absolute difference: (\S+) at index \((\d+), (\d+)\) "
                                                 r"\(up to (\S+) allowed\)", result.reason).groups()
    assert float(difference) > float(allowed) and int(row) < 4 and int(column) < 2  # at an entry of dW1, 4 x 2
    assert document.summary.failed == 2


def test_a_silent_float32_backend_fails_as_such():
    document = run_fakes("SilentFloat32", cases=("seed-2layer",))
    result = document.results[0].backends["SilentFloat32"]
    assert result.status == "fail" and result.dtype_used == "float32"
    assert result.checks[0].quantity == "dtype"
    assert re.findall(r"float\d+", result.reason)[-2:] == ["float32", "float64"]  # computed, asked


def raised(reason: str) -> tuple[str, str]:
    """The exception type and message of an error's reason (``Type: message (at file:line)``),
    raised in the fake backends' file."""
    kind, message, file = re.fullmatch(r"(\w+): (.*) \(at (\S+):\d+\)", reason.splitlines()[-1]).groups()
    assert file == "fake_backends.py"
    return kind, message


def test_crash_hang_exception_and_import_failure_are_contained():
    """About 10 s: the Hang fake is waited for up to its 10 s timeout, the time a hung
    backend is given before it is stopped."""
    document = run_fakes("Crash", "Segfault", "Hang", "Raises", "BrokenImport", timeout=10.0)
    assert statuses(document, "numpy") == ["pass", "pass"]
    crash = document.results[0].backends["Crash"]
    assert crash.status == "error" and crash.reason == "worker process died (exit code 3)"
    segfault = document.results[0].backends["Segfault"].reason
    assert segfault == "worker process died (signal SIGSEGV): Fatal Python error: Segmentation fault"
    assert statuses(document, "Hang") == ["error", "error"]
    assert "timed out after 10 s" in document.results[0].backends["Hang"].reason
    assert statuses(document, "Raises") == ["pass", "error"]
    assert raised(document.results[1].backends["Raises"].reason) == ("RuntimeError", "boom on purpose")
    broken = document.results[0].backends["BrokenImport"]
    assert broken.status == "error" and raised(broken.reason)[0] == "ImportError"
    assert document.summary.errors == 9
    assert set(runner.idle_workers()) == {"numpy", "Raises"}  # only workers that answered everything are kept
    json.dumps(document.to_dict(), allow_nan=False)


def test_a_worker_that_cannot_start_says_why(tmp_path, monkeypatch):
    """A worker interpreter that cannot import gradparity (here: started without site-packages):
    the reason is the interpreter's own line, not only its exit code."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "worker_command", lambda interpreter=None: [sys.executable, "-S", "-c", runner.WORKER_MAIN])
    document = run([build_case("single-example")], RunOptions(backends=["numpy"]))
    reason = document.results[0].backends["numpy"].reason
    assert reason.startswith("worker process died (exit code 1): ") and "No module named 'gradparity'" in reason


def test_a_worker_hides_the_packages_its_backend_never_uses():
    """An entry's ``unused`` packages are not imported in its worker: the framework's optional
    import of them fails there and it runs on; elsewhere they import as usual."""
    pytest.importorskip("sklearn")
    hiding = BackendEntry(fake("ImportsOptionally").module, unused=("sklearn",))
    options = RunOptions(backends=["numpy"], extra_backends={"hiding": hiding, "plain": fake("ImportsOptionally")})
    document = run([build_case("single-example")], options)
    assert document.environment.flags["hiding"] == {"sklearn": "hidden"}
    assert document.environment.flags["plain"] == {"sklearn": "imported"}
    assert statuses(document, "hiding") == statuses(document, "plain") == ["pass"]


@pytest.mark.jax
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_a_workers_start_environment_keeps_the_users_xla_flags(monkeypatch):
    """A flag of the user's (here: three host devices) reaches XLA in an interpreter started with
    a worker's environment: XLA reads every flag, the worker's thread flag too."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    environment = os.environ | start_environment(1)
    devices = subprocess.run([sys.executable, "-c", "import jax; print(len(jax.devices('cpu')))"], env=environment,
                             capture_output=True, text=True, timeout=120)
    assert devices.stdout.strip() == "3", devices.stderr
    assert environment["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=3",
                                                "--xla_cpu_multi_thread_eigen=false"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_a_worker_reuses_freed_memory_instead_of_faulting_it_in_again():
    """A 64 MB block freed and allocated again: in a worker (``worker.MALLOC_ENVIRONMENT``) none
    of its pages is faulted in afresh; in a process started without those settings, every one."""
    options = RunOptions(backends=["numpy"], extra_backends={"refaults": fake("CountsRefaults")})
    flags = run([build_case("single-example")], options).environment.flags["refaults"]
    assert int(flags["refaulted_pages"]) < int(flags["pages"]) // 100, flags
    plain = subprocess.run([sys.executable, "-c", "from fake_backends import refaulted_pages; print(*refaulted_pages())"],
                           cwd=Path(__file__).parent, capture_output=True, text=True, check=True,
                           env={name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")})
    refaulted, pages = map(int, plain.stdout.split())
    assert refaulted >= pages


def test_a_missing_framework_is_skipped_with_the_reason():
    options = RunOptions(backends=["numpy"], extra_backends={"ghost": BackendEntry("x", ("no_such_framework",))})
    document = run([build_case("single-example")], options)
    ghost = document.results[0].backends["ghost"]
    assert ghost.status == "skipped" and "no_such_framework" in ghost.reason
    assert document.summary.to_dict() == {"passed": 1, "failed": 0, "known_deviations": 0, "stale": 0, "skipped": 1,
                                   "errors": 0}


def float32_matmul_entry(bounds=(), within="float32", ops=("matmul",)) -> deviations.KnownDeviation:
    return deviations.KnownDeviation("fake-float32-matmul", "Float32Matmul", "*", "float64", ops,
                                     "np.dot through float32 on purpose", "by construction", bounds, within)


def test_the_command_lines_strict_turns_a_known_deviation_into_exit_1(monkeypatch, tmp_path):
    """``gradparity run``: a registered deviation exits 0 and counts as known; --strict exits 1."""
    monkeypatch.setattr(deviations, "KNOWN_DEVIATIONS", [float32_matmul_entry()])
    monkeypatch.setitem(REGISTRY, "Float32Matmul", fake("Float32Matmul"))
    selection = ["run", "--case", "seed-2layer", "--dtype", "float64", "--backends", "Float32Matmul"]
    assert main([*selection, "--json", str(tmp_path / "run.json")]) == 0
    assert json.loads((tmp_path / "run.json").read_text())["summary"]["known_deviations"] == 1
    assert main([*selection, "--strict"]) == 1


def test_an_unregistered_float32_matmul_fails_with_a_diagnosis_naming_the_matmul():
    document = run_fakes("Float32Matmul", cases=("seed-2layer",))
    result = document.results[0].backends["Float32Matmul"]
    assert result.status == "fail" and result.dtype_used == "float64"  # silent: the arrays stay float64
    diagnosis = result.diagnosis
    assert [op.op for op in diagnosis.ops] == ["matmul", "transpose_matmul"]
    matmul = diagnosis.ops[0]
    assert matmul.input_dtype == "float64" and matmul.output_dtype == "float64"
    assert 1e-9 < matmul.rel_error < 1e-6 and matmul.rel_error > matmul.tolerance
    assert "computes in float32" in diagnosis.pattern and "matmul" in diagnosis.pattern
    assert "np.dot(tx, ty)" in diagnosis.reproducer and diagnosis.reproducer.rstrip().splitlines()[-1].startswith("assert")
    assert document.results[0].backends["numpy"].diagnosis is None


def test_a_registered_deviation_whose_ops_deviate_is_known_and_does_not_fail(monkeypatch):
    monkeypatch.setattr(deviations, "KNOWN_DEVIATIONS", [float32_matmul_entry()])
    document = run_fakes("Float32Matmul", cases=("seed-2layer",))
    result = document.results[0].backends["Float32Matmul"]
    assert result.status == "known_deviation" and document.summary.known_deviations == 1
    explained = [check for check in result.checks if check.verdict == "known_deviation"]
    assert explained and all(check.deviation.name == "fake-float32-matmul" for check in explained)
    assert all(1 < check.excess <= 2.0**29 for check in explained)


def test_a_deviation_beyond_its_bound_fails_again(monkeypatch):
    monkeypatch.setattr(deviations, "KNOWN_DEVIATIONS", [float32_matmul_entry(bounds=(("*", 1e-12),), within=None)])
    document = run_fakes("Float32Matmul", cases=("seed-2layer",))
    assert document.results[0].backends["Float32Matmul"].status == "fail"


def test_a_deviation_whose_ops_do_not_deviate_explains_nothing(monkeypatch):
    monkeypatch.setattr(deviations, "KNOWN_DEVIATIONS", [float32_matmul_entry(ops=("tanh",))])
    document = run_fakes("Float32Matmul", cases=("seed-2layer",))
    assert document.results[0].backends["Float32Matmul"].status == "fail"


def test_a_deviation_that_no_longer_occurs_is_stale_with_a_hint(monkeypatch):
    entry = deviations.KnownDeviation("numpy-tanh-fixed", "numpy", "tanh", "*", ("tanh",), "fixed upstream",
                                      "by construction", (("*", 1e-3),))
    monkeypatch.setattr(deviations, "KNOWN_DEVIATIONS", [entry])
    document = run_fakes(cases=("tanh",))
    result = document.results[0].backends["numpy"]
    assert result.status == "stale" and document.summary.stale == 1
    assert "'numpy-tanh-fixed' no longer occurs" in result.reason and "remove it" in result.reason


@pytest.mark.parametrize("name, quantity, says", [
    ("MissingGradient", "db2", "returned no db2"),
    ("MissingTrajectoryParameter", "trajectory W1", "returned no W1"),
    ("NoActivations", "A1", "returned 0 of 2 layers"),
    ("FirstActivationOnly", "A2", "returned 1 of 2 layers"),
    ("NoTrajectory", "trajectory", "returned no trajectory"),
    ("EmptyArrays", "dW1", "has shape (0,)"),
    ("MaskedFloat32", "dtype", "computed in float32 although float64 was asked"),
    ("EmptyMask", "dW1", "marks no entry as computed"),
])
def test_a_backend_returning_less_than_it_provides_fails_naming_it(name, quantity, says):
    document = run_fakes(name, cases=("seed-2layer",))
    result = document.results[0].backends[name]
    assert result.status == "fail"
    failed = {check.quantity: check.message for check in result.checks if check.verdict == "fail"}
    assert says in failed[quantity]
    assert document.results[0].backends["numpy"].status == "pass"


def test_a_result_that_cannot_be_compared_is_that_backends_error_only():
    document = run_fakes("NotAnEvaluation", "MissingGradient")
    assert statuses(document, "NotAnEvaluation") == ["error", "error"]
    assert "could not be compared" in document.results[0].backends["NotAnEvaluation"].reason
    assert statuses(document, "numpy") == ["pass", "pass"]
    assert statuses(document, "MissingGradient") == ["fail", "fail"]


def test_worker_output_never_reaches_the_terminal_and_is_kept_for_an_error(capfd):
    document = run_fakes("Noisy", cases=("single-example",))
    noisy = document.results[0].backends["Noisy"]
    assert noisy.status == "error" and "a framework's C++ log line" in noisy.stderr
    assert document.results[0].backends["numpy"].stderr is None
    assert "C++ log line" not in capfd.readouterr().err


def test_finite_differences_say_which_gradient_they_cannot_measure():
    spec = NetworkSpec((2, 2, 2, 1), "relu", "bce")  # A1 = 0 everywhere, so Z2 = b2 = 0: every db2 on a kink
    params = {"W1": -np.ones((2, 2)), "b1": np.zeros((2, 1)), "W2": np.ones((2, 2)), "b2": np.zeros((2, 1)),
              "W3": np.ones((1, 2)), "b3": np.zeros((1, 1))}
    X, Y = np.abs(np.random.default_rng(0).standard_normal((2, 8))) + 0.1, np.ones((1, 8))
    case = make_case("dead-relu", "every hidden unit of layer 1 dead", (X, Y), params, spec)
    result = run([case], RunOptions(backends=["finite-diff"])).results[0].backends["finite-diff"]
    db2 = next(check for check in result.checks if check.quantity == "db2")
    assert result.status == "pass" and db2.total == 0 and "crosses a ReLU kink" in db2.message
    assert all(check.total > 0 for check in result.checks if check.quantity != "db2")


def test_first_divergent_layer_is_the_earliest_activation_out_of_tolerance():
    from gradparity.core.compare import first_divergent_layer

    spec = NetworkSpec((2, 3, 3, 1))
    reference = [np.ones((3, 4)), np.ones((3, 4)), np.ones((1, 4))]
    broken = [reference[0], reference[1] * (1 + 1e-9), reference[2] * (1 + 1e-9)]
    checks = [compare(f"A{l}", "activations", a, b,
                      ComparisonContext("float64", tolerance("activations", "float64", spec, 4, l)))
              for l, (a, b) in enumerate(zip(broken, reference), 1)]
    assert [c.verdict for c in checks] == ["pass", "fail", "fail"]
    assert first_divergent_layer(checks) == 2


def test_an_exact_zero_uses_none_of_its_tolerance():
    spec = NetworkSpec((2, 1))
    check = compare("db1", "gradients", np.zeros((1, 1)), np.zeros((1, 1)),
                    ComparisonContext("float64", tolerance("gradients", "float64", spec, 3), magnitude=np.zeros((1, 1))))
    assert check.verdict == "pass" and check.excess == 0.0


def test_metrics_of_a_known_difference():
    spec = NetworkSpec((2, 1))
    expected = np.array([[1.0, -2.0, 4.0]])
    actual = expected + np.array([[0.0, 0.0, 4.0 * 2.0**-52]])
    check = compare("dW1", "gradients", actual, expected, ComparisonContext("float64", tolerance("gradients", "float64", spec, 3)))
    assert check.max_abs_error == 4.0 * 2.0**-52
    assert check.rel_error == 2.0**-52 and check.ulps == pytest.approx(1.0)
    assert check.worst_index == [0, 2] and check.mismatched == 0 and check.verdict == "pass"
    assert check.cosine == pytest.approx(1.0, abs=1e-15)


def test_a_backend_without_the_optimizer_is_skipped_on_that_case_only():
    document = run_fakes("SgdOnly", cases=("seed-2layer", "keras-document", "momentum"))
    assert statuses(document, "SgdOnly") == ["pass", "skipped", "skipped"]
    assert statuses(document, "numpy") == ["pass", "pass", "pass"]
    assert document.results[1].backends["SgdOnly"].reason == "SgdOnly has no adam-hat optimizer (it runs sgd)"
    assert document.summary.skipped == 2


def test_without_trajectories_only_cost_gradients_and_activations_are_run_and_checked():
    """``trajectories=False`` (what check asks): no training anywhere, so a backend without the
    case's optimizer is not skipped, and nothing reports a missing trajectory."""
    selected = [build_case(name) for name in ("seed-2layer", "momentum")]
    options = RunOptions(backends=["numpy"], extra_backends={"SgdOnly": fake("SgdOnly")}, trajectories=False)
    document = run(selected, options)
    assert statuses(document, "SgdOnly") == statuses(document, "numpy") == ["pass", "pass"]
    assert document.options.trajectories is False
    for result in document.results:
        assert result.reference.costs == [] and result.reference.formulations is None
        for backend in result.backends.values():
            assert backend.costs is None
            assert {check.kind for check in backend.checks} == {"cost", "gradients", "activations"}


def test_a_framework_running_the_other_adam_form_is_compared_with_that_form():
    """keras-document asks for the efficient form; a backend that runs Algorithm 1 passes
    against the reference run as Algorithm 1 and says so, one that claims the wrong form fails
    from the second step (the first cost is taken before any update)."""
    document = run_fakes("AlgorithmOneAdam", "MislabelledAdam", cases=("keras-document",))
    result = document.results[0]
    assert result.reference.optimizer == "adam-hat" and result.training.steps == 40
    honest, mislabelled = result.backends["AlgorithmOneAdam"], result.backends["MislabelledAdam"]
    assert honest.status == "pass" and honest.optimizer == "adam"
    assert honest.costs[-1] == result.reference.formulations.last_costs["adam"]
    assert mislabelled.status == "fail" and mislabelled.optimizer == "adam-hat"
    assert mislabelled.first_divergent_step == 2
    failed = {check.quantity for check in mislabelled.checks if check.verdict == "fail"}
    assert {"trajectory cost", "trajectory W1", "trajectory b2"} <= failed
    assert result.reference.formulations.params > 1e3 * result.reference.formulations.rtol


def test_the_trajectory_tolerance_grows_with_the_updates_done():
    """The cost after k updates may differ by max(k, 1) times the one-step tolerance, no more."""
    case = build_case("momentum")
    one_step = tolerance("trajectory", case.dtype, case.spec, case.m, steps=1).rtol
    expected = np.linspace(1.0, 2.0, case.steps)
    for k, factor in ((5, 4.9), (5, 5.1)):
        actual = expected.copy()
        actual[k] += factor * one_step * (expected.max() + expected[k])
        check = compare("trajectory cost", "trajectory", actual, expected,
                        ComparisonContext("float64", tolerance("trajectory", "float64", case.spec, case.m, steps=1),
                                          growth=trajectory_growth(case.steps)))
        assert (check.verdict == "pass") == (factor < 5), factor
    assert check.first_index == [5]


def test_large_arrays_reach_a_worker_as_one_mapped_file(tmp_path):
    """An array of at least SHARED_BYTES is written once and unpickled as a copy-on-write map of
    that file, equal to the original; a small one travels in the pickle."""
    import pickle

    from gradparity.runner import SHARED_BYTES, ArrayFiles

    X = np.random.default_rng(0).standard_normal((SHARED_BYTES // 8 + 1, 1))
    case = make_case("big", "one large X", (X, np.ones((1, 1))), {"W1": np.ones((1, X.shape[0])),
                     "b1": np.zeros((1, 1))}, NetworkSpec((X.shape[0], 1), "sigmoid", "bce"), "float64")
    directory = tmp_path / "arrays"
    directory.mkdir()
    files = ArrayFiles([case, case], str(directory))
    received = pickle.loads(files.dumps(("case", 0, case)))[2]
    assert sorted(path.name for path in directory.iterdir()) == ["0.npy", "1.npy"]  # X and W1, each once
    for name in ("X", "W1"):
        sent, got = (getattr(c, name, None) if name == "X" else c.params[name] for c in (case, received))
        assert isinstance(got, np.memmap) and np.array_equal(got, sent)
    assert not isinstance(received.Y, np.memmap) and np.array_equal(received.Y, case.Y)


def test_the_document_says_where_each_workers_time_went():
    """Per backend: set-up, compile (0 for NumPy, which compiles nothing), compute and probes;
    compile and compute add up to its cases' seconds, and all of it stays within its wall time."""
    document = run([build_case("seed-2layer", "float64")], RunOptions(backends=["numpy", "finite-diff"]))
    run_time = document.run
    for name, spent in run_time.timing.items():
        cases = sum(run_time.case_seconds[name].values())
        assert spent.compile_s == 0.0 and spent.compute_s == pytest.approx(cases)
        assert 0 < spent.setup_s and spent.setup_s + cases + spent.probes_s <= spent.total_s
    assert run_time.workers_at_a_time >= 1


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie, ended but not reaped, counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_second_run_reuses_the_warm_worker_and_gives_the_same_document():
    """The second run is served by the same worker processes, which report no set-up of their
    own, and its results are the first run's, op probes and diagnoses included."""
    first = run_fakes("Raises", "Float32Matmul")
    workers = runner.idle_workers()
    second = run_fakes("Raises", "Float32Matmul")
    assert runner.idle_workers() == workers and set(workers) == {"numpy", "Raises", "Float32Matmul"}
    for key in ("results", "summary", "environment", "options"):
        assert getattr(second, key) == getattr(first, key), key
    assert statuses(second, "Raises") == ["pass", "error"]  # an error in a case leaves the worker reusable
    assert second.results[0].backends["Float32Matmul"].diagnosis.ops[0].op == "matmul"
    assert first.run.timing["numpy"].setup_s > 0 and second.run.timing["numpy"].setup_s == 0


def test_a_changed_environment_or_option_starts_a_fresh_worker(monkeypatch):
    """A worker is reused only when its start would be the same: another environment variable
    or another worker option starts a new one, and the one it replaces is stopped."""
    case = [build_case("single-example")]
    run(case, RunOptions(backends=["numpy"]))
    first = runner.idle_workers()["numpy"]
    monkeypatch.setenv("GRADPARITY_SOME_SETTING", "1")
    run(case, RunOptions(backends=["numpy"]))
    second = runner.idle_workers()["numpy"]
    run(case, RunOptions(backends=["numpy"], trajectories=False))
    third = runner.idle_workers()["numpy"]
    assert len({first, second, third}) == 3
    assert not alive(first) and not alive(second)


def test_a_worker_killed_between_runs_is_replaced_and_the_run_succeeds():
    case = [build_case("single-example")]
    run(case, RunOptions(backends=["numpy"]))
    killed = runner.idle_workers()["numpy"]
    os.kill(killed, signal.SIGKILL)
    os.waitid(os.P_PID, killed, os.WEXITED | os.WNOWAIT)  # dead by the next run (left for the runner to reap)
    document = run(case, RunOptions(backends=["numpy"]))
    assert statuses(document, "numpy") == ["pass"]
    assert runner.idle_workers()["numpy"] != killed and not alive(killed)


def test_a_warm_worker_that_crashes_says_this_runs_last_words_and_is_not_kept():
    """The output of a reused worker that dies is what it wrote in this run, the last line its
    last words; a dead worker is not kept, and the next run starts a new one."""
    assert statuses(run_fakes("SaysWhichCase", cases=("seed-2layer",)), "SaysWhichCase") == ["pass"]
    warm = runner.idle_workers()["SaysWhichCase"]
    crashed = run_fakes("SaysWhichCase", cases=("single-example",)).results[0].backends["SaysWhichCase"]
    assert crashed.reason == "worker process died (exit code 3): serving single-example"
    assert crashed.stderr == "serving single-example"
    assert "SaysWhichCase" not in runner.idle_workers() and not alive(warm)
    assert statuses(run_fakes("SaysWhichCase", cases=("seed-2layer",)), "SaysWhichCase") == ["pass"]


def test_shutdown_leaves_no_worker_alive():
    run([build_case("single-example")], RunOptions(backends=["numpy", "finite-diff"]))
    workers = runner.idle_workers()
    gradparity.shutdown()
    assert len(workers) == 2 and runner.idle_workers() == {}
    assert not any(alive(pid) for pid in workers.values())


def test_a_process_that_ran_backends_ends_promptly_and_takes_its_workers_along():
    """The workers kept warm end with the process that started them (``atexit``), and its exit
    is not held up by them."""
    program = ("import gradparity; from gradparity import runner; "
               "gradparity.run([gradparity.build_case('single-example')], gradparity.RunOptions(backends=['numpy'])); "
               "print(*runner.idle_workers().values(), flush=True); import time; print(time.monotonic())")
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    ended = time.monotonic()
    pid, last_statement = finished.stdout.split()
    assert not alive(int(pid))
    assert ended - float(last_statement) < 2.0


def test_every_second_order_mode_is_judged_alone_and_none_passes_silently():
    """A mode answering zeros, the gradient for H V, float32, nothing, H V off by 1e-9, or
    raising fails on its own checks; a mode the framework lacks is skipped with its reason; the right one passes."""
    options = RunOptions(backends=["numpy"], extra_backends={"modes": fake("SecondOrderModes")}, order=2)
    result = run([build_case("seed-2layer")], options).results[0]
    modes = result.backends["modes"].modes
    assert {mode: record.status for mode, record in modes.items()} == {
        "right": "pass", "zeros": "fail", "gradient": "fail", "float32": "fail", "raises": "fail", "absent": "skipped",
        "no-tangents": "fail", "nudged": "fail"}
    assert result.backends["modes"].status == "fail" and result.backends["numpy"].status == "pass"
    assert modes["absent"].reason == "this framework has no such mode here"
    assert "second order on purpose" in modes["raises"].reason and "returned no Jdot" in modes["no-tangents"].reason
    failed = {(check.mode, check.quantity) for check in result.backends["modes"].checks if check.verdict == "fail"}
    assert {("zeros", f"HV {name}") for name in ("W1", "b1", "W2", "b2")} <= failed
    assert ("gradient", "HV W1") in failed and ("float32", "dtype") in failed and ("nudged", "HV W1") in failed
    right = [check for check in result.backends["modes"].checks if check.mode == "right"]
    assert {check.quantity for check in right} == {"Jdot", "Adot1", "Adot2", "HV W1", "HV b1", "HV W2", "HV b2"}
    assert all(check.mismatched == 0 and check.max_abs_error == 0 for check in right)
    assert result.reference.second_order.direction.source == "seeded"
