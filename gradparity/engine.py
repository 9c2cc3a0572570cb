"""The parity engine: run cases on backends, compare every quantity with the reference, and
assemble the ``gradparity/1`` result document (plain data, ready for JSON)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache

import numpy as np
from threadpoolctl import threadpool_limits

from gradparity.backends import REGISTRY, BackendEntry, resolve
from gradparity.backends.contract import Evaluation, Trajectory
from gradparity.backends.layout import dtype_name
from gradparity.backends.worker import describe
from gradparity.core import deviations
from gradparity.core.boundary import trained_boundary
from gradparity.core.cases import Case
from gradparity.core.compare import (Check, ComparisonContext, backend_status, compare, failed_check, finite_difference_tolerance,
                                     first_divergent_layer, first_divergent_step, formulation_gap, gradient_magnitudes,
                                     tolerance, trajectory_growth, unmeasured_check, worst_check)
from gradparity.core.diagnosis import read_pattern, scale_factor
from gradparity.core.gradcheck import STEP
from gradparity.core.reference import cost_and_gradients, train
from gradparity.environment import fingerprint
from gradparity.runner import BackendOutcome, Progress, WorkerRun, default_parallel, run_backends

SCHEMA = "gradparity/1"
DEFAULT_TIMEOUT = 600.0
ADAM_FORMS = ("adam", "adam-hat")


@dataclass
class RunOptions:
    """How to run: which backends (registry names, or extra entries injected through the API),
    device, TF32, per-backend timeout in seconds, workers at a time, arrays in the document,
    the decision boundary of the trained reference for 2-D float64 cases (for reports), and
    ``strict``: known deviations and stale entries count as failures (recorded in the document),
    ``shard = (K, N)``: only the K-th of N shares of the case x backend matrix (``shares``), and
    ``probe_all``: probe and diagnose every result, passing ones too (``gradparity explain``),
    and ``trajectories``: run each case's training too (False: cost, gradients and activations
    alone, all that ``gradparity check`` asks of a framework)."""

    backends: list[str] | None = None
    extra_backends: dict[str, BackendEntry] = field(default_factory=dict)
    device: str = "cpu"
    allow_tf32: bool = False
    timeout: float = DEFAULT_TIMEOUT
    parallel: int | None = None
    include_arrays: bool = False
    decision_boundaries: bool = False
    strict: bool = False
    shard: tuple[int, int] | None = None
    probe_all: bool = False
    trajectories: bool = True


@dataclass
class ReferenceResult:
    """The reference's numbers for one case: evaluation, the term magnitudes of its gradients
    (the scale of their rounding) and its training trajectory in each optimizer form used:
    ``trajectory`` follows the case's own, ``trajectory_in`` another (the other Adam form of a
    framework that implements that one), run when first asked for."""

    case: Case
    evaluation: Evaluation
    magnitudes: dict[str, np.ndarray]
    trajectories: dict[str, Trajectory] = field(default_factory=dict)

    @property
    def trajectory(self) -> Trajectory:
        return self.trajectory_in(self.case.training.optimizer)

    def trajectory_in(self, form: str) -> Trajectory:
        """The reference trained with the case's training in optimizer form ``form``."""
        if form not in self.trajectories:
            case = self.case
            trained = train(case.params, case.X, case.Y, case.spec, case.training.in_form(form))
            self.trajectories[form] = Trajectory(trained.costs, trained.params, case.dtype, form)
        return self.trajectories[form]

    def formulations(self) -> dict | None:
        """For an Adam case, both forms' costs (every step, and the last) and how far apart they
        end (``formulation_gap``) next to the trajectory tolerance; None for other optimizers.
        A figure that is not finite (a trajectory that diverged) is None."""
        if self.case.training.optimizer not in ADAM_FORMS:
            return None
        adam, adam_hat = (self.trajectory_in(form) for form in ADAM_FORMS)
        gap = formulation_gap(adam.costs, adam.params, adam_hat.costs, adam_hat.params)
        tol = tolerance("trajectory", self.case.dtype, self.case.spec, self.case.m, steps=self.case.steps)
        costs = {form: [finite(cost) for cost in self.trajectory_in(form).costs] for form in ADAM_FORMS}
        return {"costs": costs, "last_costs": {form: values[-1] for form, values in costs.items()},
                **{key: finite(value) if isinstance(value, float) else value for key, value in gap.items()},
                "rtol": tol.rtol}


