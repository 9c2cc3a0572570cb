"""Judging the second-order modes of a run (``gradparity run --order 2``): each mode's answer
along the case's direction V compared with the reference's R-operator (``core.second_order``),
one check per quantity, marked with its mode so that each mode is judged, and shown, as a
column of its own:

    Jdot        J̇ = <∇J, V>, the cost's directional derivative       (a mode computing tangents)
    Adot<l>     Ȧ[l], the tangent of layer l's activations          (a mode computing tangents)
    HV W<l>     the Hessian-vector product's block of W[l] (and b[l])  (a mode computing hvp)

Tolerances as for the first order (``core.compare.tolerance``, kinds ``tangents`` and ``hvp``),
with the magnitudes of the summed terms (``core.second_order``) under the absolute part; the
ground truth (central differences along V) is judged with its own (``difference_tolerance``),
on the examples it could difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gradparity.backends.contract import SecondOrder
from gradparity.backends.layout import dtype_name
from gradparity.core.cases import Case
from gradparity.core.compare import (ComparisonContext, Tolerance, backend_status, compare, difference_tolerance,
                                     failed_check, gradient_magnitudes, tolerance, unmeasured_check, worst_check)
from gradparity.core.reference import Params, cost
from gradparity.core.results import BackendResult, Check, Direction, ModeResult, SecondOrderRecord
from gradparity.core.second_order import (DIRECTION_SEED, RPass, Tangents, difference_step, hvp_magnitudes, r_operator,
                                          tangent_magnitudes)


@dataclass
class ReferenceSecondOrder:
    """The reference's R-passes of a case (on all its examples, or on those a ground truth
    differenced) and the magnitudes of the terms each entry sums: of Ż[l], Ȧ[l] and J̇ (a
    ``Tangents`` of magnitudes) and of H V."""

    rpass: RPass
    tangent_magnitudes: Tangents
    hvp_magnitudes: Params


def reference_second_order(case: Case, examples: np.ndarray | None = None) -> ReferenceSecondOrder:
    """``core.second_order.r_operator`` of ``case`` along ``case.direction``, on the examples
    ``examples`` marks (all when None), with its magnitudes."""
    X, Y = (case.X, case.Y) if examples is None else (case.X[:, examples], case.Y[:, examples])
    rpass = r_operator(case.params, X, Y, case.spec, case.along())
    tangents = tangent_magnitudes(case.params, case.along(), rpass, case.spec)
    return ReferenceSecondOrder(rpass, tangents, hvp_magnitudes(case.params, case.along(), rpass, tangents, Y, case.spec))


def second_order_record(case: Case, reference: ReferenceSecondOrder, source: str, include_arrays: bool) -> SecondOrderRecord:
    """The document's record of a case's reference second order: the direction (its source,
    fingerprint, largest entry, and its arrays with ``include_arrays``), J̇ and the norm of each
    H V block (the blocks too with ``include_arrays``)."""
    direction = case.along()
    digest = hashlib.sha256()
    for name in sorted(direction):
        digest.update(np.ascontiguousarray(direction[name]).tobytes())
    arrays = {name: np.asarray(value, np.float64).tolist() for name, value in direction.items()} if include_arrays else None
    record = Direction(source, DIRECTION_SEED if source == "seeded" else None, digest.hexdigest()[:16],
                       max(float(np.max(np.abs(value))) for value in direction.values()), arrays)
    hvp = reference.rpass.hvp
    return SecondOrderRecord(record, reference.rpass.tangents.cost,
                             {name: float(np.linalg.norm(value)) for name, value in hvp.items()},
                             {name: np.asarray(value, np.float64).tolist() for name, value in hvp.items()} if include_arrays else None)


def compare_modes(case: Case, backend: str, ground_truth: bool, answers: list[SecondOrder],
                  reference_of: Callable[[np.ndarray | None], ReferenceSecondOrder]) -> tuple[list[Check], dict[str, ModeResult]]:
    """The checks of every mode's answer (each marked with its mode) and each mode's result."""
    checks: list[Check] = []
    modes: dict[str, ModeResult] = {}
    for answer in answers:
        if answer.skipped is not None:
            modes[answer.mode] = ModeResult(list(answer.computes), "skipped", answer.skipped, None)
            continue
        judged = ModeJudge(case, backend, ground_truth, answer, reference_of).checks()
        for check in judged:
            check.mode = answer.mode
        checks += judged
        modes[answer.mode] = ModeResult(list(answer.computes), backend_status(c.verdict for c in judged),
                                        examples_note(answer, case), worst_check(judged))
    return checks, modes


def examples_note(answer: SecondOrder, case: Case) -> str:
    """What a ground truth left out: the examples whose ReLU inputs cross a kink within its step."""
    if answer.examples is None or answer.examples.all():
        return ""
    kept = int(answer.examples.sum())
    return (f"central differences over {kept} of {case.m} examples: {case.m - kept} cross a ReLU kink within "
            "the step and are left out, on both sides of the comparison")


def refresh_modes(result: BackendResult) -> None:
    """Each mode's status and worst check again, from its checks as the verdict left them
    (registered deviations applied), and the first line of its first failure as its reason;
    skipped modes stay skipped."""
    for mode, record in result.modes.items():
        if record.status == "skipped":
            continue
        checks = [check for check in result.checks if check.mode == mode]
        record.status, record.worst = backend_status(check.verdict for check in checks), worst_check(checks)
        failing = next((check.message for check in checks if check.verdict == "fail" and check.message), None)
        record.reason = failing.splitlines()[0] if failing else record.reason


class ModeJudge:
    """One mode's answer against the reference: a dtype check where it computed in another
    dtype, then J̇ and each Ȧ[l] (tangents), each H V block (hvp)."""

    def __init__(self, case: Case, backend: str, ground_truth: bool, answer: SecondOrder,
                 reference_of: Callable[[np.ndarray | None], ReferenceSecondOrder]) -> None:
        self.case, self.backend, self.ground_truth, self.answer = case, backend, ground_truth, answer
        self.reference_of = reference_of
        self.label = f"{backend} {answer.mode}"

    @property
    def reference(self) -> ReferenceSecondOrder:
        """The reference on the examples the answer covers (``ReferenceResult.second_order`` caches it)."""
        return self.reference_of(self.answer.examples)

    def checks(self) -> list[Check]:
        answer, kind = self.answer, "hvp" if "hvp" in self.answer.computes else "tangents"
        if answer.error is not None:
            return [failed_check("HV" if kind == "hvp" else "Jdot", kind, f"{self.label} raised {answer.error}")]
        if answer.examples is not None and not answer.examples.any():
            tol = self.tolerance(kind, None, lambda: (1.0, "1"))
            return [unmeasured_check(quantity, kind, f"{quantity} not measured by {self.label}: the step crosses a "
                                     "ReLU kink in every example", tol)
                    for quantity, kind in (("Jdot", "tangents"), ("HV", "hvp")) if kind in answer.computes]
        checks = self.dtype_checks()
        if "tangents" in answer.computes:
            checks += self.tangent_checks()
        if "hvp" in answer.computes:
            checks += self.hvp_checks()
        return checks

    def dtype_checks(self) -> list[Check]:
        """A failed dtype check when any array returned, or the dtype reported, is not the one asked."""
        answer = self.answer
        arrays = [*(answer.tangents or []), *(answer.hvp or {}).values()]
        used = {dtype_name(np.asarray(array).dtype) for array in arrays} | ({answer.dtype_used} if answer.dtype_used else set())
        asked = "float64" if self.ground_truth else self.case.dtype
        other = sorted(used - {asked})
        if not other:
            return []
        return [failed_check("dtype", "dtype", f"{self.label} computed in {', '.join(other)} although {asked} was asked")]

    def tolerance(self, kind: str, layer: int | None, scale: Callable[[], tuple[float, str]]) -> Tolerance:
        """The policy's tolerance of ``kind``; the ground truth's central-difference one over it."""
        case = self.case
        policy = tolerance(kind, case.dtype, case.spec, case.m, layer, override=case.tolerance.get(kind))
        if not self.ground_truth:
            return policy
        size, what = scale()
        return difference_tolerance(policy, size, difference_step(case.along()), what)

    def compared(self, quantity: str, kind: str, actual, expected: np.ndarray, where: tuple) -> Check:
        """``compare`` under the tolerance and magnitude ``where`` holds."""
        tol, magnitude = where
        return compare(quantity, kind, np.asarray(actual), expected, ComparisonContext(self.case.dtype, tol, self.label,
                                                                                       magnitude=magnitude))

    def missing(self, quantity: str, kind: str) -> Check:
        return failed_check(quantity, kind, f"{self.label} computes {kind} but returned no {quantity}")

    def tangent_checks(self) -> list[Check]:
        """J̇ and Ȧ[1..L], each judged against the magnitude of its terms."""
        answer, reference, rpass = self.answer, self.reference, self.reference.rpass
        if answer.cost_tangent is None:
            return [self.missing("Jdot", "tangents")]
        cache, loss = rpass.cache, self.case.spec.loss
        cost_scale = lambda: (max(abs(cost(cache.ZL, cache.A[-1], self.Y, loss)), 1.0), "max(|J|, 1)")  # noqa: E731
        checks = [self.compared("Jdot", "tangents", answer.cost_tangent, np.array(rpass.tangents.cost),
                                (self.tolerance("tangents", None, cost_scale), np.array(reference.tangent_magnitudes.cost)))]
        tangents = answer.tangents or []
        for layer, expected in enumerate(rpass.tangents.Adot[1:], 1):
            if layer > len(tangents):
                checks.append(self.missing(f"Adot{layer}", "tangents"))
                continue
            scale = lambda layer=layer: (float(np.max(np.abs(cache.A[layer]))), f"max|A{layer}|")  # noqa: E731
            checks.append(self.compared(f"Adot{layer}", "tangents", tangents[layer - 1], expected,
                                        (self.tolerance("tangents", layer, scale), reference.tangent_magnitudes.Adot[layer])))
        return checks

    def hvp_checks(self) -> list[Check]:
        """Each H V block, judged against the magnitude of its terms."""
        answer, reference = self.answer, self.reference
        if answer.hvp is None:
            return [self.missing("HV", "hvp")]
        checks, tol = [], self.tolerance("hvp", None, self.gradient_scale)  # one for every block
        for name, expected in reference.rpass.hvp.items():
            if name not in answer.hvp:
                checks.append(self.missing(f"HV {name}", "hvp"))
                continue
            checks.append(self.compared(f"HV {name}", "hvp", answer.hvp[name], expected,
                                        (tol, reference.hvp_magnitudes[name])))
        return checks

    @property
    def Y(self) -> np.ndarray:
        """The labels of the examples compared."""
        examples = self.answer.examples
        return self.case.Y if examples is None else self.case.Y[:, examples]

    def gradient_scale(self) -> tuple[float, str]:
        """The largest magnitude of the terms of any gradient entry: the scale of ∇J's rounding."""
        rpass = self.reference.rpass
        magnitudes = gradient_magnitudes(self.case.params, rpass.cache, self.Y, self.case.spec)
        return max(float(np.max(value)) for value in magnitudes.values()), "max M(∇J)"
