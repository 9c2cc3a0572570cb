"""Comparison of a backend's numbers with the reference: metrics, tolerance policy, verdicts.

For an actual array ``a`` and the reference ``b`` (compared in float64):

    abs error   |a - b| elementwise, its maximum ``max_abs_error``
    rel error   max|a - b| / max|b|  (normwise: the headline figure; elementwise
                |a - b| / |b| is also kept as ``max_rel_error``)
    ulps        max|a - b| / (eps(dtype) * max|b|): the error in units of the last place
                of the largest reference element
    cosine      <a, b> / (|a| |b|)
    allowed     |a - b| <= atol + rtol |b|, with atol = rtol * max(M, max|b|)

M is the magnitude of the terms an entry sums, where it is known (gradients): a dot product
rounds to |fl(x.y) - x.y| <= n eps |x|.|y|, so an entry that cancels to near zero still
carries the error of its largest terms. Elsewhere the floor is the quantity's largest element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from gradparity.core.network import NetworkSpec
from gradparity.core.results import Check, Worst
from gradparity.core.reference import ForwardPass, Params, activation_derivative, output_delta

KINDS = ("cost", "activations", "gradients", "trajectory", "tangents", "hvp")
SAFETY_FACTOR = 4.0
FINITE_DIFFERENCE_RTOL = 1e-7  # the finest relative difference central differences resolve (float64, h = 1e-6)


@dataclass(frozen=True)
class Tolerance:
    """An rtol, an absolute floor under the atol it implies, and the sentence that justifies both."""

    rtol: float
    reason: str
    atol_floor: float = 0.0


@dataclass(frozen=True)
class ComparisonContext:
    """What a comparison is judged under: the dtype asked, the tolerance, who computed the
    actual values and, per entry, which count (``mask``: finite differences on a sampled
    subset), the magnitude M of the terms each sums (see the module docstring) and the factor
    its allowed error grows by (``growth``: a tolerance that grows along a trajectory)."""

    dtype: str
    tol: Tolerance
    backend: str = "backend"
    mask: np.ndarray | None = None
    magnitude: np.ndarray | None = None
    growth: np.ndarray | None = None


def finite_difference_tolerance(policy: Tolerance, cost: float, step: float) -> Tolerance:
    """Central differences round J(theta + h) - J(theta - h), so they carry an absolute error of
    about eps64 |J| / h on top of the h^2 truncation: rtol = max(1e-7, policy) and an absolute
    floor of 10 eps64 max(|J|, 1) / h (``difference_tolerance``)."""
    return difference_tolerance(policy, max(abs(cost), 1.0), step, "max(|J|, 1)")


def difference_tolerance(policy: Tolerance, scale: float, step: float, differenced: str) -> Tolerance:
    """The tolerance of a central difference (f(theta + h) - f(theta - h)) / 2h of a quantity
    of magnitude ``scale`` (named ``differenced``): rtol = max(1e-7, policy), the finest
    relative difference central differences resolve, and an absolute floor of
    10 eps64 scale / h for the rounding of the two evaluations."""
    floor = 10 * float(np.finfo(np.float64).eps) * scale / step
    return Tolerance(max(policy.rtol, FINITE_DIFFERENCE_RTOL), f"finite differences: max(1e-7, {policy.reason}), "
                     f"atol >= 10 eps64 {differenced} / h = {floor:.2g}", floor)


def tolerance(kind: str, dtype: str, spec: NetworkSpec, m: int, layer: int | None = None,
              steps: int = 1, override: float | None = None) -> Tolerance:
    """rtol = 4 eps(dtype) * depth * sqrt(n) [* steps], n the longest reduction (widest layer or m).

    Rounding in a length-n dot product grows like sqrt(n) eps; every layer passed through adds
    its own, so the depth is l for A[l], L for the cost, 2L (forward then backward) for the
    gradients, and a trajectory of K steps accumulates K gradient errors. Second order: the
    tangent Ȧ[l] rounds through the forward pass and the forward R-pass up to layer l (2l; J̇:
    2L), and H V through all four passes (forward, forward R, backward, backward R: 4L).
    """
    if override is not None:
        return Tolerance(float(override), f"rtol {override:.3g} set explicitly for this case")
    eps = float(np.finfo(dtype).eps)
    n = spec.max_reduction(m)
    depth = {"activations": layer or spec.depth, "cost": spec.depth, "tangents": 2 * (layer or spec.depth),
             "hvp": 4 * spec.depth}.get(kind, 2 * spec.depth)
    factor = steps if kind == "trajectory" else 1
    rtol = SAFETY_FACTOR * eps * depth * np.sqrt(n) * factor
    reason = f"4 x eps({dtype}) x depth {depth} x sqrt(n = {n})" + (f" x {steps} steps" if factor > 1 else "")
    return Tolerance(float(rtol), reason)


def gradient_magnitudes(params: Params, cache: ForwardPass, Y: np.ndarray, spec: NetworkSpec) -> Params:
    """M for each gradient: backpropagation of magnitudes, the scale of each entry's rounding.

        |dZ[L]| = |dJ/dZ[L]|,   |dZ[l]| = |W[l+1]|^T |dZ[l+1]| * |g'(Z[l])|
        M(dW[l]) = |dZ[l]| |A[l-1]|^T,   M(db[l]) = sum(|dZ[l]|, axis=1)
    """
    magnitudes: Params = {}
    dZ = np.abs(output_delta(cache.A[-1], Y, spec.loss))
    for layer in range(spec.depth, 0, -1):
        magnitudes[f"W{layer}"] = dZ @ np.abs(cache.A[layer - 1]).T
        magnitudes[f"b{layer}"] = dZ.sum(axis=1, keepdims=True)
        if layer > 1:
            dZ = (np.abs(params[f"W{layer}"]).T @ dZ) * np.abs(activation_derivative(cache.A[layer - 1], spec.hidden_activation))
    return magnitudes


def compare(quantity: str, kind: str, actual: np.ndarray, expected: np.ndarray, context: ComparisonContext) -> Check:
    """Compare ``actual`` with the reference ``expected`` under ``context`` (dtype, tolerance,
    backend, and the entries' mask, magnitudes and growth)."""
    tol, mask, magnitude, growth = context.tol, context.mask, context.magnitude, context.growth
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return _shape_mismatch(quantity, kind, a.shape, b.shape, context)
    selected = np.ones(b.shape, bool) if mask is None else np.asarray(mask, bool)
    a_sel, b_sel = a[selected], b[selected]
    scale = float(np.max(np.abs(b_sel), initial=0.0))
    diff = np.abs(a - b)
    floor = scale if magnitude is None else np.maximum(np.asarray(magnitude, np.float64), scale)
    atol = np.maximum(tol.rtol * floor, tol.atol_floor)
    allowed = (atol + tol.rtol * np.abs(b)) * (1.0 if growth is None else growth)
    over = selected & ~(diff <= allowed)  # NaN in actual counts as a mismatch
    if not selected.any():
        return _nothing_compared(quantity, kind, context)
    max_abs = float(np.max(diff[selected], initial=0.0)) if np.isfinite(a_sel).all() else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):  # an exact zero allowed nothing and used nothing
        ratio = np.where(diff == 0, 0.0, np.nan_to_num(diff / allowed, nan=np.inf, posinf=np.inf))
    used = np.where(selected, ratio, -1.0)
    worst = np.unravel_index(int(np.argmax(used)), b.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        elementwise = np.where(b_sel != 0, np.abs(a_sel - b_sel) / np.abs(b_sel), np.where(a_sel == b_sel, 0.0, np.inf))
    eps = float(np.finfo(context.dtype).eps)
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    check = Check(
        quantity=quantity, kind=kind, max_abs_error=max_abs,
        max_rel_error=float(np.max(elementwise, initial=0.0)), rel_error=rel, ulps=rel / eps,
        cosine=_cosine(a_sel, b_sel), worst_index=[int(i) for i in worst], mismatched=int(over.sum()),
        total=int(selected.sum()), rtol=tol.rtol, atol=float(np.max(atol, initial=0.0)), excess=float(used[worst]),
        tolerance_reason=tol.reason + ("; atol from the magnitude of the summed terms" if magnitude is not None else "")
        + ("; x max(k, 1) for the cost after k updates" if growth is not None else ""),
        verdict="pass" if not over.any() else "fail",
        first_index=[int(i) for i in np.argwhere(over)[0]] if over.any() else None,
    )
    if over.any():
        check.message = mismatch_message(check, context.backend, context.dtype, float(allowed[tuple(worst)]))
    return check


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """<a, b> / (|a| |b|); 1 when both are zero, 0 when only one is."""
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0 or not np.isfinite(norms):
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.dot(a.ravel(), b.ravel()) / norms)