def finite(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (JSON has neither)."""
    return float(value) if np.isfinite(value) else None


def reference_result(case: Case) -> ReferenceResult:
    """Cost, gradients and activations of the hand-derived NumPy backprop (its trajectories
    are run on demand)."""
    J, gradients, cache = cost_and_gradients(case.params, case.X, case.Y, case.spec)
    return ReferenceResult(case, Evaluation(J, gradients, cache.A[1:], case.dtype),
                           gradient_magnitudes(case.params, cache, case.Y, case.spec))


def run(cases: list[Case], options: RunOptions | None = None, progress: Progress | None = None) -> dict:
    """Run ``cases`` on the chosen backends and return the ``gradparity/1`` document. Each
    answer is compared as it arrives; a result that fails, or that a registered deviation
    applies to, gets its single operations probed in the same worker before it is let go."""
    options = options or RunOptions()
    started = time.perf_counter()
    entries = {name: REGISTRY[name] for name in resolve(options.backends)} if options.backends != [] else {}
    entries.update(options.extra_backends)
    parallel = options.parallel or default_parallel()
    worker_options = {"device": options.device, "allow_tf32": options.allow_tf32, "train": options.trajectories,
                      "threads": max(1, default_parallel() // min(parallel, len(entries) or 1))}
    references = cache(lambda index: reference_result(cases[index]))
    assessments: dict[tuple[str, int], Assessment] = {}

    def inspect(outcome: BackendOutcome, index: int) -> bool:
        assessment = assess(cases[index], index, references(index), outcome, options.include_arrays)
        assessments[outcome.name, index] = assessment
        return assessment.needs_probes(outcome.name, cases[index], options.probe_all)

    assigned = shares(len(cases), list(entries), *(options.shard or (1, 1)))
    with threadpool_limits(limits=1):  # the cores are the workers': more BLAS threads here only spin against them
        outcomes = run_backends(WorkerRun(cases, worker_options, options.timeout, parallel), entries, progress, inspect,
                                assigned)
    results = [case_result(index, case, references(index), outcomes, assessments, options.include_arrays,
                           [name for name in outcomes if index in assigned[name]], options.probe_all,
                           options.trajectories)
               for index, case in enumerate(cases)]
    mark_stale(results, stale_entries(cases, outcomes))
    if options.decision_boundaries:
        for case, result in zip(cases, results):
            result["reference"]["decision_boundary"] = trained_boundary(case) if case.dtype == "float64" else None
    return {
        "schema": SCHEMA,
        "environment": fingerprint(outcomes, options.device, options.allow_tf32),
        "options": {"cases": list(dict.fromkeys(case.name for case in cases)),
                    "backends": list(entries), "dtypes": list(dict.fromkeys(case.dtype for case in cases)),
                    "steps": sorted({case.steps for case in cases}),
                    "optimizers": list(dict.fromkeys(case.training.optimizer for case in cases)),
                    "strict": options.strict,
                    "trajectories": options.trajectories,
                    "shard": list(options.shard) if options.shard else None,
                    "roles": {name: outcome.role for name, outcome in outcomes.items()},
                    "controls": [name for name, outcome in outcomes.items() if outcome.role == "control"]},
        "results": results,
        "summary": summarize(results),
        "run": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_s": time.perf_counter() - started,
            "threads_per_worker": worker_options["threads"],
            "workers_at_a_time": parallel,
            "backend_seconds": {name: outcome.seconds for name, outcome in outcomes.items()},
            "import_seconds": {name: outcome.import_seconds for name, outcome in outcomes.items()},
            "case_seconds": {name: {cases[i].key: seconds for i, seconds in outcome.case_seconds.items()}
                             for name, outcome in outcomes.items()},
            "timing": {name: time_spent(outcome) for name, outcome in outcomes.items() if outcome.status != "skipped"},
        },
    }


def time_spent(outcome: BackendOutcome) -> dict:
    """Where one worker's wall time went: ``setup_s`` (its start to its backend loaded: process,
    imports, adapter), ``compile_s`` and ``compute_s`` (its cases' seconds, split by the
    framework's compile seconds; compile None, and all in compute, where it does not say),
    ``probes_s`` and ``total_s``; what is left is waiting for work and shutting down."""
    compiles = list(outcome.compile_seconds.values())
    compiled = None if None in compiles else sum(compiles)
    return {"setup_s": outcome.setup_seconds, "compile_s": compiled,
            "compute_s": sum(outcome.case_seconds.values()) - (compiled or 0.0),
            "probes_s": outcome.probe_seconds, "total_s": outcome.seconds}


def shares(case_count: int, backends: list[str], k: int, n: int) -> dict[str, list[int]]:
    """The case indices each backend runs in share ``k`` of ``n``: the (case, backend) pairs of
    the matrix, numbered case by case in order, go to share ``number mod n + 1``."""
    pairs = enumerate((index, name) for index in range(case_count) for name in backends)
    assigned: dict[str, list[int]] = {name: [] for name in backends}
    for number, (index, name) in pairs:
        if number % n == k - 1:
            assigned[name].append(index)
    return assigned


def case_result(index: int, case: Case, reference: ReferenceResult, outcomes: dict[str, BackendOutcome],
                assessments: dict[tuple[str, int], Assessment], include_arrays: bool, backends: list[str],
                probe_all: bool = False, trajectories: bool = True) -> dict:
    """The document entry of one case: its network and data fingerprint, the reference (its
    trajectory only where ``trajectories`` were run), and the verdict of every backend that ran it."""
    result = {
        "case": case.name, "description": case.description, "dtype": case.dtype, "data": data_fingerprint(case),
        "layers": list(case.spec.layer_sizes), "hidden_activation": case.spec.hidden_activation,
        "loss": case.spec.loss, "m": case.m, "learning_rate": case.learning_rate, "steps": case.steps,
        "training": case.training.to_dict(case.m),
        "reference": {"cost": reference.evaluation.cost,
                      "costs": list(reference.trajectory.costs) if trajectories else [],
                      "optimizer": case.training.optimizer,
                      "formulations": reference.formulations() if trajectories else None},
        "backends": {name: backend_result(case, index, outcomes[name], assessments.get((name, index)), probe_all)
                     for name in backends},
    }
    if include_arrays:
        result["reference"]["gradients"] = arrays_to_lists(reference.evaluation.gradients)
    return result


def data_fingerprint(case: Case) -> str:
    """SHA-256 (first 16 hex digits) of everything that fixes a case's numbers: network, data,
    parameters, dtype and training; two documents agree on a case when it agrees."""
    digest = hashlib.sha256(repr((case.spec, case.dtype, case.training)).encode())
    for array in (case.X, case.Y, *(case.params[name] for name in sorted(case.params))):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Assessment:
    """One backend's answer for one case, compared: its result entry (status from the checks
    alone), the checks, and the common factor of its gradients if they share one."""

    result: dict
    checks: list[Check] = field(default_factory=list)
    factor: float | None = None

    def needs_probes(self, backend: str, case: Case, always: bool = False) -> bool:
        """Probe when a check fails or a registered deviation applies here (to see it is still
        there), or ``always``; never a result that could not be compared."""
        if self.result["status"] not in ("pass", "fail"):
            return False
        return always or self.result["status"] == "fail" or bool(applicable(backend, case))


def assess(case: Case, index: int, reference: ReferenceResult, outcome: BackendOutcome,
           include_arrays: bool) -> Assessment:
    """Compare one answer; an exception while doing so is this backend's error on this case."""
    if index in outcome.errors:
        return Assessment(empty_result("error", outcome.errors[index]))
    if index in outcome.skips:
        return Assessment(empty_result("skipped", outcome.skips[index]))
    try:
        evaluation, trajectory = outcome.outputs[index]
        checks = compare_outputs(case, outcome, reference, evaluation, trajectory)
        result = {
            "status": backend_status(check.verdict for check in checks), "reason": "",
            "dtype_used": measured_dtype(evaluation, trajectory), "cost": float(evaluation.cost),
            "costs": list(map(float, trajectory.costs)) if trajectory else None, "checks": [],
            "optimizer": trajectory_form(case, trajectory), "first_divergent_layer": first_divergent_layer(checks),
            "first_divergent_step": first_divergent_step(checks), "worst": worst_check(checks),
        }
        if include_arrays:
            result["gradients"] = arrays_to_lists(evaluation.gradients)
        return Assessment(result, checks, scale_factor(evaluation.gradients, reference.evaluation.gradients))
    except Exception as error:
        return Assessment(empty_result("error", f"its result could not be compared: {describe(error)}"))


