"""The Keras adapter trains with Keras's own optimizers on exactly the reference's batches, in
the reference's order, and records each step's J on its batch before the update (not Keras's
running mean of the epoch). One backend per process: each Keras backend runs in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gradparity.backends import GROUPS, REGISTRY, missing_requirement
from gradparity.core.cases import build_case
from gradparity.core.reference import cost_and_gradients, train

# (case, dtype, training overrides): shuffled batches of 64 ending on a batch of 16, with plain
# SGD, with momentum, then the document's Keras Adam set-up (batches of 100, shuffled).
RUNS = [("momentum", "float64", {"optimizer": "sgd"}), ("momentum", "float64", {}),
        ("keras-document", "float64", {}), ("momentum", "float32", {})]
SCRIPT = """
import json, sys
from gradparity.backends import load
from gradparity.core.cases import build_case
adapter = load(sys.argv[1])
out = {"optimizers": adapter.optimizers, "runs": []}
for name, dtype, overrides in json.loads(sys.argv[2]):
    trajectory = adapter.train(build_case(name, dtype, **overrides))
    out["runs"].append({"costs": trajectory.costs, "dtype_used": trajectory.dtype_used,
                        "params": {k: v.tolist() for k, v in trajectory.params.items()}})
print("RESULT" + json.dumps(out))
"""


def keras_replay(case, round_hyperparameters: bool) -> dict[str, np.ndarray]:
    """Keras 3's own update formulas (``keras/src/optimizers/sgd.py`` and ``adam.py``,
    ``update_step``) replayed in NumPy float64 on the reference's gradients and batches, with
    momentum, beta1 and beta2 rounded through float32 as ``ops.cast(value, "float64")`` does
    on the TensorFlow backend, or exact:
        SGD(momentum):  u = u mu - g lr,  W += u
        Adam:           m += (g - m)(1 - b1),  v += (g^2 - v)(1 - b2),
                        alpha = lr sqrt(1 - b2^t) / (1 - b1^t),  W -= m alpha / (sqrt(v) + eps)"""
    training = case.training
    cast = (lambda value: float(np.float32(value))) if round_hyperparameters else float  # noqa: E731
    params = {name: value.copy() for name, value in case.params.items()}
    first = {name: np.zeros_like(value) for name, value in params.items()}
    second = {name: np.zeros_like(value) for name, value in params.items()}
    for t, batch in enumerate(training.batches(case.m), start=1):
        _J, grads, _cache = cost_and_gradients(params, case.X[:, batch], case.Y[:, batch], case.spec)
        for name, g in grads.items():
            if training.optimizer == "momentum":
                first[name] = first[name] * cast(training.momentum) - g * training.learning_rate
                params[name] += first[name]
            else:
                first[name] += (g - first[name]) * (1 - training.beta1)
                second[name] += (g * g - second[name]) * (1 - training.beta2)
                alpha = training.learning_rate * np.sqrt(1 - cast(training.beta2) ** t) / (1 - cast(training.beta1) ** t)
                params[name] -= first[name] * alpha / (np.sqrt(second[name]) + training.epsilon)
    return params


@pytest.fixture(scope="module")
def trained():
    """backend -> its adapter's ``optimizers`` and one trajectory per entry of ``RUNS``, from one
    subprocess per backend that both tests of this module read."""
    results: dict[str, dict] = {}

    def of(backend: str) -> dict:
        reason = missing_requirement(REGISTRY[backend])
        if reason:
            pytest.skip(reason)
        if backend not in results:
            done = subprocess.run([sys.executable, "-c", SCRIPT, backend, json.dumps(RUNS)],
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            results[backend] = json.loads(done.stdout.split("RESULT", 1)[1])
        return results[backend]

    return of


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|."""
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def per_step(a: list[float], b: list[float]) -> float:
    """The largest relative difference of one step's J."""
    return float(np.max(np.abs(np.subtract(a, b)) / np.abs(b)))


@pytest.mark.keras
@pytest.mark.parametrize("backend", GROUPS["keras"])
def test_keras_trains_on_the_reference_batches_with_its_own_optimizer(trained, backend):
    result = trained(backend)
    assert result["optimizers"] == {"sgd": "sgd", "momentum": "momentum", "adam": "adam-hat", "adam-hat": "adam-hat"}
    for (name, dtype, overrides), run in zip(RUNS, result["runs"]):
        case = build_case(name, dtype, **overrides)
        form = result["optimizers"][case.training.optimizer]
        reference = train(case.params, case.X, case.Y, case.spec, case.training.in_form(form))
        costs = np.array(run["costs"])
        assert len(costs) == case.steps == len(reference.costs)
        assert run["dtype_used"] == dtype or (backend != "keras-tensorflow" and dtype == "float64")
        # Keras's logs["loss"] would be the running mean over the epoch: far from the batches' J.
        per_epoch = case.steps // case.training.epochs
        starts = [step - step % per_epoch for step in range(case.steps)]
        running = [np.average(reference.costs[start:step + 1], weights=reference.batch_sizes[start:step + 1])
                   for step, start in enumerate(starts)]
        assert per_step(running, reference.costs) > 1e-3
        # Plain SGD on keras-tensorflow float64 is the reference's arithmetic (batch by batch);
        # momentum and Adam cast their hyper-parameters through float32 there (ops.cast of a
        # Python float), keras-jax/keras-torch compute some float64 ops in float32.
        exact = backend == "keras-tensorflow" and dtype == "float64" and case.training.optimizer == "sgd"
        cost_tolerance, params_tolerance = (1e-12, 1e-12) if exact else (1e-5, 1e-4)
        assert per_step(costs, reference.costs) < cost_tolerance, (name, dtype, overrides)
        assert max(relative(run["params"][key], reference.params[key]) for key in reference.params) \
            < params_tolerance, (name, dtype, overrides)


@pytest.mark.keras
def test_keras_tensorflow_float64_training_is_kerass_formulas_with_float32_rounded_betas(trained):
    """The registered deviation keras-tensorflow-float32-hyperparameters, down to its cause:
    a NumPy replay of Keras's update with float32-rounded momentum and betas reproduces
    keras-tensorflow's float64 trajectory to 1e-12 (momentum and the document's Adam); with
    exact ones it does not."""
    runs = trained("keras-tensorflow")["runs"]
    for name, dtype, overrides in [("momentum", "float64", {}), ("keras-document", "float64", {})]:
        run = runs[RUNS.index((name, dtype, overrides))]
        case = build_case(name, dtype, **overrides)
        rounded, exact = keras_replay(case, True), keras_replay(case, False)
        gap = max(relative(run["params"][key], rounded[key]) for key in rounded)
        print(f"{name}: keras-tensorflow vs the replay with float32-rounded betas {gap:.2g}")
        assert gap < 1e-12, name
        assert max(relative(run["params"][key], exact[key]) for key in exact) > 1e-8, name
