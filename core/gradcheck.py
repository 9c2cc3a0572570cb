"""Central finite differences in float64: the ground truth the reference is checked against.

    dJ/dtheta_k ~ (J(theta + h e_k) - J(theta - h e_k)) / 2h

A perturbation of ``W[l][i, j]`` by h only moves row i of ``Z[l]`` by ``h A[l-1][j, :]`` (of
``b[l][i]``: by h), so each difference re-evaluates the network from layer l upwards only.
Parameters with more than ``max_entries`` entries are checked on a seeded random subset.
ReLU is not differentiable at 0: an entry whose perturbation moves any ReLU input across (or
off) zero has no two-sided derivative there, so it is left unchecked and counted as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradparity.core.network import NetworkSpec
from gradparity.core.reference import Params, activate, cost, cost_and_gradients, forward

STEP = 1e-6
MAX_ENTRIES = 2000
SAMPLED_ENTRIES = 400
THRESHOLD = 1e-7


@dataclass
class GradcheckResult:
    """Relative difference ||g - g_num|| / (||g|| + ||g_num||) over the checked entries, the
    worst entry, how many sampled entries sat at a ReLU kink, the numerical gradients (NaN
    where an entry was not checked) and the noise floor: the relative difference rounding
    alone gives. Each difference carries a rounding error of about eps |J| / h, so over N
    entries

        noise_floor = sqrt(N) eps |J| / h / (||g|| + ||g_num||)

    which a small ||g|| (tiny initial weights) pushes above any fixed threshold."""

    relative_difference: float
    worst: dict
    checked: int
    at_kinks: int
    total: int
    sampled: list[str]
    numerical: Params = field(repr=False)
    masks: dict[str, np.ndarray] = field(repr=False)
    noise_floor: float = 0.0
    gradient_norm: float = 0.0

    @property
    def passed(self) -> bool:
        return self.relative_difference < THRESHOLD

    @property
    def within_noise(self) -> bool:
        """Whether the difference is no larger than rounding noise alone explains."""
        return self.relative_difference <= self.noise_floor


def entries_to_check(shape: tuple[int, ...], name: str, max_entries: int, seed: int) -> np.ndarray:
    """Flat indices of the entries of one parameter to difference: all of them, or a seeded
    sample of ``SAMPLED_ENTRIES`` when the parameter has more than ``max_entries``."""
    size = int(np.prod(shape))
    if size <= max_entries:
        return np.arange(size)
    generator = np.random.default_rng([seed, sum(map(ord, name))])
    return np.sort(generator.choice(size, SAMPLED_ENTRIES, replace=False))


def cost_above(params: Params, Z: np.ndarray, layer: int, Y: np.ndarray, spec: NetworkSpec) -> tuple[float, list]:
    """J as a function of ``Z[layer]``: the layers above it evaluated from there; with the
    sign pattern ``Z > 0`` of every ReLU layer on the way (empty for smooth activations)."""
    signs = []
    while True:
        if spec.activation(layer) == "relu":
            signs.append(Z > 0)
        A = activate(Z, spec.activation(layer))
        if layer == spec.depth:
            return cost(Z, A, Y, spec.loss), signs
        layer += 1
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]


def shifted_row(Z: np.ndarray, row: int, delta: np.ndarray | float) -> np.ndarray:
    """A copy of Z with ``delta`` added to one row."""
    shifted = Z.copy()
    shifted[row] += delta
    return shifted


@dataclass(frozen=True)
class Sampling:
    """Which entries central differences check: every entry of a parameter with at most
    ``max_entries``, else ``max_entries`` of them drawn with ``seed``."""

    max_entries: int = MAX_ENTRIES
    seed: int = 0


def numerical_gradients(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                        sampling: Sampling = Sampling()) -> tuple[Params, dict[str, np.ndarray]]:
    """Central differences of J in float64 (step ``STEP``) for every (or every sampled)
    parameter entry. Returns the gradients (NaN where not sampled or at a ReLU kink) and the
    masks of checked entries."""
    params = {name: np.asarray(value, np.float64) for name, value in params.items()}
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    cache = forward(params, X, spec)
    gradients, masks = {}, {}
    for name, value in params.items():
        layer = int(name[1:])
        A_below, Z = cache.A[layer - 1], cache.Z[layer]
        numerical = np.full(value.shape, np.nan)
        for flat in entries_to_check(value.shape, name, sampling.max_entries, sampling.seed):
            row, column = np.unravel_index(flat, value.shape)
            shift = STEP * (A_below[column] if name[0] == "W" else 1.0)
            (J_plus, signs_plus), (J_minus, signs_minus) = (
                cost_above(params, shifted_row(Z, row, sign * shift), layer, Y, spec) for sign in (1.0, -1.0))
            if all(np.array_equal(p, q) for p, q in zip(signs_plus, signs_minus)):
                numerical[row, column] = (J_plus - J_minus) / (2 * STEP)
        gradients[name], masks[name] = numerical, ~np.isnan(numerical)
    return gradients, masks


def gradcheck(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
              max_entries: int = MAX_ENTRIES, seed: int = 0) -> GradcheckResult:
    """Compare the reference backward pass (in float64) with central differences."""
    params64 = {name: np.asarray(value, np.float64) for name, value in params.items()}
    J, analytic, _ = cost_and_gradients(params64, np.asarray(X, np.float64), np.asarray(Y, np.float64), spec)
    numerical, masks = numerical_gradients(params64, X, Y, spec, Sampling(max_entries, seed))
    g = np.concatenate([analytic[name][masks[name]] for name in analytic])
    g_num = np.concatenate([numerical[name][masks[name]] for name in analytic])
    denominator = np.linalg.norm(g) + np.linalg.norm(g_num)
    difference = float(np.linalg.norm(g - g_num) / denominator) if denominator > 0 else 0.0
    noise = np.sqrt(g.size) * np.finfo(np.float64).eps * abs(J) / STEP
    attempted = sum(len(entries_to_check(value.shape, name, max_entries, seed)) for name, value in params64.items())
    return GradcheckResult(
        difference, _worst_entry(analytic, numerical, masks), int(g.size), attempted - int(g.size),
        sum(value.size for value in params64.values()),
        [name for name, value in params64.items() if value.size > max_entries], numerical, masks,
        float(noise / denominator) if denominator > 0 else 0.0, float(np.linalg.norm(g)),
    )


def _worst_entry(analytic: Params, numerical: Params, masks: dict[str, np.ndarray]) -> dict:
    """The checked entry with the greatest |g - g_num|: parameter, index and both values."""
    best = {"parameter": None, "index": [], "analytic": 0.0, "numerical": 0.0, "abs_difference": -1.0}
    for name, mask in masks.items():
        difference = np.where(mask, np.abs(analytic[name] - np.nan_to_num(numerical[name])), -1.0)
        index = np.unravel_index(int(np.argmax(difference)), difference.shape)
        if difference[index] > best["abs_difference"]:
            best = {"parameter": name, "index": [int(i) for i in index], "analytic": float(analytic[name][index]),
                    "numerical": float(numerical[name][index]), "abs_difference": float(difference[index])}
    return best