def empty_result(status: str, reason: str) -> dict:
    """A backend result without numbers (skipped, or an error)."""
    return {"status": status, "reason": reason, "dtype_used": None, "cost": None, "costs": None, "checks": [],
            "optimizer": None, "first_divergent_layer": None, "first_divergent_step": None, "worst": None,
            "diagnosis": None, "stderr": None}


def trajectory_form(case: Case, trajectory: Trajectory | None) -> str | None:
    """The optimizer form a backend's trajectory followed (the case's own unless it says)."""
    return (trajectory.optimizer or case.training.optimizer) if trajectory else None


def backend_result(case: Case, index: int, outcome: BackendOutcome, assessment: Assessment | None,
                   diagnose_passes: bool = False) -> dict:
    """Status, metrics, verdicts and diagnosis of one backend on one case: registered
    deviations are applied with the op probes, and a result that is not a plain pass is
    diagnosed (a passing one too with ``diagnose_passes``). A backend that errors keeps its
    captured output."""
    if outcome.status != "ok" or assessment is None:
        status = outcome.status if outcome.status != "ok" else "error"
        result = empty_result(status, outcome.reason or outcome.errors.get(index, "no answer"))
    elif assessment.result["status"] in ("error", "skipped"):
        result = {**empty_result("error", ""), **assessment.result}
    else:
        result = verdict(case, outcome.name, assessment, outcome.probes.get(index), diagnose_passes)
    if result["status"] == "error":
        result["stderr"] = outcome.output.strip() or None
    return result


