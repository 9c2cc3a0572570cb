"""Second order by hand: the forward-mode tangents and the Hessian-vector product H V of the
reference network, by Pearlmutter's R-operator ("Fast exact multiplication by the Hessian",
1994): R{f} = d/dr f(theta + r V) at r = 0, for a direction V = {VW1, Vb1, ...} of the
parameters, applied line by line to the forward and the backward pass of ``core.reference``.

    forward R-pass:   Ż[l] = VW[l] A[l-1] + W[l] Ȧ[l-1] + Vb[l],        Ȧ[0] = 0 (X is data)
                      Ȧ[l] = g'(Z[l]) ⊙ Ż[l]     (softmax, per column: Ȧ = A ⊙ (Ż - Σ A ⊙ Ż))
                      J̇ = Σ dZ[L] ⊙ Ż[L]         (the cost's directional derivative <∇J, V>)
    backward R-pass:  R{dZ[L]} = Ȧ[L] / m                                     (bce, softmax-ce)
                      R{dZ[L]} = 2/(nL m) Ȧ[L] ⊙ (A(1 - A) + (A - Y)(1 - 2A))   (mse, A = A[L])
                      R{dZ[l]} = (VW[l+1]^T dZ[l+1] + W[l+1]^T R{dZ[l+1]}) ⊙ g'(Z[l])
                                 + (W[l+1]^T dZ[l+1]) ⊙ g''(Z[l]) ⊙ Ż[l]
                      (H V)W[l] = R{dW[l]} = R{dZ[l]} A[l-1]^T + dZ[l] Ȧ[l-1]^T
                      (H V)b[l] = R{db[l]} = Σ R{dZ[l]} over the examples

g' and g'' are written in terms of A = g(Z), as the first-order code writes g': sigmoid
g'' = A(1 - A)(1 - 2A), tanh g'' = -2A(1 - A^2), ReLU g'' = 0 (at the kink Z = 0, g' = 0 as in
the first-order code, so both R-passes stop there too). Every function computes in the dtype of
its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradparity.core.errors import ParamsError, SpecError
from gradparity.core.network import NetworkSpec, check_params
from gradparity.core.reference import (ForwardPass, Params, activation_derivative, cost_and_gradients, deltas, forward,
                                       output_delta)

DIRECTION_SEED = 0
SECOND_STEP = 1e-5  # the step of the central differences along V, over max|V|


def activation_second_derivative(A: np.ndarray, name: str) -> np.ndarray:
    """g''(Z) in terms of A = g(Z): sigmoid A(1 - A)(1 - 2A), tanh -2A(1 - A^2), relu 0."""
    if name == "sigmoid":
        return activation_derivative(A, "sigmoid") * (1 - 2 * A)
    if name == "tanh":
        return -2 * A * activation_derivative(A, "tanh")
    if name == "relu":
        return np.zeros_like(A)
    raise SpecError(f"unknown activation {name!r}")


def default_direction(spec: NetworkSpec, dtype: str = "float64", seed: int = DIRECTION_SEED) -> Params:
    """The seeded direction of a case: ``V[name] ~ N(0, 1)`` of each parameter's shape, drawn
    in layer order (W1, b1, W2, ...) from ``numpy.random.default_rng(seed)``, in ``dtype``."""
    generator = np.random.default_rng(seed)
    return {name: generator.standard_normal(shape).astype(dtype) for name, shape in spec.param_shapes().items()}


def check_direction(spec: NetworkSpec, direction: Params, source: str = "the direction") -> None:
    """Raise ParamsError unless ``direction`` holds exactly the spec's W/b arrays, finite and
    not all zero (along a zero direction every second-order quantity is 0 and proves nothing)."""
    expected = spec.param_shapes()
    for name, shape in expected.items():
        if name not in direction:
            raise ParamsError(f"{source} lacks {name} (it needs {', '.join(expected)} for layers {list(spec.layer_sizes)})")
        if np.shape(direction[name]) != shape:
            raise ParamsError(f"{name} of {source} has shape {np.shape(direction[name])}, expected {shape} for layers "
                              f"{list(spec.layer_sizes)}")
        if not np.all(np.isfinite(direction[name])):
            raise ParamsError(f"{name} of {source} holds NaN or infinite values")
    extra = sorted(set(direction) - set(expected))
    if extra:
        raise ParamsError(f"{source} has {', '.join(extra)}, which a {spec.depth}-layer network does not")
    if not any(np.any(direction[name]) for name in expected):
        raise ParamsError(f"{source} is zero everywhere: every second-order quantity along it is 0 and proves nothing")


@dataclass
class Tangents:
    """The forward R-pass: ``Zdot = [0, Ż1, ..., ŻL]``, ``Adot = [0, Ȧ1, ..., ȦL]`` and J̇ (index
    0, the data, has zero tangents)."""

    Zdot: list[np.ndarray]
    Adot: list[np.ndarray]
    cost: float


def activation_tangent(A: np.ndarray, Zdot: np.ndarray, name: str) -> np.ndarray:
    """Ȧ = g'(Z) ⊙ Ż; for softmax the Jacobian-vector product per column, A ⊙ (Ż - Σ A ⊙ Ż)."""
    if name == "softmax":
        return A * (Zdot - (A * Zdot).sum(axis=0, keepdims=True))
    return activation_derivative(A, name) * Zdot


