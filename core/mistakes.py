"""Classic mistakes of a hand-derived backprop, recognised from the gradient they produce.

Backprop errors flow downward: a mistake in layer l spoils dW[l], db[l] and every gradient
below, while those above stay right. So the first wrong gradient counted from the output
(dW[L], db[L], dW[L-1], ...; within a layer dW before db) is held against what each known
mistake makes of it, everything above taken from the reference:

    predicted   the gradient the mistake gives from the reference's A[l-1], Z[l], A[l] and
                dZ[l+1] (for the output layer: A[L] and Y)
    recognised  |got - predicted| <= MATCH |predicted|  (normwise), the closest one winning,
                among predictions that differ from the right gradient by more than 2 MATCH

A constant factor c (least squares, ``diagnosis.fitted_factor``) is recognised the same way
(for one number, only a named one) and named when it is m, 1/m, -1, n_L (mse), 1/n_L
(cross-entropy), 1/2 or 2, the first name that fits winning (with n_L = 2, a factor 2 of the
mse is its mean over m only). Where two mistakes give the same numbers, the first listed is
named. The right values in another shape are named by the two shapes and the fix (keepdims,
transposed, reshaped); any other shape the quantity cannot have is named too. A cost that is
the cost of the same parameters under another hidden activation or loss says the learner's
function computes another network. A constant ε where learners put one (inside the cost's
log, in dA[L]) is fitted (``epsilon_mistake``) and named with its size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gradparity.core.compare import FINITE_DIFFERENCE_RTOL
from gradparity.core.diagnosis import fitted_factor
from gradparity.core.network import HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec
from gradparity.core.reference import ForwardPass, Params, activation_derivative, backward, cost, deltas, forward, sigmoid

MATCH = 1e-4  # float32 rounding (~1e-7) matches; two different formulas differ by far more
EPSILONS = np.logspace(-16, -2, 57)  # the grid a constant ε is fitted on: 4 points a decade
BISECTIONS = 40  # halvings of a quarter decade: far below the one digit a learner writes
FIT = 1e-3  # a fitted ε reproduces the learner's cost to this share of its distance from the reference


@dataclass(frozen=True)
class Mistake:
    """A recognised mistake: its pattern (a short name), a one-sentence hint, and whether it
    concerns the whole network (another activation or loss) rather than one quantity."""

    pattern: str
    hint: str
    whole_network: bool = False


@dataclass
class Derivation:
    """The reference's derivation on one network and data set, in float64: the forward cache,
    every dZ[l], the cost and the gradients under the learner's names (``dW1``, ``db1``, ...)."""

    spec: NetworkSpec
    params: Params
    Y: np.ndarray
    cache: ForwardPass
    dZ: dict[int, np.ndarray]
    cost: float
    gradients: dict[str, np.ndarray]

    @classmethod
    def of(cls, params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> Derivation:
        params = {name: np.asarray(value, np.float64) for name, value in params.items()}
        Y = np.asarray(Y, np.float64)
        cache = forward(params, np.asarray(X, np.float64), spec)
        gradients = {f"d{name}": value for name, value in backward(params, cache, Y, spec).items()}
        return cls(spec, params, Y, cache, deltas(params, cache, Y, spec), cost(cache.ZL, cache.A[-1], Y, spec.loss),
                   gradients)

    @property
    def m(self) -> int:
        return self.Y.shape[1]

    def expected(self, quantity: str) -> np.ndarray:
        """The right value of ``cost``, ``dW2``, ``db1``, ... as an array."""
        return np.array(self.cost) if quantity == "cost" else self.gradients[quantity]


def recognise(quantity: str, got: np.ndarray, derivation: Derivation) -> Mistake | None:
    """The known mistake that explains the learner's ``got`` for ``quantity`` (``cost``,
    ``dW2``, ``db1``, ...), every gradient above it being right; None when none does. In
    turn: NaN or inf (said as such: ``gradparity.floating_point`` traces where it came from),
    the right values in another shape, the closest prediction or named factor, a constant ε
    where learners put one (the cost's log, dA[L]), any other shape, a difference within MATCH
    (precision)."""
    got = np.asarray(got, np.float64)
    expected = derivation.expected(quantity)
    if got.shape == expected.shape and not np.isfinite(got).all():
        bad = int(np.count_nonzero(~np.isfinite(got)))
        return Mistake("not-finite", f"{quantity} holds NaN or infinite values in {bad} of {got.size} entries")
    shape_only = shape_mistake(quantity, got, expected)
    if shape_only:
        return shape_only
    candidates = [(distance(got, predicted), mistake) for mistake, predicted in predictions(quantity, derivation)
                  if predicted.shape == got.shape and
                  (predicted.shape != expected.shape or distance(predicted, expected) > 2 * MATCH)]
    candidates.append(factor_mistake(quantity, got, expected, derivation))
    closest, mistake = min(candidates, key=lambda pair: pair[0])
    if closest <= MATCH:
        return mistake
    constant = epsilon_mistake(quantity, got, derivation)
    if constant:
        return constant
    if got.shape != expected.shape:
        return Mistake("shape", f"{quantity} has shape {got.shape}; it must have the shape of "
                                f"{quantity[1:]}, {expected.shape}")
    if distance(got, expected) <= MATCH:
        return Mistake("precision", f"{quantity} is close to the reference (relative difference "
                                    f"{distance(got, expected):.1e}) but beyond the tolerance: the formula looks "
                                    "right, the arithmetic is not (float32 somewhere, or a saturated log?)"
                                    f"{unresolved(quantity, got, expected)}")
    return None


def shape_mistake(quantity: str, got: np.ndarray, expected: np.ndarray) -> Mistake | None:
    """The right values (within MATCH) in another shape, and the fix for it: axes of size 1
    lost (keepdims), transposed, or arranged otherwise (reshape); None when the shapes agree,
    the sizes differ or the values are not the reference's."""
    if got.shape == expected.shape or got.size != expected.size:
        return None
    said = f"{quantity} has shape {got.shape}, the reference {expected.shape}"
    if got.shape == expected.T.shape and distance(got.T, expected) <= MATCH:
        return Mistake("transposed", f"{said}: transposed; {transposed_fix(quantity)}")
    if distance(got.reshape(expected.shape), expected) > MATCH:
        return None
    if got.ndim < expected.ndim:
        return Mistake("keepdims", f"{said}: keepdims; {keepdims_fix(quantity, expected.shape)}")
    return Mistake("reshaped", f"{said}: the values are right, arranged otherwise; reshape it to {expected.shape}")


def keepdims_fix(quantity: str, shape: tuple[int, ...]) -> str:
    """How a gradient keeps its axes of size 1."""
    layer = quantity[2:]
    if quantity.startswith("db"):
        return f"np.sum(dZ{layer}, axis=1, keepdims=True) keeps b{layer}'s shape {shape}"
    return f"keep the axes of size 1 (keepdims=True where it is summed, or reshape it to {shape})"


def transposed_fix(quantity: str) -> str:
    """How a gradient gets its parameter's orientation."""
    layer = quantity[2:]
    if quantity.startswith("db"):
        return f"db{layer} is a column, one row per unit: sum dZ{layer} over axis 1, the examples"
    return f"dW{layer} = dZ{layer} A{int(layer) - 1}^T has the shape of W{layer}"


def epsilon_mistake(quantity: str, got: np.ndarray, derivation: Derivation) -> Mistake | None:
    """A constant ε where learners put one (``epsilon_forms``: inside the cost's log, or in the
    divisions of dA[L] for dW[L] and db[L]), fitted: each root in [1e-16, 1e-2] of
    r(ε) = <v(ε) - got, got - right> (zero where v(ε) = got, negative as ε -> 0 where v is the
    right value; ``epsilon_roots``), rounded to one significant digit as a learner writes it,
    is named when that ε reproduces got to within FIT |got - right| (normwise); None when no
    form and root does."""
    expected = derivation.expected(quantity)
    gap = got - expected
    size = float(np.linalg.norm(gap))
    if size == 0 or not np.isfinite(size):
        return None
    for pattern, lead, value_of in epsilon_forms(quantity, derivation):
        for root in epsilon_roots(lambda epsilon: float(np.vdot(value_of(epsilon) - got, gap))):
            epsilon = float(f"{root:.0e}")
            if np.linalg.norm(value_of(epsilon) - got) <= FIT * size:
                return Mistake(pattern, f"{lead} with ε = {epsilon:.0e} (fitted), {distance(got, expected):.1e} "
                                        f"relative from the reference's, which has no ε{unresolved(quantity, got, expected)}")
    return None


def unresolved(quantity: str, got: np.ndarray, expected: np.ndarray) -> str:
    """For a gradient closer to the reference than central differences resolve, the words
    that say so (their column agrees while the reference's does not); else nothing."""
    if quantity == "cost" or distance(got, expected) >= FINITE_DIFFERENCE_RTOL:
        return ""
    return f"; finite differences, good to {FINITE_DIFFERENCE_RTOL:.0e} relative, cannot tell the two apart"


Form = tuple[str, str, Callable[[float], np.ndarray]]


def epsilon_forms(quantity: str, derivation: Derivation) -> list[Form]:
    """The places learners put a constant ε, each as (pattern, the words that lead its hint,
    the quantity as a function of ε): the cost's log (``log_constant_costs``) and, for bce,
    dA[L] = -(y/(a + ε) - (1 - y)/(1 - a + ε)) behind dW[L] and db[L]."""
    if quantity == "cost":
        return [("epsilon-in-log", f"cost has a constant inside the log: it is {formula}", cost_of)
                for formula, cost_of in log_constant_costs(derivation)]
    if derivation.spec.loss != "bce" or quantity[2:] != str(derivation.spec.depth):
        return []
    a, y, A_prev = derivation.cache.A[-1], derivation.Y, derivation.cache.A[-2]

    def gradient(epsilon: float) -> np.ndarray:
        dZ = -(y / (a + epsilon) - (1 - y) / (1 - a + epsilon)) * a * (1 - a) / derivation.m
        return dZ @ A_prev.T if quantity.startswith("dW") else dZ.sum(axis=1, keepdims=True)

    return [("epsilon-in-dA", f"{quantity} has a constant in dA[L]: it comes from dA[L] = -(y/(a + ε) - "
                              "(1 - y)/(1 - a + ε))", gradient)]


def log_constant_costs(derivation: Derivation) -> list[tuple[str, Callable[[float], np.ndarray]]]:
    """The cost with a constant ε in its log as learners write it, each a function of ε (on the
    reference's A[L]): for bce ε in both logs, in the first or the second only, or A[L] clipped
    into [ε, 1 - ε]; for softmax-ce ε in the log or A[L] clipped; none for mse."""
    a, y = derivation.cache.A[-1], derivation.Y
    clipped = "with c = np.clip(a, ε, 1 - ε)"
    if derivation.spec.loss == "bce":
        return [("-1/m sum(y log(a + ε) + (1 - y) log(1 - a + ε))",
                 lambda e: log_loss(derivation, (y, a + e), (1 - y, 1 - a + e))),
                ("-1/m sum(y log(a + ε) + (1 - y) log(1 - a))", lambda e: log_loss(derivation, (y, a + e), (1 - y, 1 - a))),
                ("-1/m sum(y log(a) + (1 - y) log(1 - a + ε))", lambda e: log_loss(derivation, (y, a), (1 - y, 1 - a + e))),
                (f"-1/m sum(y log(c) + (1 - y) log(1 - c)) {clipped}",
                 lambda e: log_loss(derivation, (y, np.clip(a, e, 1 - e)), (1 - y, 1 - np.clip(a, e, 1 - e))))]
    if derivation.spec.loss == "softmax-ce":
        return [("-1/m sum(y log(a + ε))", lambda e: log_loss(derivation, (y, a + e))),
                (f"-1/m sum(y log(c)) {clipped}", lambda e: log_loss(derivation, (y, np.clip(a, e, 1 - e))))]
    return []


def log_loss(derivation: Derivation, *terms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """-1/m sum(w log p) over the (w, p) of ``terms``, as a 0-d array; NaN or inf where a p is
    0 or below."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(-sum(np.sum(weight * np.log(p)) for weight, p in terms) / derivation.m)


def epsilon_roots(residual: Callable[[float], float]) -> list[float]:
    """The roots of ``residual`` in [1e-16, 1e-2]: one in each interval of the grid EPSILONS
    (a quarter of a decade) where its finite values change sign, found by bisection in log ε."""
    values = [residual(epsilon) for epsilon in EPSILONS]
    return [bisected(residual, low, high, f_low)
            for low, high, f_low, f_high in zip(EPSILONS, EPSILONS[1:], values, values[1:])
            if np.isfinite(f_low) and np.isfinite(f_high) and (f_low <= 0) != (f_high <= 0)]


def bisected(residual: Callable[[float], float], low: float, high: float, f_low: float) -> float:
    """The root of ``residual`` between ``low`` and ``high`` (where it changes sign), the
    interval halved in log ε BISECTIONS times."""
    for _ in range(BISECTIONS):
        middle = float(np.sqrt(low * high))
        f_middle = residual(middle)
        if (f_middle <= 0) == (f_low <= 0):
            low, f_low = middle, f_middle
        else:
            high = middle
    return float(np.sqrt(low * high))


def distance(got: np.ndarray, predicted: np.ndarray) -> float:
    """|got - predicted| / |predicted| (normwise); infinite when the prediction is zero and
    got is not."""
    scale = float(np.linalg.norm(predicted))
    gap = float(np.linalg.norm(got - predicted))
    return gap / scale if scale else (0.0 if gap == 0 else float("inf"))


def factor_mistake(quantity: str, got: np.ndarray, expected: np.ndarray, derivation: Derivation) -> tuple[float, Mistake]:
    """The constant factor c with got ~ c * expected, and how far got is from it: for a named c
    (``named_factors``) the distance to exactly c * expected; for any other, the relative
    residual of the fit, only where there is more than one number to fit."""
    fit = fitted_factor(got, expected)
    if fit is None or fit[0] == 0 or abs(fit[0] - 1) <= 2 * MATCH:
        return float("inf"), Mistake("factor", "")
    factor, residual = fit
    for value, mistake in named_factors(quantity, derivation):
        if abs(factor - value) <= MATCH * abs(value):
            return distance(got, value * expected), mistake
    if got.size == 1:
        return float("inf"), Mistake("factor", "")
    return residual, Mistake("factor", f"{quantity} is {factor:.4g} times the reference: a constant factor is wrong")


def named_factors(quantity: str, derivation: Derivation) -> list[tuple[float, Mistake]]:
    """The factors a classic mistake multiplies ``quantity`` by, in the order they are named."""
    m, outputs, loss = derivation.m, derivation.spec.layer_sizes[-1], derivation.spec.loss
    named = [(m, Mistake("missing-1/m", f"{quantity} is m = {m} times the reference: the 1/m of the mean is missing")),
             (1 / m, Mistake("1/m-twice", f"{quantity} is 1/m = 1/{m} of the reference: 1/m is applied twice "
                                          "(in dZ and again in dW or db)")),
             (-1, Mistake("sign", f"{quantity} has the opposite sign: dZ[L] is A - Y, the cost J = -1/m sum(...)"))]
    if outputs > 1 and loss == "mse":
        named.append((outputs, Mistake("mean-over-outputs", f"{quantity} is n_L = {outputs} times the reference: the "
                                                            "mse averages over all n_L m entries, divide by n_L m")))
    elif outputs > 1:
        named.append((1 / outputs, Mistake("mean-over-outputs", f"{quantity} is 1/n_L = 1/{outputs} of the "
                                                                "reference: the cross-entropy sums over the outputs "
                                                                "and averages over the m examples only")))
    return named + [(0.5, Mistake("factor-1/2", f"{quantity} is half the reference: the factor 2 of d(a - y)^2/da "
                                                "is missing")),
                    (2, Mistake("factor-2", f"{quantity} is twice the reference: a factor 2 too many"))]


def predictions(quantity: str, derivation: Derivation) -> list[tuple[Mistake, np.ndarray]]:
    """What each known mistake gives for ``quantity``: for the cost, the cost of other networks;
    for dW[l] or db[l], the mistakes of its own layer."""
    if quantity == "cost":
        return other_networks(derivation)
    layer = int(quantity[2:])
    zeros = (Mistake("zeros", f"{quantity} is all zeros: it is never computed (left at its initial value?)"),
             np.zeros_like(derivation.gradients[quantity]))
    layer_mistakes = weight_mistakes if quantity.startswith("dW") else bias_mistakes
    return [*layer_mistakes(quantity, layer, derivation), zeros]


def weight_mistakes(quantity: str, layer: int, derivation: Derivation) -> list[tuple[Mistake, np.ndarray]]:
    """dW[l] = dZ[l] A[l-1]^T from a wrong dZ[l], transposed (for a square W: ``shape_mistake``
    names the others), or with A[l] for A[l-1]."""
    A, dZ = derivation.cache.A, derivation.dZ
    return [*((mistake, delta @ A[layer - 1].T) for mistake, delta in delta_mistakes(layer, derivation)),
            (Mistake("transposed", f"{quantity} is transposed: it has the shape of W{layer}^T; "
                                   f"dW[l] = dZ[l] A[l-1]^T has the shape of W[l]"), derivation.gradients[quantity].T),
            (Mistake("A-for-A_prev", f"{quantity} uses A[{layer}] where A[{layer - 1}] belongs: "
                                     f"dW[l] = dZ[l] A[l-1]^T, with the layer's input"), dZ[layer] @ A[layer].T)]


def bias_mistakes(quantity: str, layer: int, derivation: Derivation) -> list[tuple[Mistake, np.ndarray]]:
    """db[l] = sum(dZ[l], axis=1) from a wrong dZ[l], or dZ[l] summed wrongly or not at all."""
    dZ = derivation.dZ[layer]
    summed = f"sum dZ[{layer}] over axis 1, the examples: np.sum(dZ, axis=1, keepdims=True)"
    axis_0 = Mistake("sum-axis-0", f"{quantity} is summed over axis 0, the units; {summed}")
    return [*((mistake, delta.sum(axis=1, keepdims=True)) for mistake, delta in delta_mistakes(layer, derivation)),
            (Mistake("not-summed", f"{quantity} has one column per example: dZ[{layer}] is not summed over the "
                                   f"examples; {summed}"), dZ),
            (axis_0, dZ.sum(axis=0, keepdims=True)), (axis_0, dZ.sum(axis=0)),
            (Mistake("sum-all", f"{quantity} is one number, the sum of all of dZ[{layer}]; {summed}"),
             np.array(dZ.sum()))]


def other_networks(derivation: Derivation) -> list[tuple[Mistake, np.ndarray]]:
    """The cost of the same parameters and data under every other hidden activation and loss
    the labels allow: a learner's function may compute another network than the one checked."""
    spec, Y = derivation.spec, derivation.Y
    one_hot = Y.shape[0] > 1 and np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=0) == 1)
    losses = [loss for loss in LOSSES if loss != "softmax-ce" or one_hot]
    activations = HIDDEN_ACTIVATIONS if spec.depth > 1 else (spec.hidden_activation,)
    costs = []
    for activation, loss in itertools.product(activations, losses):
        other = NetworkSpec(spec.layer_sizes, activation, loss)
        if other != spec:
            cache = forward(derivation.params, derivation.cache.A[0], other)
            hint = (f"the cost is that of a {other.describe()} network, not {spec.describe()}: does your backprop "
                    f"use {activation} and {loss}? (then check it with --activation {activation} --loss {loss})")
            costs.append((Mistake("other-network", hint, whole_network=True),
                          np.array(cost(cache.ZL, cache.A[-1], Y, loss))))
    return costs