def verdict(case: Case, backend: str, assessment: Assessment, probes: list[dict] | str | None,
            diagnose_passes: bool = False) -> dict:
    """Apply the deviation registry (``core.deviations``) to the assessment's checks: a failed
    check is a known deviation where an entry applies, its ops deviate and its bound holds."""
    records = probes if isinstance(probes, list) else []
    deviating = {record["op"] for record in records if record["deviates"]}
    entries = applicable(backend, case)
    checks = [check.to_dict() for check in assessment.checks]
    for check in checks:
        entry = deviations.explaining(check, entries, deviating, case.dtype) if check["verdict"] == "fail" else None
        if entry:
            check["verdict"], check["deviation"] = "known_deviation", entry.to_dict()
    result = {**assessment.result, "checks": checks, "diagnosis": None, "stderr": None,
              "status": backend_status(check["verdict"] for check in checks)}
    failing = [check for check in checks if check["verdict"] != "pass"]
    result["reason"] = next((c["message"] for c in failing if c["verdict"] == "fail"), "")
    if failing or diagnose_passes:
        result["diagnosis"] = diagnosis(failing, case.dtype, assessment.factor, probes)
    return result


def applicable(backend: str, case: Case) -> list[deviations.KnownDeviation]:
    """The registered deviations for this backend on this case (its name, dtype and optimizer)."""
    return deviations.applicable(backend, case.name, case.dtype, case.training.optimizer)


