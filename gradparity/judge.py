"""Judging a parity run: every backend's answer compared with the reference as it arrives, the
registered deviations applied where the op probes show their operations deviating, a diagnosis
of every result that is not a plain pass, and the typed case results of the document."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from gradparity.backends.contract import Evaluation, Trajectory
from gradparity.backends.layout import dtype_name
from gradparity.backends.worker import describe
from gradparity.core import deviations
from gradparity.core.boundary import trained_boundary
from gradparity.core.cases import Case
from gradparity.core.compare import (ComparisonContext, backend_status, compare, failed_check, finite_difference_tolerance,
                                     first_divergent_layer, first_divergent_step, formulation_gap, gradient_magnitudes,
                                     tolerance, trajectory_growth, unmeasured_check, worst_check)
from gradparity.core.diagnosis import read_pattern, scale_factor
from gradparity.core.gradcheck import STEP
from gradparity.core.reference import cost_and_gradients, train
from gradparity.core.results import (BackendResult, CaseResult, Check, DecisionBoundary, DeviatingOp, Diagnosis,
                                     Formulations, ReferenceRecord, TrainingRecord, split_requirement)
from gradparity.modes import ReferenceSecondOrder, compare_modes, reference_second_order, refresh_modes, second_order_record
from gradparity.runner import BackendOutcome

ADAM_FORMS = ("adam", "adam-hat")
Probes = list[dict] | str | None  # a worker's op probe records, or why they did not run


@dataclass(frozen=True)
class Judging:
    """What the judge is asked for: arrays in the document, a diagnosis of passing results too
    (``gradparity explain``), whether trajectories were run, the trained reference's decision
    boundary for 2-D float64 cases, where the cases' second-order directions come from
    (``seeded`` or the file), the columns whose every answer is probed, for the op probes of
    several versions side by side (``gradparity.versions``), and the deviations the run's
    plugins register (``BackendEntry.deviations``), beside gradparity's own."""

    include_arrays: bool = False
    probe_all: bool = False
    trajectories: bool = True
    decision_boundaries: bool = False
    direction_source: str = "seeded"
    probed: frozenset[str] = frozenset()  # columns whose every answer is probed (a backend at several versions)
    deviations: tuple[deviations.KnownDeviation, ...] = ()  # those the run's plugins register


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
    second_orders: dict[bytes, ReferenceSecondOrder] = field(default_factory=dict)

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

    def second_order(self, examples: np.ndarray | None = None) -> ReferenceSecondOrder:
        """The reference's R-passes along the case's direction, on the examples ``examples``
        marks (all when None), computed when first asked for."""
        key = b"" if examples is None or examples.all() else np.packbits(examples).tobytes()
        if key not in self.second_orders:
            self.second_orders[key] = reference_second_order(self.case, None if not key else examples)
        return self.second_orders[key]

    def formulations(self) -> Formulations | None:
        """For an Adam case, both forms' costs and how far apart they end (``formulation_gap``)
        next to the trajectory tolerance; None for other optimizers."""
        if self.case.training.optimizer not in ADAM_FORMS:
            return None
        adam, adam_hat = (self.trajectory_in(form) for form in ADAM_FORMS)
        gap = formulation_gap(adam.costs, adam.params, adam_hat.costs, adam_hat.params)
        tol = tolerance("trajectory", self.case.dtype, self.case.spec, self.case.m, steps=self.case.steps)
        costs = {form: [float(cost) for cost in self.trajectory_in(form).costs] for form in ADAM_FORMS}
        return Formulations(costs, {form: values[-1] for form, values in costs.items()}, gap["last_cost"],
                            gap["params"], gap["worst_param"], tol.rtol)

    def record(self, judging: Judging) -> ReferenceRecord:
        """The document's record of these numbers (the trajectory only where trajectories ran)."""
        case = self.case
        record = ReferenceRecord(float(self.evaluation.cost), [], case.training.optimizer, None, None, None)
        if judging.trajectories:
            record.costs, record.formulations = [float(cost) for cost in self.trajectory.costs], self.formulations()
        if judging.include_arrays:
            record.gradients = arrays_to_lists(self.evaluation.gradients)
        if case.direction is not None:
            record.second_order = second_order_record(case, self.second_order(), judging.direction_source,
                                                      judging.include_arrays)
        boundary = trained_boundary(case) if judging.decision_boundaries and case.dtype == "float64" else None
        if boundary is not None:
            record.decision_boundary = DecisionBoundary.from_dict(boundary)
        return record


