"""Every backend against the reference on every catalogue case in both dtypes, and on at least
25 generated networks per dtype (depth 1-4, widths 1-16, m 1-64, every hidden activation, every
loss and every optimizer, full batches and mini-batches with a partial last one;
``GRADPARITY_FUZZ=thorough`` runs 300, for a nightly job), first order, and the float64 ones
(12 of the generated networks; all in both dtypes thoroughly) through every second-order mode too. All of it runs once per session, one
worker per backend for every case, workers in parallel as ``gradparity run`` does; the tests read
that run's document."""

from __future__ import annotations

import fnmatch
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from gradparity.backends import REGISTRY, entry, known, missing_requirement
from gradparity.core import deviations
from gradparity.core.cases import CATALOGUE, Case, build_case, make_case
from gradparity.core.compare import FINITE_DIFFERENCE_RTOL
from gradparity.core.generated import architecture, generated_cases
from gradparity.core.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec
from gradparity.core.optimizers import OPTIMIZERS, Training
from gradparity.engine import RunOptions, run
from gradparity.merge import merge

# Registered deviations the catalogue must show, kept as data: (backend, dtype) -> entry names.
EXPECTED_DEVIATIONS = {
    ("keras-jax", "float64"): {"keras-jax-float32-ops", "keras-jax-bce-clipping-float64"},
    ("keras-torch", "float64"): {"keras-torch-float32-ops", "keras-torch-bce-clipping-float64"},
    ("keras-jax", "float32"): {"keras-jax-bce-clipping-float32"},
    ("keras-torch", "float32"): {"keras-torch-bce-clipping-float32"},
    ("keras-tensorflow", "float64"): {"keras-tensorflow-float32-hyperparameters"},
}
# ... and those the zero-logits case (ReLU and the loss at their kinks) must show, in both dtypes.
KINK_DEVIATIONS = {  # (backend, dtype) -> the registered deviations the zero-logits case shows
    ("autograd", "float64"): {"autograd-relu-tie-split"}, ("autograd", "float32"): {"autograd-relu-tie-split"},
    ("keras-jax", "float64"): {"keras-jax-float32-ops"}, ("keras-torch", "float64"): {"keras-torch-float32-ops"},
}
# Each backend's second-order modes and what they compute (``Adapter.second_order_modes``), kept as data.
TANGENTS, HVP = ("tangents",), ("hvp",)
SECOND_ORDER_MODES = {
    "numpy": {"r-operator": ("tangents", "hvp")},
    "finite-diff": {"central-differences": ("tangents", "hvp")},
    "jax": {"jvp": TANGENTS, "fwd-over-rev": HVP, "rev-over-rev": HVP},
    "torch": {"func.jvp": TANGENTS, "forward-ad": TANGENTS, "fwd-over-rev": HVP, "double-backward": HVP},
    "tensorflow": {"forward-accumulator": TANGENTS, "fwd-over-rev": HVP, "rev-over-rev": HVP},
    "keras-jax": {"jvp": TANGENTS, "fwd-over-rev": HVP, "rev-over-rev": HVP},
    "keras-torch": {"func.jvp": TANGENTS, "forward-ad": TANGENTS, "fwd-over-rev": HVP, "double-backward": HVP},
    "keras-tensorflow": {"forward-accumulator": TANGENTS, "fwd-over-rev": HVP, "rev-over-rev": HVP},
    "autograd": {"jvp": TANGENTS, "fwd-over-rev": HVP, "rev-over-rev": HVP},
}
SKIPPED_MODES = {  # (backend, mode) -> the reason it gives where it does not run (a glob)
    ("torch", "fwd-over-rev"): "*F.mse_loss*'ZeroTensors are immutable' (pytorch/pytorch#123996*",
}
STRICT_FLOAT64 = ("jax", "torch", "tensorflow", "keras-tensorflow", "autograd")
FUZZ = {"default": 25, "thorough": 300}
PROFILE = os.environ.get("GRADPARITY_FUZZ", "default")
GENERATED = FUZZ[PROFILE]
# The cases that also go through every second-order mode: by default those in float64, of the generated
# networks the first 12 (every hidden activation x loss pair, depths 1-4: test_generated_networks_cover_...);
# every one in both dtypes thoroughly. Each mode compiles a program per network shape and dtype (jax,
# keras-jax) or traces one (tensorflow): the default keeps make test within 20 % of its first-order time.
SECOND_ORDER_DTYPES = DTYPES if PROFILE == "thorough" else ("float64",)
SECOND_ORDER_GENERATED = GENERATED if PROFILE == "thorough" else 12