Derivative = Callable[[np.ndarray, np.ndarray], np.ndarray]


def derivative_mistakes(activation: str, layer: int) -> list[tuple[Mistake, Derivative]]:
    """The wrong g'(Z[l]) learners write for ``activation``, each as a function of (Z, A)."""
    missing = Mistake("derivative-missing", f"dZ[{layer}] lacks g'(Z[{layer}]): dZ[l] = dA[l] * g'(Z[l])")
    if activation == "relu":
        return [(Mistake("derivative-missing", f"relu' of layer {layer} is 1 everywhere, also where Z <= 0: the "
                                               "derivative is left out, or Z was overwritten in place by the ReLU "
                                               "before [Z > 0] was read"), lambda Z, A: np.ones_like(Z)),
                (Mistake("derivative-form", f"relu' of layer {layer} is inverted: [Z < 0] where it is [Z > 0]"),
                 lambda Z, A: (Z < 0) * 1.0),
                (Mistake("derivative-form", f"dZ[{layer}] = dA * Z: relu' is the step [Z > 0], not Z"),
                 lambda Z, A: Z)]
    if activation == "tanh":
        return [(Mistake("derivative-form", f"tanh' of layer {layer} is 1 - A; it is 1 - A^2"), lambda Z, A: 1 - A),
                (Mistake("derivative-at-A", f"tanh' of layer {layer} is taken at A instead of Z: 1 - tanh(A)^2; "
                                            "with A = tanh(Z) it is 1 - A^2"), lambda Z, A: 1 - np.tanh(A) ** 2),
                (Mistake("derivative-of-Z", f"tanh' of layer {layer} uses Z where A belongs: 1 - Z^2 instead of "
                                            "1 - A^2"), lambda Z, A: 1 - Z ** 2),
                (missing, lambda Z, A: np.ones_like(Z)),
                (Mistake("other-derivative", f"layer {layer} uses the sigmoid's A(1 - A) for tanh: tanh' = 1 - A^2"),
                 lambda Z, A: A * (1 - A))]
    return [(Mistake("derivative-form", f"sigmoid' of layer {layer} is A(1 + A); it is A(1 - A)"),
             lambda Z, A: A * (1 + A)),
            (Mistake("derivative-at-A", f"sigmoid' of layer {layer} is taken at A instead of Z: "
                                        "sigma(A)(1 - sigma(A)); with A = sigma(Z) it is A(1 - A)"),
             lambda Z, A: sigmoid(A) * (1 - sigmoid(A))),
            (Mistake("derivative-of-Z", f"sigmoid' of layer {layer} uses Z where A belongs: Z(1 - Z) instead of "
                                        "A(1 - A)"), lambda Z, A: Z * (1 - Z)),
            (missing, lambda Z, A: np.ones_like(Z)),
            (Mistake("other-derivative", f"layer {layer} uses tanh's 1 - A^2 for a sigmoid: sigmoid' = A(1 - A)"),
             lambda Z, A: 1 - A ** 2)]