def reference_result(case: Case) -> ReferenceResult:
    """Cost, gradients and activations of the hand-derived NumPy backprop (its trajectories
    are run on demand)."""
    J, gradients, cache_ = cost_and_gradients(case.params, case.X, case.Y, case.spec)
    return ReferenceResult(case, Evaluation(J, gradients, cache_.A[1:], case.dtype),
                           gradient_magnitudes(case.params, cache_, case.Y, case.spec))


@dataclass
class Assessment:
    """One backend's answer for one case, compared: its result (status from the checks alone),
    and the common factor of its gradients if they share one."""

    result: BackendResult
    factor: float | None = None

    def needs_probes(self, registered: list[deviations.KnownDeviation], always: bool = False) -> bool:
        """Probe when a check fails or a registered deviation applies here (to see it is still
        there), or ``always``; never a result that could not be compared."""
        if self.result.status not in ("pass", "fail"):
            return False
        return always or self.result.status == "fail" or bool(registered)


class Judge:
    """Judges one run's cases: ``inspect`` compares each answer as the runner hands it over and
    says whether to probe it; ``results`` gives the case results once every backend is done."""

    def __init__(self, cases: list[Case], judging: Judging):
        self.cases, self.judging = cases, judging
        self.references = cache(lambda index: reference_result(cases[index]))
        self.assessments: dict[tuple[str, int], Assessment] = {}
        self.registered = (*deviations.KNOWN_DEVIATIONS, *judging.deviations)

    def inspect(self, outcome: BackendOutcome, index: int) -> bool:
        """Compare ``outcome``'s answer for case ``index``; True when its ops should be probed."""
        assessment = assess(self.cases[index], self.references(index), outcome, index, self.judging)
        self.assessments[outcome.name, index] = assessment
        always = self.judging.probe_all or outcome.name in self.judging.probed
        return assessment.needs_probes(self.applicable(outcome.name, self.cases[index]), always)

    def results(self, outcomes: dict[str, BackendOutcome], assigned: dict[str, list[int]]) -> list[CaseResult]:
        """Every case's result, each backend's from the backends ``assigned`` that case; a result
        that a stale registered deviation applies to is marked so."""
        results = []
        for index, case in enumerate(self.cases):
            backends = {name: self.backend_result(outcome, index) for name, outcome in outcomes.items()
                        if index in assigned[name]}
            results.append(case_result(case, self.references(index).record(self.judging), backends))
        mark_stale(results, self.stale_entries(outcomes))
        return results

    def applicable(self, column: str, case: Case) -> list[deviations.KnownDeviation]:
        """The registered deviations (gradparity's and the run's plugins') for this column's
        backend (at any version) on this case: its name, dtype and optimizer."""
        return deviations.applicable(split_requirement(column)[0], case.name, case.dtype, case.training.optimizer,
                                     self.registered)

    def stale_entries(self, outcomes: dict[str, BackendOutcome]) -> list[deviations.KnownDeviation]:
        """The registered deviations that applied to a probed result of this run and whose
        operations deviated in none of them (``core.deviations.stale``)."""
        return deviations.stale((self.applicable(name, self.cases[index]), deviating_ops(probes))
                                for name, outcome in outcomes.items() for index, probes in outcome.probes.items()
                                if isinstance(probes, list))

    def backend_result(self, outcome: BackendOutcome, index: int) -> BackendResult:
        """Status, metrics, verdicts and diagnosis of one backend on one case: registered
        deviations are applied with the op probes, and a result that is not a plain pass is
        diagnosed (a passing one too with ``probe_all``). A backend that errors keeps its
        captured output."""
        assessment = self.assessments.get((outcome.name, index))
        if outcome.status != "ok" or assessment is None:
            status = outcome.status if outcome.status != "ok" else "error"
            result = BackendResult.unanswered(status, outcome.reason or outcome.errors.get(index, "no answer"))
        elif assessment.result.status in ("error", "skipped"):
            result = assessment.result
        else:
            result = verdict(self.cases[index], self.applicable(outcome.name, self.cases[index]), assessment,
                             outcome.probes.get(index),
                             self.judging.probe_all)
        if result.status == "error":
            result.stderr = outcome.output.strip() or None
        result.version = outcome.version
        return result