def stale_entries(cases: list[Case], outcomes: dict[str, BackendOutcome]) -> list[deviations.KnownDeviation]:
    """The registered deviations that applied to a probed result of this run and whose
    operations deviated in none of them: the framework was fixed."""
    applied: dict[str, deviations.KnownDeviation] = {}
    occurred: set[str] = set()
    for name, outcome in outcomes.items():
        for index, probes in outcome.probes.items():
            if isinstance(probes, list):
                deviating = {record["op"] for record in probes if record["deviates"]}
                for entry in applicable(name, cases[index]):
                    applied[entry.name] = entry
                    if deviating & set(entry.ops):
                        occurred.add(entry.name)
    return [entry for name, entry in applied.items() if name not in occurred]


def mark_stale(results: list[dict], stale: list[deviations.KnownDeviation]) -> None:
    """A passing result that a stale entry applies to becomes ``stale``, with the hint."""
    for result in results:
        for name, backend in result["backends"].items():
            hints = [stale_hint(entry) for entry in stale
                     if entry.applies(name, result["case"], result["dtype"], result["training"]["optimizer"])]
            if backend["status"] == "pass" and hints:
                backend["status"], backend["reason"] = "stale", "; ".join(hints)


def stale_hint(entry: deviations.KnownDeviation) -> str:
    """The one line that tells a maintainer to remove a deviation that no longer occurs."""
    return (f"registered deviation {entry.name!r} no longer occurs: its operations ({', '.join(entry.ops)}) "
            "now agree with NumPy; remove it from core/deviations.py")


def diagnosis(failing: list[dict], asked: str, factor: float | None, probes: list[dict] | str | None) -> dict:
    """``{"ops", "probed", "pattern", "reproducer"}``: the operations that deviate when probed
    alone, all that were probed, the pattern of the failing checks, a standalone reproducer."""
    records = probes if isinstance(probes, list) else []
    responsible = [record for record in records if record["deviates"]]
    if isinstance(probes, str) or probes is None:
        clause = f" (the op probes did not run: {probes or 'the worker stopped first'})"
    elif not records:
        clause = " (nothing to probe: the backend has no primitives table)"
    elif responsible:
        clause = f"; the probes single out {', '.join(record['op'] for record in responsible)}"
    else:
        clause = "; no single operation deviates when probed alone"
    return {
        "ops": [{key: record[key] for key in ("op", "source", "input_dtype", "output_dtype", "rel_error", "tolerance")}
                for record in responsible],
        "probed": list(dict.fromkeys(record["op"] for record in records)),
        "pattern": (read_pattern(failing, asked, factor) if failing else "every check passes") + clause,
        "reproducer": next((record["reproducer"] for record in responsible if record["reproducer"]), None),
    }


def measured_dtype(evaluation: Evaluation, trajectory: Trajectory | None) -> str:
    """The narrowest float dtype among the arrays a backend returned and the dtypes it reports."""
    floats = [name for name in returned_dtypes(evaluation, trajectory) if name.startswith("float")]
    return min(floats, key=lambda name: int(name.removeprefix("float"))) if floats else evaluation.dtype_used