def _shape_mismatch(quantity: str, kind: str, got: tuple, want: tuple, context: ComparisonContext) -> Check:
    return failed_check(quantity, kind, f"{quantity} of {context.backend} has shape {got}, the reference has {want}",
                        int(np.prod(want)), context.tol)


def _nothing_compared(quantity: str, kind: str, context: ComparisonContext) -> Check:
    return failed_check(quantity, kind, f"{quantity} of {context.backend} marks no entry as computed: nothing to "
                        "compare", 0, context.tol)


def failed_check(quantity: str, kind: str, message: str, total: int = 1, tol: Tolerance | None = None) -> Check:
    """A check that fails without a measurement: a missing, malformed or empty result."""
    inf = float("inf")
    return Check(quantity, kind, inf, inf, inf, inf, 0.0, [], total, total, tol.rtol if tol else 0.0, 0.0, inf,
                 tol.reason if tol else "", "fail", message)


def unmeasured_check(quantity: str, kind: str, message: str, tol: Tolerance) -> Check:
    """A check the ground truth cannot make (no entry can be differenced), said as such:
    nothing compared, nothing failed, and the message says why."""
    nan = float("nan")
    return Check(quantity, kind, nan, nan, nan, nan, nan, [], 0, 0, tol.rtol, 0.0, nan, tol.reason, "pass", message)


