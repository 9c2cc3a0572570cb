"""The parity engine: run cases on backends, compare every quantity with the reference, and
assemble the ``gradparity/1`` result document (plain data, ready for JSON)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from gradparity.backends import REGISTRY, BackendEntry, resolve
from gradparity.backends.contract import Evaluation, Trajectory
from gradparity.core import deviations
from gradparity.core.boundary import trained_boundary
from gradparity.core.cases import Case
from gradparity.core.compare import (Check, backend_status, compare, finite_difference_tolerance,
                                     first_divergent_layer, gradient_magnitudes, tolerance, worst_check)
from gradparity.core.gradcheck import STEP
from gradparity.core.reference import cost_and_gradients, model
from gradparity.environment import fingerprint
from gradparity.runner import BackendOutcome, Progress, default_parallel, run_backends

SCHEMA = "gradparity/1"
DEFAULT_TIMEOUT = 600.0


@dataclass
class RunOptions:
    """How to run: which backends (registry names, or extra entries injected through the API),
    device, TF32, per-backend timeout in seconds, workers at a time, arrays in the document,
    and the decision boundary of the trained reference for 2-D float64 cases (for reports)."""

    backends: list[str] | None = None
    extra_backends: dict[str, BackendEntry] = field(default_factory=dict)
    device: str = "cpu"
    allow_tf32: bool = False
    timeout: float = DEFAULT_TIMEOUT
    parallel: int | None = None
    include_arrays: bool = False
    decision_boundaries: bool = False


@dataclass
class ReferenceResult:
    """The reference's numbers for one case: evaluation, training trajectory and the term
    magnitudes of its gradients (the scale of their rounding)."""

    evaluation: Evaluation
    trajectory: Trajectory
    magnitudes: dict[str, np.ndarray]


def reference_result(case: Case) -> ReferenceResult:
    """Cost, gradients, activations and trajectory of the hand-derived NumPy backprop."""
    J, gradients, cache = cost_and_gradients(case.params, case.X, case.Y, case.spec)
    trained = model(case.params, case.X, case.Y, case.spec, case.learning_rate, case.steps)
    return ReferenceResult(
        Evaluation(J, gradients, cache.A[1:], case.dtype),
        Trajectory(trained.costs, trained.params, case.dtype),
        gradient_magnitudes(case.params, cache, case.Y, case.spec),
    )


def run(cases: list[Case], options: RunOptions | None = None, progress: Progress | None = None) -> dict:
    """Run ``cases`` on the chosen backends and return the ``gradparity/1`` document."""
    options = options or RunOptions()
    started = time.perf_counter()
    entries = {name: REGISTRY[name] for name in resolve(options.backends)} if options.backends != [] else {}
    entries.update(options.extra_backends)
    parallel = options.parallel or default_parallel()
    worker_options = {"device": options.device, "allow_tf32": options.allow_tf32,
                      "threads": max(1, default_parallel() // min(parallel, len(entries) or 1))}
    outcomes = run_backends(cases, entries, worker_options, options.timeout, parallel, progress)
    results = [case_result(index, case, reference_result(case), outcomes, options.include_arrays)
               for index, case in enumerate(cases)]
    if options.decision_boundaries:
        for case, result in zip(cases, results):
            result["reference"]["decision_boundary"] = trained_boundary(case) if case.dtype == "float64" else None
    return {
        "schema": SCHEMA,
        "environment": fingerprint(outcomes, options.device, options.allow_tf32),
        "options": {"cases": list(dict.fromkeys(case.name for case in cases)),
                    "backends": list(entries), "dtypes": list(dict.fromkeys(case.dtype for case in cases)),
                    "steps": sorted({case.steps for case in cases})},
        "results": results,
        "summary": summarize(results),
        "run": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_s": time.perf_counter() - started,
            "threads_per_worker": worker_options["threads"],
            "backend_seconds": {name: outcome.seconds for name, outcome in outcomes.items()},
            "import_seconds": {name: outcome.import_seconds for name, outcome in outcomes.items()},
            "case_seconds": {name: {cases[i].key: out[2] for i, out in outcome.outputs.items()}
                             for name, outcome in outcomes.items()},
        },
    }


def case_result(index: int, case: Case, reference: ReferenceResult, outcomes: dict[str, BackendOutcome],
                include_arrays: bool) -> dict:
    """The document entry of one case: its network, the reference, and every backend's verdict."""
    result = {
        "case": case.name, "description": case.description, "dtype": case.dtype,
        "layers": list(case.spec.layer_sizes), "hidden_activation": case.spec.hidden_activation,
        "loss": case.spec.loss, "m": case.m, "learning_rate": case.learning_rate, "steps": case.steps,
        "reference": {"cost": reference.evaluation.cost, "costs": list(reference.trajectory.costs)},
        "backends": {name: backend_result(case, index, reference, outcome, include_arrays)
                     for name, outcome in outcomes.items()},
    }
    if include_arrays:
        result["reference"]["gradients"] = arrays_to_lists(reference.evaluation.gradients)
    return result