def compare_outputs(case: Case, outcome: BackendOutcome, reference: ReferenceResult, evaluation: Evaluation,
                    trajectory: Trajectory | None) -> list[Check]:
    """One check per quantity the backend provides: dtype, cost, each dW/db, each A[l],
    trajectory costs and params. A quantity it provides but did not return fails, by name;
    a ``checked`` mask restricts which entries count, never the dtype check."""
    spec, m, dtype, backend = case.spec, case.m, case.dtype, outcome.name
    ground_truth = outcome.role == "ground truth"  # central differences of the float64 cost

    def check(quantity, kind, actual, expected, layer=None, mask=None, magnitude=None, steps=case.steps,
              growth=None) -> Check:
        tol = tolerance(kind, dtype, spec, m, layer, steps, case.tolerance.get(kind))
        if ground_truth:
            tol = finite_difference_tolerance(tol, reference.evaluation.cost, STEP)
            if mask is not None and not np.any(mask):
                return unmeasured_check(quantity, kind, f"{quantity} not measured by {backend}: the differencing "
                                        "step of every entry crosses a ReLU kink", tol)
        return compare(quantity, kind, actual, expected, ComparisonContext(dtype, tol, backend, mask, magnitude, growth))

    def missing(quantity: str, kind: str, what: str) -> Check:
        return failed_check(quantity, kind, f"{backend} provides {kind} but returned {what}")

    expected_dtype = "float64" if ground_truth else dtype
    used = sorted(returned_dtypes(evaluation, trajectory) - {expected_dtype})
    checks = [dtype_check(backend, expected_dtype, ", ".join(used))] if used else []
    checks.append(check("cost", "cost", np.array(evaluation.cost), np.array(reference.evaluation.cost)))
    for name, expected in reference.evaluation.gradients.items():
        if name not in evaluation.gradients:
            checks.append(missing(f"d{name}", "gradients", f"no d{name}"))
            continue
        mask = evaluation.checked[name] if evaluation.checked is not None else None
        checks.append(check(f"d{name}", "gradients", evaluation.gradients[name], expected, mask=mask,
                            magnitude=reference.magnitudes[name]))
    if "activations" in outcome.provides:
        for layer, expected in enumerate(reference.evaluation.activations, 1):
            if layer > len(evaluation.activations):
                checks.append(missing(f"A{layer}", "activations", f"{len(evaluation.activations)} of {spec.depth} layers"))
            else:
                checks.append(check(f"A{layer}", "activations", evaluation.activations[layer - 1], expected, layer=layer))
    if "trajectory" in outcome.provides and trajectory is None:
        checks.append(missing("trajectory", "trajectory", "no trajectory"))
    elif trajectory is not None:
        expected_trajectory = reference.trajectory_in(trajectory_form(case, trajectory))
        checks.append(check("trajectory cost", "trajectory", np.array(trajectory.costs),
                            np.array(expected_trajectory.costs), steps=1, growth=trajectory_growth(case.steps)))
        for name, expected in expected_trajectory.params.items():
            checks.append(check(f"trajectory {name}", "trajectory", trajectory.params[name], expected)
                          if name in trajectory.params else missing(f"trajectory {name}", "trajectory", f"no {name}"))
    return checks


def returned_dtypes(evaluation: Evaluation, trajectory: Trajectory | None) -> set[str]:
    """Every float dtype among the arrays returned and the dtypes reported (measured, not assumed)."""
    arrays = [*evaluation.gradients.values(), *evaluation.activations, *(trajectory.params.values() if trajectory else ())]
    names = {dtype_name(np.asarray(array).dtype) for array in arrays} | {evaluation.dtype_used}
    return names | ({trajectory.dtype_used} if trajectory else set())


def dtype_check(backend: str, asked: str, used: str) -> Check:
    """A failed check for a backend that computed in another dtype than the one asked."""
    return failed_check("dtype", "dtype", f"{backend} computed in {used} although {asked} was asked")


def summarize(results: list[dict]) -> dict:
    """Counts of (case, backend) pairs by status."""
    counts = {"passed": 0, "failed": 0, "known_deviations": 0, "stale": 0, "skipped": 0, "errors": 0}
    key = {"pass": "passed", "fail": "failed", "known_deviation": "known_deviations", "stale": "stale",
           "skipped": "skipped", "error": "errors"}
    for result in results:
        for backend in result["backends"].values():
            counts[key[backend["status"]]] += 1
    return counts


def arrays_to_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    """``{"W1": nested lists}``; NaN (entries finite differences did not sample) become None."""
    return {name: np.where(np.isnan(value), None, value.astype(np.float64)).tolist() for name, value in arrays.items()}