def case_result(case: Case, reference: ReferenceRecord, backends: dict[str, BackendResult]) -> CaseResult:
    """The document entry of one case: its network and data fingerprint, the reference's
    record and every backend's result."""
    return CaseResult(case.name, case.description, case.dtype, data_fingerprint(case), list(case.spec.layer_sizes),
                      case.spec.hidden_activation, case.spec.loss, case.m, case.learning_rate, case.steps,
                      TrainingRecord.from_dict(case.training.to_dict(case.m)), reference, backends)


def data_fingerprint(case: Case) -> str:
    """SHA-256 (first 16 hex digits) of everything that fixes a case's numbers: network, data,
    parameters, dtype, training and the second-order direction where there is one; two
    documents agree on a case when it agrees."""
    digest = hashlib.sha256(repr((case.spec, case.dtype, case.training)).encode())
    direction = case.direction or {}
    for array in (case.X, case.Y, *(case.params[name] for name in sorted(case.params)),
                  *(direction[name] for name in sorted(direction))):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def assess(case: Case, reference: ReferenceResult, outcome: BackendOutcome, index: int,
           judging: Judging) -> Assessment:
    """Compare one answer; an exception while doing so is this backend's error on this case."""
    if index in outcome.errors:
        return Assessment(BackendResult.unanswered("error", outcome.errors[index]))
    if index in outcome.skips:
        return Assessment(BackendResult.unanswered("skipped", outcome.skips[index]))
    try:
        evaluation, trajectory = outcome.outputs[index]
        checks = compare_outputs(case, outcome, reference, evaluation, trajectory)
        second_checks, modes = compare_modes(case, outcome.name, outcome.role == "ground truth",
                                             evaluation.second_order, reference.second_order)
        checks += second_checks
        result = BackendResult(
            backend_status(check.verdict for check in checks), "", measured_dtype(evaluation, trajectory),
            float(evaluation.cost), [float(cost) for cost in trajectory.costs] if trajectory else None, checks,
            trajectory_form(case, trajectory), first_divergent_layer(checks), first_divergent_step(checks),
            worst_check(checks), None, None, arrays_to_lists(evaluation.gradients) if judging.include_arrays else None,
            modes=modes)
        return Assessment(result, scale_factor(evaluation.gradients, reference.evaluation.gradients))
    except Exception as error:
        return Assessment(BackendResult.unanswered("error", f"its result could not be compared: {describe(error)}"))


def trajectory_form(case: Case, trajectory: Trajectory | None) -> str | None:
    """The optimizer form a backend's trajectory followed (the case's own unless it says)."""
    return (trajectory.optimizer or case.training.optimizer) if trajectory else None


def verdict(case: Case, registered: list[deviations.KnownDeviation], assessment: Assessment, probes: Probes,
            diagnose_passes: bool) -> BackendResult:
    """Apply the deviation registry (``core.deviations``) to the assessment's checks: a failed
    check is a known deviation where an entry applies, its ops deviate and its bound holds."""
    checks = deviations.apply(assessment.result.checks, registered, deviating_ops(probes), case.dtype)
    status = backend_status(check.verdict for check in checks)
    reason = next((check.message or "" for check in checks if check.verdict == "fail"), "")
    result = replace(assessment.result, checks=checks, status=status, reason=reason)
    refresh_modes(result)
    if result.failing() or diagnose_passes:
        result.diagnosis = diagnosis(result.failing(), case.dtype, assessment.factor, probes)
    return result


def deviating_ops(probes: Probes) -> set[str]:
    """The operations that deviated when probed alone."""
    return {record["op"] for record in probe_records(probes) if record["deviates"]}


def probe_records(probes: Probes) -> list[dict]:
    """The probe records, none where the probes did not run."""
    if isinstance(probes, list):
        return probes
    return []


def mark_stale(results: list[CaseResult], stale: list[deviations.KnownDeviation]) -> None:
    """A passing result that a stale entry applies to becomes ``stale``, with the hint."""
    for result in results:
        for name, backend in result.backends.items():
            hints = [deviations.stale_hint(entry) for entry in stale
                     if entry.applies(split_requirement(name)[0], result.case, result.dtype, result.training.optimizer)]
            if backend.status == "pass" and hints:
                backend.status, backend.reason = "stale", "; ".join(hints)