def tangents(params: Params, direction: Params, cache: ForwardPass, dZL: np.ndarray, spec: NetworkSpec) -> Tangents:
    """Ż[l] = VW[l] A[l-1] + W[l] Ȧ[l-1] + Vb[l], Ȧ[l] = g'(Z[l]) ⊙ Ż[l] for l = 1..L, and
    J̇ = Σ dZ[L] ⊙ Ż[L] (``dZL`` = dJ/dZ[L], ``reference.output_delta``)."""
    Zdot, Adot = [np.zeros_like(cache.A[0])], [np.zeros_like(cache.A[0])]
    for layer in range(1, spec.depth + 1):
        Z = np.dot(direction[f"W{layer}"], cache.A[layer - 1]) + direction[f"b{layer}"]
        if layer > 1:
            Z += np.dot(params[f"W{layer}"], Adot[-1])
        Zdot.append(Z)
        Adot.append(activation_tangent(cache.A[layer], Z, spec.activation(layer)))
    return Tangents(Zdot, Adot, float(np.sum(dZL * Zdot[-1])))


def output_delta_tangent(AL: np.ndarray, AdotL: np.ndarray, Y: np.ndarray, loss: str) -> np.ndarray:
    """R{dZ[L]}: Ȧ[L] / m for bce and softmax-ce (dZ[L] = (A - Y)/m), and for mse
    (dZ[L] = 2/(nL m) (A - Y) A(1 - A)) 2/(nL m) Ȧ[L] ⊙ (A(1 - A) + (A - Y)(1 - 2A))."""
    if loss == "mse":
        return (2.0 / Y.size) * AdotL * (activation_derivative(AL, "sigmoid") + (AL - Y) * (1 - 2 * AL))
    return AdotL / Y.shape[1]


@dataclass
class RPass:
    """One forward and backward pass with their R-passes: the forward cache, the deltas
    ``dZ[l]`` of the backward pass, the tangents and H V keyed ``W1, b1, ...``."""

    cache: ForwardPass
    dZ: dict[int, np.ndarray]
    tangents: Tangents
    hvp: Params


def r_operator(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec, direction: Params) -> RPass:
    """The forward pass, the backward pass, the forward R-pass (``tangents``) and the backward
    R-pass giving H V (the module docstring's formulas)."""
    check_params(spec, params)
    check_direction(spec, direction)
    cache = forward(params, X, spec)
    dZ = deltas(params, cache, Y, spec)
    rpass = RPass(cache, dZ, tangents(params, direction, cache, dZ[spec.depth], spec), {})
    RdZ = output_delta_tangent(cache.A[-1], rpass.tangents.Adot[-1], Y, spec.loss)
    for layer in range(spec.depth, 0, -1):
        rpass.hvp[f"W{layer}"] = np.dot(RdZ, cache.A[layer - 1].T) + np.dot(dZ[layer], rpass.tangents.Adot[layer - 1].T)
        rpass.hvp[f"b{layer}"] = RdZ.sum(axis=1, keepdims=True)
        if layer > 1:
            RdZ = hidden_delta_tangent(params, direction, rpass, RdZ, layer - 1, spec)
    rpass.hvp = {name: rpass.hvp[name] for name in spec.param_shapes()}
    return rpass