def backend_param(name: str):
    """A backend as a test parameter with its marker (``pytest -m torch``)."""
    marker = name.split("-")[0].replace("finite", "finite_diff")
    return pytest.param(name, marks=getattr(pytest.mark, marker), id=name)


# The plugins this repository ships (plugins/), tested like the built-in backends; where one is not
# installed, its tests skip with the command that installs it.
REPOSITORY_PLUGINS = {"autograd": "pip install ./plugins/gradparity-autograd"}
BACKENDS = [backend_param(name) for name in dict.fromkeys([*known(), *REPOSITORY_PLUGINS])]


def unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here (a plugin or a framework that is not installed), or None."""
    if backend not in known():
        return f"the {backend} plugin is not installed ({REPOSITORY_PLUGINS[backend]})"
    return missing_requirement(entry(backend))


def backend_of(item: pytest.Item) -> str | None:
    """The backend a collected test is parametrised with, if any."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec else None


def zero_logits_case(dtype: str) -> Case:
    """Layer 1 dead everywhere, so Z2 = b2 = 0 and the logits Z3 = b3 = 0 exactly: ReLU and the
    loss both at their kinks (a bce written as max(z, 0) + log1p(e^-|z|) gets its gradient wrong here)."""
    spec = NetworkSpec((2, 2, 2, 1), "relu", "bce")
    params = {"W1": -np.ones((2, 2)), "b1": np.zeros((2, 1)), "W2": np.ones((2, 2)), "b2": np.zeros((2, 1)),
              "W3": np.ones((1, 2)), "b3": np.zeros((1, 1))}
    X = np.abs(np.random.default_rng(0).standard_normal((2, 8))) + 0.1
    return make_case("zero-logits", "2-2-2-1 relu/bce with every logit exactly 0", (X, np.ones((1, 8))), params, spec,
                     dtype, Training(learning_rate=0.1, epochs=3))


def dtype_cases(dtype: str) -> list[Case]:
    """The catalogue, the generated networks and the zero-logits case in ``dtype``."""
    return [*(build_case(name, dtype) for name in CATALOGUE), *generated_cases(GENERATED, dtype), zero_logits_case(dtype)]


def second_order_case(case: Case) -> bool:
    """Whether the parity run takes ``case`` through the second-order modes: in the
    ``SECOND_ORDER_DTYPES``, every case but the generated networks past ``SECOND_ORDER_GENERATED``."""
    if case.dtype not in SECOND_ORDER_DTYPES:
        return False
    return not case.name.startswith("generated-") or int(case.name.removeprefix("generated-")) < SECOND_ORDER_GENERATED


@pytest.fixture(scope="session")
def parity_run(request) -> tuple[list[Case], dict]:
    """The catalogue and the generated networks in both dtypes, run once on every installed
    backend that a selected test of this module names (so ``pytest -m torch`` runs torch alone),
    first order, and the cases ``second_order_case`` picks through every second-order mode too
    (``--order 2``): one run per order, the workers kept warm from the first to the second,
    merged into one document (``report --merge``) whose results come in the order of the list."""
    selected = {backend_of(item) for item in request.session.items if item.module.__name__ == __name__}
    installed = [name for name in known() if name in selected and not unavailable(name)]
    if not installed:
        return [], {"results": []}
    cases = [case for dtype in DTYPES for case in dtype_cases(dtype)]
    runs = {"order 2": [case for case in cases if second_order_case(case)],
            "order 1": [case for case in cases if not second_order_case(case)]}
    documents = {label: run(chosen, RunOptions(backends=installed, timeout=1800, order=int(label[-1])))
                 for label, chosen in runs.items() if chosen}  # the first run starts the workers: its timings count
    documents = dict(reversed(documents.items()))
    return [case for label in documents for case in runs[label]], merge(documents)


