"""Every backend against the reference on every catalogue case, in both dtypes, plus
hypothesis-generated architectures. The catalogue runs once per session on every installed
backend, workers in parallel as ``gradparity run`` does; the tests read that run's document."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from gradparity.backends import REGISTRY, missing_requirement
from gradparity.core import deviations
from gradparity.core.cases import CATALOGUE, build_case, make_case
from gradparity.core.network import DTYPES, NetworkSpec
from gradparity.core.reference import initial_params
from gradparity.engine import RunOptions, run

# Failures the suite expects, kept as data (backend, dtype) -> the reason they must give.
EXPECTED_FAILURES = {
    ("keras-jax", "float64"): "keras-jax computed in float32 although float64 was asked",
    ("keras-torch", "float64"): "keras-torch computed in float32 although float64 was asked",
}
STRICT_FLOAT64 = ("jax", "torch", "tensorflow", "keras-tensorflow")




def backend_param(name: str):
    """A backend as a test parameter with its marker (``pytest -m torch``)."""
    marker = name.split("-")[0].replace("finite", "finite_diff")
    return pytest.param(name, marks=getattr(pytest.mark, marker), id=name)


BACKENDS = [backend_param(name) for name in REGISTRY]


def backend_of(item: pytest.Item) -> str | None:
    """The backend a collected test is parametrised with, if any."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec else None


@pytest.fixture(scope="session")
def catalogue(request) -> dict:
    """The catalogue in both dtypes, run once on every installed backend that a selected test
    of this module names (so ``pytest -m torch`` runs torch alone)."""
    selected = {backend_of(item) for item in request.session.items if item.module.__name__ == __name__}
    installed = [name for name in REGISTRY if name in selected and not missing_requirement(REGISTRY[name])]
    cases = [build_case(name, dtype) for name in CATALOGUE for dtype in DTYPES]
    return run(cases, RunOptions(backends=installed, timeout=900)) if installed else {"results": []}


@pytest.fixture
def document_of(catalogue):
    """The catalogue document for one backend; skips a backend that is not installed."""
    def document(backend: str) -> dict:
        reason = missing_requirement(REGISTRY[backend])
        if reason:
            pytest.skip(reason)
        assert catalogue["results"] and backend in catalogue["results"][0]["backends"]
        return catalogue

    return document


@pytest.fixture
def result_of(document_of):
    def result(backend: str, case: str, dtype: str) -> dict:
        document = document_of(backend)
        return next(r for r in document["results"] if r["case"] == case and r["dtype"] == dtype)["backends"][backend]

    return result


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CATALOGUE))
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_agrees_with_the_reference(result_of, backend, case, dtype):
    result = result_of(backend, case, dtype)
    expected_failure = EXPECTED_FAILURES.get((backend, dtype))
    if expected_failure:
        assert result["status"] == "fail" and result["reason"] == expected_failure
        assert result["checks"][0]["quantity"] == "dtype"
        return
    assert result["status"] in ("pass", "known_deviation"), result["reason"]
    if backend != "finite-diff":
        assert result["dtype_used"] == dtype
    for check in result["checks"]:
        if check["verdict"] == "known_deviation":
            assert check["mismatched"] > 0 and check["rel_error"] > check["rtol"], "a known deviation must deviate"
            assert deviations.find(backend, case, dtype, check["quantity"], check["rel_error"]) is not None
        else:
            assert check["verdict"] == "pass" and check["mismatched"] == 0, check["message"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_quantity_is_checked(result_of, backend, dtype):
    result = result_of(backend, "deep-sigmoid", dtype)
    quantities = {check["quantity"] for check in result["checks"]} - {"dtype"}
    gradients = {f"d{kind}{layer}" for layer in range(1, 5) for kind in "Wb"}
    if backend == "finite-diff":
        assert quantities == {"cost", *gradients}
    else:
        assert quantities == {"cost", *gradients, *(f"A{l}" for l in range(1, 5)), "trajectory cost",
                              *(f"trajectory {kind}{layer}" for layer in range(1, 5) for kind in "Wb")}


@pytest.mark.parametrize("backend", [backend_param(name) for name in STRICT_FLOAT64])
def test_float64_cost_and_gradients_within_1e12_on_unsaturated_cases(document_of, backend):
    worst = max((check["rel_error"], result["case"], check["quantity"])
                for result in document_of(backend)["results"] if result["dtype"] == "float64"
                and result["case"] != "saturated"
                for check in result["backends"][backend]["checks"] if check["kind"] in ("cost", "gradients"))
    assert worst[0] < 1e-12, worst


@pytest.mark.parametrize("backend", BACKENDS)
def test_known_deviations_of_a_backend_still_show(document_of, backend):
    """A registry entry that no longer deviates is stale: it must be removed, not kept."""
    entries = [d for d in deviations.KNOWN_DEVIATIONS if d.backend == backend]
    shown = {check["deviation"]["cause"] for result in document_of(backend)["results"]
             for check in result["backends"][backend]["checks"] if check["deviation"]}
    assert shown == {entry.cause for entry in entries}


@pytest.mark.parametrize("backend", [backend_param("finite-diff")])
def test_finite_differences_agree_with_the_reference_to_1e7(document_of, backend):
    for result in document_of(backend)["results"]:
        checks = [c for c in result["backends"]["finite-diff"]["checks"] if c["kind"] == "gradients"]
        assert checks and all(c["verdict"] == "pass" for c in checks), result["case"]


@st.composite
def networks(draw):
    """A random dense network (depth 1-4, widths 1-12, m 1-48) with data and xavier parameters."""
    loss = draw(st.sampled_from(["bce", "softmax-ce", "mse"]))
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=5))
    sizes[-1] = max(sizes[-1], 2) if loss == "softmax-ce" else sizes[-1]
    spec = NetworkSpec(tuple(sizes), draw(st.sampled_from(["sigmoid", "tanh", "relu"])), loss)
    m, seed = draw(st.integers(1, 48)), draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sizes[0], m))
    Y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], m)] if loss == "softmax-ce" else rng.integers(0, 2, (sizes[-1], m)) * 1.0
    return spec, X, Y, initial_params(spec, "xavier", seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=1, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # an engine run per example: no shrinking
@given(st.lists(networks(), min_size=4, max_size=4), st.sampled_from(DTYPES))
def test_generated_architectures_agree_on_every_backend(backend, networks_drawn, dtype):
    reason = missing_requirement(REGISTRY[backend])
    if reason:
        pytest.skip(reason)
    cases = [make_case(f"generated-{i}", spec.describe(), X, Y, params, spec, dtype, 0.1, 3)
             for i, (spec, X, Y, params) in enumerate(networks_drawn)]
    document = run(cases, RunOptions(backends=[backend], timeout=900))
    for result in document["results"]:
        outcome = result["backends"][backend]
        if (backend, dtype) in EXPECTED_FAILURES:
            assert outcome["reason"] == EXPECTED_FAILURES[(backend, dtype)]
        else:
            assert outcome["status"] == "pass", f"{result['description']}: {outcome['reason']}"


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (checked in a subprocess, so this process stays framework-free)."""
    import subprocess
    import sys

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
    assert document["environment"]["device"] == "cuda" and not document["environment"]["allow_tf32"]
    for result in document["results"]:
        for name, outcome in result["backends"].items():
            assert outcome["status"] in ("pass", "skipped"), f"{name}: {outcome['reason']}"
