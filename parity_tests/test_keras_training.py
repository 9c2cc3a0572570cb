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
from gradparity.core.reference import train

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


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|."""
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def per_step(a: list[float], b: list[float]) -> float:
    """The largest relative difference of one step's J."""
    return float(np.max(np.abs(np.subtract(a, b)) / np.abs(b)))


@pytest.mark.keras
@pytest.mark.parametrize("backend", GROUPS["keras"])
def test_keras_trains_on_the_reference_batches_with_its_own_optimizer(backend):
    reason = missing_requirement(REGISTRY[backend])
    if reason:
        pytest.skip(reason)
    done = subprocess.run([sys.executable, "-c", SCRIPT, backend, json.dumps(RUNS)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
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