def mismatch_message(check: Check, backend: str, dtype: str, allowed_at_worst: float) -> str:
    """The torch.testing.assert_close style account of a failed check."""
    where = tuple(check.worst_index)
    share = 100.0 * check.mismatched / max(check.total, 1)
    return (
        f"{check.quantity} of {backend} is not close to the reference ({dtype}).\n"
        f"Mismatched elements: {check.mismatched} / {check.total} ({share:.1f}%)\n"
        f"Greatest absolute difference: {check.max_abs_error:.3g} at index {where} "
        f"(up to {allowed_at_worst:.3g} allowed)\n"
        f"Greatest relative difference: {check.rel_error:.3g} of the largest element, "
        f"{check.ulps:.3g} ulps (up to rtol {check.rtol:.3g} allowed)"
    )


def trajectory_growth(steps: int) -> np.ndarray:
    """max(k, 1) for the cost taken after k = 0, 1, ..., steps - 1 updates: each update adds
    one gradient's rounding, so the allowed error grows with the updates done."""
    return np.maximum(np.arange(steps), 1).astype(np.float64)


def first_divergent_step(checks: list[Check]) -> int | None:
    """The first step (counted from 1) whose cost, taken before its update, breaks tolerance."""
    check = next((c for c in checks if c.quantity == "trajectory cost"), None)
    return check.first_index[0] + 1 if check and check.verdict != "pass" and check.first_index else None


def formulation_gap(costs: list[float], params: Params, other_costs: list[float], other_params: Params) -> dict:
    """How far two trajectories of the same case end apart: the normwise relative difference
    of their last costs and, worst over the parameters, of their final parameters
    (max |a - b| / max |b|), with the parameter it is worst for."""
    def relative(a, b) -> float:
        scale = float(np.max(np.abs(b)))
        return float(np.max(np.abs(np.asarray(a, np.float64) - b))) / scale if scale else 0.0

    gaps = {name: relative(params[name], np.asarray(other_params[name], np.float64)) for name in other_params}
    worst = max(gaps, key=gaps.__getitem__)
    return {"last_cost": relative(costs[-1], other_costs[-1]), "params": gaps[worst], "worst_param": worst}


def first_divergent_layer(checks: list[Check]) -> int | None:
    """The earliest l whose activation A[l] breaks tolerance, or None."""
    layers = [int(c.quantity[1:]) for c in checks if c.kind == "activations" and c.verdict != "pass"]
    return min(layers) if layers else None


def backend_status(verdicts: Iterable[str]) -> str:
    """fail if any check fails, known_deviation if any is one, else pass."""
    seen = set(verdicts)
    return next((status for status in ("fail", "known_deviation") if status in seen), "pass")


def worst_check(checks: list[Check]) -> Worst | None:
    """The measured check with the largest relative error (NaN counting as none)."""
    measured = [c for c in checks if c.kind != "dtype" and c.total]
    if not measured:
        return None
    worst = max(measured, key=lambda c: c.rel_error if not np.isnan(c.rel_error) else -np.inf)
    return Worst(worst.quantity, worst.rel_error, worst.ulps)