def delta_mistakes(layer: int, derivation: Derivation) -> list[tuple[Mistake, np.ndarray]]:
    """The wrong dZ[layer] each known mistake gives, dZ[layer + 1] being right."""
    spec, A, Z, dZ = derivation.spec, derivation.cache.A, derivation.cache.Z, derivation.dZ
    if layer == spec.depth and spec.loss == "bce":  # as the course writes it: dZ[L] = dA[L] * sigmoid'(Z[L])
        dA = -(derivation.Y / A[-1] - (1 - derivation.Y) / (1 - A[-1])) / derivation.m
        return output_delta_mistakes(A[-1], derivation.Y, spec.loss) + [
            (mistake, dA * g(Z[layer], A[layer])) for mistake, g in derivative_mistakes("sigmoid", layer)]
    if layer == spec.depth and spec.loss != "mse":
        return output_delta_mistakes(A[-1], derivation.Y, spec.loss)
    activation = spec.activation(layer)
    if layer == spec.depth:  # mse: dZ[L] = dA[L] * sigmoid'(Z[L]) with dA[L] = 2 (A - Y) / (n_L m)
        upstream = 2 * (A[-1] - derivation.Y) / derivation.Y.size
    else:
        W = derivation.params[f"W{layer + 1}"]
        upstream = W.T @ dZ[layer + 1]
    mistakes = [(mistake, upstream * g(Z[layer], A[layer])) for mistake, g in derivative_mistakes(activation, layer)]
    if layer < spec.depth and W.shape[0] == W.shape[1]:
        mistakes.append((Mistake("W-not-transposed", f"dA[{layer}] = W[{layer + 1}] dZ[{layer + 1}] lacks the "
                                                     "transpose: dA[l] = W[l+1]^T dZ[l+1]"),
                         (W @ dZ[layer + 1]) * activation_derivative(A[layer], activation)))
    return mistakes


def output_delta_mistakes(AL: np.ndarray, Y: np.ndarray, loss: str) -> list[tuple[Mistake, np.ndarray]]:
    """The wrong dZ[L] learners write for a cross-entropy output (sigmoid + bce, softmax + ce)."""
    m = Y.shape[1]
    right = "(A - Y)/m"
    mistakes = [(Mistake("Y-not-subtracted", f"dZ[L] = A/m: Y is not subtracted; dZ[L] = {right}"), AL / m),
                (Mistake("dA-for-dZ", f"dZ[L] is dJ/dA[L]: the output's derivative is not applied; dZ[L] = {right}"),
                 (-Y / AL + (1 - Y) / (1 - AL)) / m if loss == "bce" else -Y / AL / m)]
    if loss == "bce":
        mistakes.append((Mistake("derivative-twice", f"dZ[L] is multiplied by sigmoid' again: with cross-entropy "
                                                     f"it cancels, dZ[L] = {right}"), (AL - Y) * AL * (1 - AL) / m))
    return mistakes