def hessian_vector_product(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                           direction: Params) -> tuple[Tangents, Params]:
    """The tangents (Ż[l], Ȧ[l], J̇) and H V keyed ``W1, b1, ...`` of J at ``params`` along
    ``direction``, by the R-operator (``r_operator``)."""
    rpass = r_operator(params, X, Y, spec, direction)
    return rpass.tangents, rpass.hvp


def hidden_delta_tangent(params: Params, direction: Params, rpass: RPass, RdZ_above: np.ndarray, layer: int,
                         spec: NetworkSpec) -> np.ndarray:
    """R{dZ[l]} = (VW[l+1]^T dZ[l+1] + W[l+1]^T R{dZ[l+1]}) ⊙ g'(Z[l]) + (W[l+1]^T dZ[l+1]) ⊙ g''(Z[l]) ⊙ Ż[l]."""
    above, A, g, dZ_above = f"W{layer + 1}", rpass.cache.A[layer], spec.hidden_activation, rpass.dZ[layer + 1]
    RdZ = np.dot(direction[above].T, dZ_above) + np.dot(params[above].T, RdZ_above)
    RdZ *= activation_derivative(A, g)
    RdZ += np.dot(params[above].T, dZ_above) * activation_second_derivative(A, g) * rpass.tangents.Zdot[layer]
    return RdZ


def tangent_magnitudes(params: Params, direction: Params, rpass: RPass, spec: NetworkSpec) -> Tangents:
    """M for each Ż[l], Ȧ[l] and for J̇, the scale of their rounding (``core.compare``): the
    forward R-pass on magnitudes, every factor by its absolute value and every sum by the sum of
    its terms' magnitudes, M(Ż[l]) = |VW[l]| |A[l-1]| + |W[l]| M(Ȧ[l-1]) + |Vb[l]|,
    M(Ȧ[l]) = |g'(Z[l])| M(Ż[l]) (softmax: A ⊙ (M(Ż) + Σ A ⊙ M(Ż))), M(J̇) = Σ |dZ[L]| M(Ż[L])."""
    cache = rpass.cache
    M_Zdot, M_Adot = [np.zeros_like(cache.A[0])], [np.zeros_like(cache.A[0])]
    for layer in range(1, spec.depth + 1):
        M_Z = np.abs(direction[f"W{layer}"]) @ np.abs(cache.A[layer - 1]) + np.abs(direction[f"b{layer}"])
        if layer > 1:
            M_Z += np.abs(params[f"W{layer}"]) @ M_Adot[-1]
        name, A = spec.activation(layer), cache.A[layer]
        M_Zdot.append(M_Z)
        if name == "softmax":
            M_Adot.append(A * (M_Z + (A * M_Z).sum(axis=0, keepdims=True)))
        else:
            M_Adot.append(np.abs(activation_derivative(A, name)) * M_Z)
    return Tangents(M_Zdot, M_Adot, float(np.sum(np.abs(rpass.dZ[spec.depth]) * M_Zdot[-1])))