@pytest.fixture
def document_of(parity_run):
    """The run's document for one backend; skips a backend that is not installed."""
    def document(backend: str) -> dict:
        reason = unavailable(backend)
        if reason:
            pytest.skip(reason)
        _cases, document = parity_run
        assert document.results and backend in document.results[0].backends
        return document

    return document


@pytest.fixture
def result_of(document_of):
    def result(backend: str, case: str, dtype: str) -> dict:
        document = document_of(backend)
        return next(r for r in document.results if r.case == case and r.dtype == dtype).backends[backend]

    return result


def assert_explained(check: dict, dtype: str) -> None:
    """A known deviation's numbers against its entry (the registry's, or a plugin's own:
    ``BackendEntry.deviations``): it deviates, and within its bound."""
    registered = [*deviations.KNOWN_DEVIATIONS, *(known_deviation for name in known()
                                                  for known_deviation in entry(name).deviations)]
    found = next(e for e in registered if e.name == check.deviation.name)
    assert check.quantity == "dtype" or check.excess > 1, "a known deviation must deviate"
    assert found.explains(check, dtype), (check.quantity, check.rel_error, found.name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CATALOGUE))
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_agrees_with_the_reference(result_of, backend, case, dtype):
    result = result_of(backend, case, dtype)
    assert result.status in ("pass", "known_deviation"), result.reason
    if backend != "finite-diff" and result.status == "pass":
        assert result.dtype_used == dtype
    for check in result.checks:
        if check.verdict == "known_deviation":
            assert_explained(check, dtype)
            assert set(check.deviation.ops) & {op.op for op in result.diagnosis.ops}
        else:
            assert check.verdict == "pass" and check.mismatched == 0, check.message


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_quantity_is_checked(result_of, backend, dtype):
    result = result_of(backend, "deep-sigmoid", dtype)
    quantities = {check.quantity for check in result.checks if check.mode is None} - {"dtype"}
    gradients = {f"d{kind}{layer}" for layer in range(1, 5) for kind in "Wb"}
    if backend == "finite-diff":
        assert quantities == {"cost", *gradients}
    else:
        assert quantities == {"cost", *gradients, *(f"A{l}" for l in range(1, 5)), "trajectory cost",
                              *(f"trajectory {kind}{layer}" for layer in range(1, 5) for kind in "Wb")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_second_order_mode_answers_every_case(parity_run, document_of, backend):
    """Each backend's modes (``SECOND_ORDER_MODES``) all answer on every case the run takes
    through second order (``second_order_case``), whatever its first-order result, and on no
    other case; a mode that does not run says why, and only where that is expected."""
    cases, _document = parity_run
    for case, result in zip(cases, document_of(backend).results, strict=True):
        modes = result.backends[backend].modes
        expected = SECOND_ORDER_MODES[backend] if second_order_case(case) else {}
        assert set(modes) == set(expected), (result.case, result.dtype)
        for mode, record in modes.items():
            assert record.computes == list(SECOND_ORDER_MODES[backend][mode])
            if record.status == "skipped":
                assert fnmatch.fnmatchcase(record.reason, SKIPPED_MODES[backend, mode]), record.reason


@pytest.mark.parametrize("dtype", SECOND_ORDER_DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_second_order_quantity_is_checked(result_of, backend, dtype):
    """J̇ and every Ȧ[l] for a mode computing tangents, every H V block for one computing H V."""
    result = result_of(backend, "deep-sigmoid", dtype)
    assert set(result.modes) == set(SECOND_ORDER_MODES[backend])
    for mode, record in result.modes.items():
        quantities = {check.quantity for check in result.checks if check.mode == mode} - {"dtype"}
        expected = set()
        if "tangents" in record.computes:
            expected |= {"Jdot", *(f"Adot{layer}" for layer in range(1, 5))}
        if "hvp" in record.computes:
            expected |= {f"HV {kind}{layer}" for layer in range(1, 5) for kind in "Wb"}
        assert quantities == (set() if record.status == "skipped" else expected), mode


COMPILING = {"jax": True, "keras-jax": True, "tensorflow": True, "keras-tensorflow": True, "torch": False,
             "keras-torch": False, "numpy": False, "finite-diff": False, "autograd": False}  # does its worker compile?


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_run_says_where_each_workers_time_went(document_of, backend):
    """Set-up, compile (the framework's own counters: JAX's compile events, TensorFlow's
    graph-building time; nothing for the eager ones), compute and probes, within the worker's time."""
    spent = document_of(backend).run.timing[backend]
    assert spent.setup_s > 0 and spent.compute_s > 0
    assert (spent.compile_s > 0) == COMPILING[backend], spent
    assert spent.setup_s + spent.compile_s + spent.compute_s + spent.probes_s <= spent.total_s


@pytest.mark.parametrize("backend", [backend_param(name) for name in STRICT_FLOAT64])
def test_float64_cost_and_gradients_within_1e12_on_unsaturated_cases(document_of, backend):
    worst = max((check.rel_error, result.case, check.quantity)
                for result in document_of(backend).results if result.dtype == "float64"
                and result.case in CATALOGUE and result.case != "saturated"
                for check in result.backends[backend].checks if check.kind in ("cost", "gradients"))
    assert worst[0] < 1e-12, worst


@pytest.mark.parametrize("backend", BACKENDS)
def test_registered_deviations_show_where_expected_and_nowhere_else(document_of, backend):
    """Each (backend, dtype) shows exactly the registered deviations this data expects."""
    for dtype in DTYPES:
        shown = {check.deviation.name for result in document_of(backend).results
                 if result.dtype == dtype and result.case in CATALOGUE
                 for check in result.backends[backend].checks if check.deviation}
        assert shown == EXPECTED_DEVIATIONS.get((backend, dtype), set()), dtype


@pytest.mark.parametrize("backend", [backend_param("finite-diff")])
def test_finite_differences_agree_with_the_reference_under_an_rtol_of_at_least_1e7(document_of, backend):
    """Central differences resolve no finer than 1e-7 relative (``FINITE_DIFFERENCE_RTOL``), on
    top of an absolute rounding floor (so a gradient whose entries are small next to |J| may be
    further apart normwise); every gradient check is judged so, and uses at most its tolerance."""
    for result in document_of(backend).results:
        checks = [c for c in result.backends["finite-diff"].checks if c.kind == "gradients"]
        assert checks and all(c.verdict == "pass" for c in checks), result.case
        assert min(c.rtol for c in checks) >= FINITE_DIFFERENCE_RTOL == 1e-7, result.case
        assert max(c.excess for c in checks if c.total) <= 1.0, result.case


def test_generated_networks_cover_every_activation_loss_and_shape_range():
    cases = generated_cases(FUZZ["default"], "float64")
    assert len({architecture(case) for case in cases}) == FUZZ["default"]
    assert {case.spec.hidden_activation for case in cases} == set(HIDDEN_ACTIVATIONS)
    assert {case.spec.loss for case in cases} == set(LOSSES)
    assert {case.spec.depth for case in cases} == {1, 2, 3, 4}
    assert max(max(case.spec.layer_sizes) for case in cases) > 12 and max(case.m for case in cases) > 48
    assert {case.training.optimizer for case in cases} == set(OPTIMIZERS)
    assert any(case.training.batch_size and case.m % case.training.batch_size for case in cases)  # a partial batch
    second = [case for case in cases if second_order_case(case)]
    assert len(second) == min(SECOND_ORDER_GENERATED, len(cases)) and {case.spec.depth for case in second} == {1, 2, 3, 4}
    assert {(case.spec.hidden_activation, case.spec.loss) for case in second} == set(itertools.product(HIDDEN_ACTIVATIONS, LOSSES))


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_networks_agree_on_every_backend(parity_run, document_of, backend):
    document = document_of(backend)
    cases, _document = parity_run
    generated = [(case, result) for case, result in zip(cases, document.results) if case.name.startswith("generated")]
    seen = {dtype: {architecture(case) for case, result in generated
                    if case.dtype == dtype and result.backends[backend].checks} for dtype in DTYPES}
    print(f"{backend}: {', '.join(f'{len(seen[d])} distinct architectures in {d}' for d in DTYPES)}")
    assert all(len(architectures) >= GENERATED for architectures in seen.values()), seen
    for case, result in generated:
        outcome = result.backends[backend]
        assert outcome.status in ("pass", "known_deviation"), f"{result.description}: {outcome.reason}"
        for check in outcome.checks:
            if check.verdict == "known_deviation":
                assert_explained(check, case.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_exactly_at_a_kink_agree(result_of, backend):
    """Or differ by the registered deviations ``KINK_DEVIATIONS`` expects, within their bounds."""
    for dtype in DTYPES:
        result = result_of(backend, "zero-logits", dtype)
        assert result.status in ("pass", "known_deviation"), result.reason
        for check in result.checks:
            if check.verdict == "known_deviation":
                assert_explained(check, dtype)
        shown = {check.deviation.name for check in result.checks if check.deviation}
        assert shown == KINK_DEVIATIONS.get((backend, dtype), set()), dtype


@pytest.mark.parametrize("backend, case, op", [
    pytest.param("keras-jax", "tanh", "tanh", marks=pytest.mark.keras),
    pytest.param("keras-jax", "seed-2layer", "mean", marks=pytest.mark.keras),
    pytest.param("keras-torch", "seed-2layer", "matmul", marks=pytest.mark.keras),
    pytest.param("keras-tensorflow", "momentum", "cast_scalar", marks=pytest.mark.keras),
])
def test_float64_keras_diagnosis_names_the_ops_and_its_reproducer_fails_alone(result_of, backend, case, op):
    assert_the_probes_single_out(result_of(backend, case, "float64").diagnosis, op)


@pytest.mark.parametrize("backend", [backend_param("autograd")])
def test_autograds_relu_tie_split_is_singled_out_by_its_probe_and_reproducer(result_of, backend):
    """autograd's np.maximum gradient at a tie (0.5, where the reference takes 0) shows on the
    zero-logits case, whose hidden pre-activations Z2 are exactly 0."""
    assert_the_probes_single_out(result_of(backend, "zero-logits", "float64").diagnosis, "relu_grad")


def assert_the_probes_single_out(diagnosis, op: str) -> None:
    """``op`` deviates when probed alone (its error or its output dtype), and the diagnosis's
    reproducer, a short script without gradparity, fails its assert when run on its own."""
    found = {record.op: record for record in diagnosis.ops}
    assert op in found and (found[op].rel_error > found[op].tolerance or found[op].output_dtype == "float32")
    reproducer = diagnosis.reproducer
    assert reproducer and len(reproducer.splitlines()) <= 20 and "gradparity" not in reproducer
    clean = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    alone = subprocess.run([sys.executable, "-c", reproducer], capture_output=True, text=True, env=clean, timeout=300)
    assert alone.returncode != 0 and "AssertionError" in alone.stderr, alone.stderr[-2000:]


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (checked in a subprocess, so this process stays framework-free)."""
    if missing_requirement(REGISTRY["torch"]):
        return False
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True, timeout=120)
    return probe.stdout.strip() == "True"


@pytest.mark.torch
def test_cuda_parity_with_tf32_off():
    if not cuda_available():
        pytest.skip("no CUDA GPU on this machine: the CUDA path is not exercised here")
    document = run([build_case("seed-2layer", dtype) for dtype in DTYPES],
                   RunOptions(backends=["torch", "jax", "tensorflow"], device="cuda"))
    assert document.environment.device == "cuda" and not document.environment.allow_tf32
    for result in document.results:
        for name, outcome in result.backends.items():
            assert outcome.status in ("pass", "skipped"), f"{name}: {outcome.reason}"