def diagnosis(failing: list[Check], asked: str, factor: float | None, probes: Probes) -> Diagnosis:
    """The operations that deviate when probed alone, all that were probed, the pattern of the
    failing checks and a standalone reproducer."""
    records = probe_records(probes)
    responsible = [record for record in records if record["deviates"]]
    pattern = read_pattern(failing, asked, factor) if failing else "every check passes"
    return Diagnosis([DeviatingOp(record["op"], record["source"], record["input_dtype"], record["output_dtype"],
                                  np.nan if record["rel_error"] is None else record["rel_error"], record["tolerance"])
                      for record in responsible],
                     list(dict.fromkeys(record["op"] for record in records)), pattern + probes_clause(probes),
                     next((record["reproducer"] for record in responsible if record["reproducer"]), None))


def probes_clause(probes: Probes) -> str:
    """What the op probes found, as the end of the diagnosis's pattern sentence."""
    records = probe_records(probes)
    responsible = [record["op"] for record in records if record["deviates"]]
    if isinstance(probes, str) or probes is None:
        return f" (the op probes did not run: {probes or 'the worker stopped first'})"
    if not records:
        return " (nothing to probe: the backend has no primitives table)"
    if responsible:
        return f"; the probes single out {', '.join(responsible)}"
    return "; no single operation deviates when probed alone"


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

    def context(kind: str, layer: int | None = None, steps: int = case.steps, **measure) -> ComparisonContext:
        tol = tolerance(kind, dtype, spec, m, layer, steps, case.tolerance.get(kind))
        if ground_truth:
            tol = finite_difference_tolerance(tol, reference.evaluation.cost, STEP)
        return ComparisonContext(dtype, tol, backend, **measure)

    def check(quantity: str, kind: str, actual, expected, where: ComparisonContext) -> Check:
        if ground_truth and where.mask is not None and not np.any(where.mask):
            return unmeasured_check(quantity, kind, f"{quantity} not measured by {backend}: the differencing "
                                    "step of every entry crosses a ReLU kink", where.tol)
        return compare(quantity, kind, actual, expected, where)

    def missing(quantity: str, kind: str, what: str) -> Check:
        return failed_check(quantity, kind, f"{backend} provides {kind} but returned {what}")

    expected_dtype = "float64" if ground_truth else dtype
    used = sorted(returned_dtypes(evaluation, trajectory) - {expected_dtype})
    checks = [dtype_check(backend, expected_dtype, ", ".join(used))] if used else []
    checks.append(check("cost", "cost", np.array(evaluation.cost), np.array(reference.evaluation.cost), context("cost")))
    for name, expected in reference.evaluation.gradients.items():
        if name not in evaluation.gradients:
            checks.append(missing(f"d{name}", "gradients", f"no d{name}"))
            continue
        mask = evaluation.checked[name] if evaluation.checked is not None else None
        checks.append(check(f"d{name}", "gradients", evaluation.gradients[name], expected,
                            context("gradients", mask=mask, magnitude=reference.magnitudes[name])))
    if "activations" in outcome.provides:
        for layer, expected in enumerate(reference.evaluation.activations, 1):
            if layer > len(evaluation.activations):
                checks.append(missing(f"A{layer}", "activations", f"{len(evaluation.activations)} of {spec.depth} layers"))
            else:
                checks.append(check(f"A{layer}", "activations", evaluation.activations[layer - 1], expected,
                                    context("activations", layer)))
    if "trajectory" in outcome.provides and trajectory is None:
        checks.append(missing("trajectory", "trajectory", "no trajectory"))
    elif trajectory is not None:
        expected_trajectory = reference.trajectory_in(trajectory.optimizer or case.training.optimizer)
        checks.append(check("trajectory cost", "trajectory", np.array(trajectory.costs), np.array(expected_trajectory.costs),
                            context("trajectory", steps=1, growth=trajectory_growth(case.steps))))
        for name, expected in expected_trajectory.params.items():
            checks.append(check(f"trajectory {name}", "trajectory", trajectory.params[name], expected, context("trajectory"))
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


def arrays_to_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    """``{"W1": nested lists}``; NaN (entries finite differences did not sample) become None."""
    return {name: nan_as_none(np.asarray(value, np.float64)) for name, value in arrays.items()}


def nan_as_none(array: np.ndarray) -> list:
    """``array`` as nested lists, None where it is NaN."""
    values = array.astype(object)
    values[np.isnan(array)] = None
    return values.tolist()