def hvp_magnitudes(params: Params, direction: Params, rpass: RPass, tangents: Tangents, Y: np.ndarray,
                   spec: NetworkSpec) -> Params:
    """M for each entry of H V: the backward R-pass on magnitudes, every factor by its absolute
    value, every sum by the sum of its terms' magnitudes and every tangent by its magnitude
    (``tangents``, from ``tangent_magnitudes``; |dZ| propagated as ``compare.gradient_magnitudes``
    does), so that an entry which cancels to near zero (along a shift of every softmax logit,
    H V is 0 exactly) is judged against the rounding of its largest terms:

        M(R{dZ[L]}) = M(Ȧ[L]) / m   (mse: 2/(nL m) M(Ȧ[L]) ⊙ (A(1 - A) + |A - Y| |1 - 2A|))
        M(R{dZ[l]}) = (|VW[l+1]|^T |dZ[l+1]| + |W[l+1]|^T M(R{dZ[l+1]})) ⊙ |g'| + (|W[l+1]|^T |dZ[l+1]|) ⊙ |g''| ⊙ M(Ż[l])
        M(H V W[l]) = M(R{dZ[l]}) |A[l-1]|^T + |dZ[l]| M(Ȧ[l-1])^T,   M(H V b[l]) = Σ M(R{dZ[l]})
    """
    AL = rpass.cache.A[-1]
    M_dZ = np.abs(output_delta(AL, Y, spec.loss))
    M_RdZ = tangents.Adot[-1] / Y.shape[1]
    if spec.loss == "mse":
        M_RdZ = (2.0 / Y.size) * tangents.Adot[-1] * (activation_derivative(AL, "sigmoid") + np.abs((AL - Y) * (1 - 2 * AL)))
    magnitudes: Params = {}
    for layer in range(spec.depth, 0, -1):
        magnitudes[f"W{layer}"] = M_RdZ @ np.abs(rpass.cache.A[layer - 1]).T + M_dZ @ tangents.Adot[layer - 1].T
        magnitudes[f"b{layer}"] = M_RdZ.sum(axis=1, keepdims=True)
        if layer > 1:
            W, V, A, g = np.abs(params[f"W{layer}"]), np.abs(direction[f"W{layer}"]), rpass.cache.A[layer - 1], spec.hidden_activation
            back = W.T @ M_dZ
            M_RdZ = ((V.T @ M_dZ + W.T @ M_RdZ) * np.abs(activation_derivative(A, g))
                     + back * np.abs(activation_second_derivative(A, g)) * tangents.Zdot[layer - 1])
            M_dZ = back * np.abs(activation_derivative(A, g))
    return magnitudes


def difference_step(direction: Params) -> float:
    """h = SECOND_STEP / max|V|: the step along V of the central differences."""
    return SECOND_STEP / max(float(np.max(np.abs(value))) for value in direction.values())


@dataclass
class Differenced:
    """Central differences along V (``numerical_second_order``): J̇, ``Adot = [Ȧ1, ..., ȦL]``
    and H V over the examples ``examples`` marks."""

    cost: float
    Adot: list[np.ndarray]
    hvp: Params
    examples: np.ndarray


def numerical_second_order(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                           direction: Params) -> Differenced:
    """The ground truth in float64, by central differences along V with h = SECOND_STEP / max|V|:

        J̇ ~ (J(θ + hV) - J(θ - hV)) / 2h,   Ȧ[l] ~ (A[l](θ + hV) - A[l](θ - hV)) / 2h,
        H V ~ (∇J(θ + hV) - ∇J(θ - hV)) / 2h   (∇J by the reference's backward pass)

    An example whose ReLU inputs change sign (or leave zero) between θ - hV and θ + hV has no
    two-sided derivative there: it is left out, and J̇, Ȧ and H V are those of the cost over
    the kept examples (``examples``), a mean over them as the cost is over all (nothing, when
    every example crosses a kink)."""
    params = {name: np.asarray(value, np.float64) for name, value in params.items()}
    direction = {name: np.asarray(value, np.float64) for name, value in direction.items()}
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    h = difference_step(direction)
    shifted = [{name: params[name] + sign * h * direction[name] for name in params} for sign in (1.0, -1.0)]
    examples = np.ones(X.shape[1], dtype=bool)
    if spec.hidden_activation == "relu":
        for plus, minus in zip(*(forward(p, X, spec).Z[1:spec.depth] for p in shifted)):
            examples &= np.all((plus > 0) == (minus > 0), axis=0) & np.all(plus != 0, axis=0) & np.all(minus != 0, axis=0)
    if not examples.any():
        return Differenced(float("nan"), [], {}, examples)
    X, Y = X[:, examples], Y[:, examples]
    (J_plus, g_plus, cache_plus), (J_minus, g_minus, cache_minus) = (cost_and_gradients(p, X, Y, spec) for p in shifted)
    return Differenced((J_plus - J_minus) / (2 * h),
                       [(plus - minus) / (2 * h) for plus, minus in zip(cache_plus.A[1:], cache_minus.A[1:])],
                       {name: (g_plus[name] - g_minus[name]) / (2 * h) for name in g_plus}, examples)