def backend_result(case: Case, index: int, reference: ReferenceResult, outcome: BackendOutcome,
                   include_arrays: bool) -> dict:
    """Status, metrics and verdicts of one backend on one case."""
    empty = {"status": outcome.status, "reason": outcome.reason, "dtype_used": None, "cost": None,
             "costs": None, "checks": [], "first_divergent_layer": None, "worst": None}
    if outcome.status != "ok":
        return empty
    if index in outcome.errors:
        return {**empty, "status": "error", "reason": outcome.errors[index]}
    evaluation, trajectory, _seconds = outcome.outputs[index]
    checks = compare_outputs(case, outcome.name, reference, evaluation, trajectory)
    status = backend_status(checks)
    failure = next((c.message for c in checks if c.verdict == "fail"), None)
    result = {
        "status": status, "reason": failure or "", "dtype_used": evaluation.dtype_used,
        "cost": float(evaluation.cost), "costs": list(map(float, trajectory.costs)) if trajectory else None,
        "checks": [check.to_dict() for check in checks],
        "first_divergent_layer": first_divergent_layer(checks), "worst": worst_check(checks),
    }
    if include_arrays:
        result["gradients"] = arrays_to_lists(evaluation.gradients)
    return result


def compare_outputs(case: Case, backend: str, reference: ReferenceResult, evaluation: Evaluation,
                    trajectory: Trajectory | None) -> list[Check]:
    """One check per quantity: dtype, cost, each dW/db, each A[l], trajectory costs and params."""
    spec, m, dtype = case.spec, case.m, case.dtype
    ground_truth = evaluation.checked is not None

    def check(quantity, kind, actual, expected, layer=None, mask=None, magnitude=None) -> Check:
        tol = tolerance(kind, dtype, spec, m, layer, case.steps, case.tolerance.get(kind))
        if ground_truth:
            tol = finite_difference_tolerance(tol, reference.evaluation.cost, STEP)
        return known_or_failed(compare(quantity, kind, actual, expected, dtype, tol, backend, mask, magnitude),
                               backend, case)

    used = {evaluation.dtype_used, trajectory.dtype_used if trajectory else evaluation.dtype_used}
    wrong_dtype = used != {dtype} and not ground_truth  # differences are float64 by design
    checks = [dtype_check(backend, dtype, ", ".join(sorted(used - {dtype})))] if wrong_dtype else []
    checks.append(check("cost", "cost", np.array(evaluation.cost), np.array(reference.evaluation.cost)))
    for name, expected in reference.evaluation.gradients.items():
        mask = evaluation.checked[name] if ground_truth else None
        checks.append(check(f"d{name}", "gradients", evaluation.gradients[name], expected, mask=mask,
                            magnitude=reference.magnitudes[name]))
    for layer, (actual, expected) in enumerate(zip(evaluation.activations, reference.evaluation.activations), 1):
        checks.append(check(f"A{layer}", "activations", actual, expected, layer=layer))
    if trajectory is not None:
        checks.append(check("trajectory cost", "trajectory", np.array(trajectory.costs),
                            np.array(reference.trajectory.costs)))
        for name, expected in reference.trajectory.params.items():
            checks.append(check(f"trajectory {name}", "trajectory", trajectory.params[name], expected))
    return checks


def dtype_check(backend: str, asked: str, used: str) -> Check:
    """A failed check for a backend that computed in another dtype than the one asked."""
    message = f"{backend} computed in {used} although {asked} was asked"
    return Check("dtype", "dtype", float("nan"), float("nan"), float("nan"), float("nan"), float("nan"),
                 [], 1, 1, 0.0, 0.0, "the dtype asked is the dtype computed in", "fail", message)


def known_or_failed(check: Check, backend: str, case: Case) -> Check:
    """Turn a failed check into a known deviation when the registry explains its size."""
    if check.verdict == "fail":
        deviation = deviations.find(backend, case.name, case.dtype, check.quantity, check.rel_error)
        if deviation:
            check.verdict = "known_deviation"
            check.deviation = deviation.to_dict(backend, case.name, check.quantity, check.rel_error)
    return check


def summarize(results: list[dict]) -> dict:
    """Counts of (case, backend) pairs by status."""
    counts = {"passed": 0, "failed": 0, "known_deviations": 0, "skipped": 0, "errors": 0}
    key = {"pass": "passed", "fail": "failed", "known_deviation": "known_deviations",
           "skipped": "skipped", "error": "errors"}
    for result in results:
        for backend in result["backends"].values():
            counts[key[backend["status"]]] += 1
    return counts


def arrays_to_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    """``{"W1": nested lists}``; NaN (entries finite differences did not sample) become None."""
    return {name: np.where(np.isnan(value), None, value.astype(np.float64)).tolist() for name, value in arrays.items()}
