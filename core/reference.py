"""The hand-derived backpropagation of the document: the reference every backend is held to.

Column layout throughout: ``X`` is ``(n0, m)``, ``Y`` is ``(nL, m)``, ``W[l]`` is
``(n_l, n_{l-1})`` and ``b[l]`` is ``(n_l, 1)``, broadcast over the m columns.

    forward:   Z[l] = W[l] A[l-1] + b[l],   A[l] = g[l](Z[l]),   A[0] = X
    backward:  dZ[L] = dJ/dZ[L]  (= (A[L] - Y)/m for bce and softmax-ce)
               dZ[l] = W[l+1]^T dZ[l+1] * g'[l](Z[l])
               dW[l] = dZ[l] A[l-1]^T,      db[l] = sum(dZ[l], axis=1)
    update:    W[l] -= lr dW[l],            b[l] -= lr db[l]   (other optimizers: core.optimizers)

Every function computes in the dtype of its inputs and never changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradparity.core.errors import GradparityError, SpecError
from gradparity.core import optimizers
from gradparity.core.network import NetworkSpec, check_choice, check_params
from gradparity.core.optimizers import OptimizerState, Training, batch_size

Params = dict[str, np.ndarray]
INITS = ("seed", "xavier", "he", "glorot-uniform")


@np.errstate(over="ignore")
def sigmoid(Z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^-z), computed in one buffer. Where e^-z overflows (z below -709 in
    float64, -88.7 in float32) the quotient is exactly 0, as in torch, JAX and TensorFlow: the
    true value is subnormal there. Elsewhere it is within 2 ulps of the exact value."""
    A = np.negative(Z)
    np.exp(A, out=A)
    A += 1
    return np.reciprocal(A, out=A)


def softmax(Z: np.ndarray) -> np.ndarray:
    """softmax(z)_i = e^(z_i - max z) / sum_j e^(z_j - max z), per column."""
    E = Z - Z.max(axis=0, keepdims=True)
    np.exp(E, out=E)
    E /= E.sum(axis=0, keepdims=True)
    return E


def activate(Z: np.ndarray, name: str) -> np.ndarray:
    """A = g(Z) for g in sigmoid, tanh, relu (max(z, 0)) or softmax."""
    if name == "sigmoid":
        return sigmoid(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "softmax":
        return softmax(Z)
    raise SpecError(f"unknown activation {name!r}")


def activation_derivative(A: np.ndarray, name: str) -> np.ndarray:
    """g'(Z) written in terms of A = g(Z): sigmoid A(1-A), tanh 1-A^2, relu [A > 0]."""
    if name == "sigmoid":
        D = 1 - A
        D *= A
        return D
    if name == "tanh":
        D = A * A
        return np.subtract(1, D, out=D)
    if name == "relu":
        return (A > 0).astype(A.dtype)
    raise SpecError(f"unknown activation {name!r}")


@dataclass
class ForwardPass:
    """The cache of one forward pass: ``A = [A0, A1, ..., AL]`` and ``Z = [None, Z1, ..., ZL]``."""

    A: list[np.ndarray]
    Z: list[np.ndarray | None]

    @property
    def ZL(self) -> np.ndarray:
        return self.Z[-1]


def forward(params: Params, X: np.ndarray, spec: NetworkSpec) -> ForwardPass:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]) for l = 1..L, with A[0] = X."""
    A, Z = [X], [None]
    for layer in range(1, spec.depth + 1):
        Z.append(np.dot(params[f"W{layer}"], A[-1]))
        Z[-1] += params[f"b{layer}"]
        A.append(activate(Z[-1], spec.activation(layer)))
    return ForwardPass(A, Z)


def cost(ZL: np.ndarray, AL: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """The cost J of the output layer, from the logits ZL where that is the stable form.

    bce:        J = 1/m sum(max(z, 0) - z y + log(1 + e^-|z|)), equal to the document's
                -1/m sum(y log a + (1 - y) log(1 - a)) where that is finite
    softmax-ce: J = -1/m sum(y (z - max z - log sum e^(z - max z)))
    mse:        J = 1/(nL m) sum((a - y)^2)
    """
    m = Y.shape[1]
    if loss == "bce":
        losses = np.maximum(ZL, 0) - ZL * Y + np.log1p(np.exp(-np.abs(ZL)))
        return float(losses.sum() / m)
    if loss == "softmax-ce":
        log_A = ZL - ZL.max(axis=0, keepdims=True)  # log softmax, computed in place
        log_A -= np.log(np.exp(log_A).sum(axis=0, keepdims=True))
        return float(-(Y * log_A).sum() / m)
    if loss == "mse":
        return float(np.square(AL - Y).sum() / Y.size)
    raise SpecError(f"unknown loss {loss!r}")


def output_delta(AL: np.ndarray, Y: np.ndarray, loss: str) -> np.ndarray:
    """dZ[L] = dJ/dZ[L]: (A - Y)/m for bce and softmax-ce, 2/(nL m) (A - Y) A (1 - A) for mse."""
    dZ = AL - Y
    if loss == "mse":
        dZ *= 2.0 / Y.size
        dZ *= activation_derivative(AL, "sigmoid")
    else:
        dZ /= Y.shape[1]
    return dZ


def deltas(params: Params, cache: ForwardPass, Y: np.ndarray, spec: NetworkSpec) -> dict[int, np.ndarray]:
    """dZ[l] = dJ/dZ[l] for l = L, ..., 1: dZ[L] from ``output_delta``, then
    dZ[l-1] = W[l]^T dZ[l] * g'(Z[l-1])."""
    dZ = {spec.depth: output_delta(cache.A[-1], Y, spec.loss)}
    for layer in range(spec.depth, 1, -1):
        below = np.dot(params[f"W{layer}"].T, dZ[layer])
        below *= activation_derivative(cache.A[layer - 1], spec.hidden_activation)
        dZ[layer - 1] = below
    return dZ


def backward(params: Params, cache: ForwardPass, Y: np.ndarray, spec: NetworkSpec) -> Params:
    """The gradients from the deltas: dW[l] = dZ[l] A[l-1]^T, db[l] = sum(dZ[l], axis=1), keyed
    by parameter: ``{"W1": dJ/dW1, "b1": dJ/db1, ...}``."""
    dZ = deltas(params, cache, Y, spec)
    grads: Params = {}
    for layer in range(1, spec.depth + 1):
        grads[f"W{layer}"] = np.dot(dZ[layer], cache.A[layer - 1].T)
        grads[f"b{layer}"] = dZ[layer].sum(axis=1, keepdims=True)
    return grads


def initial_params(spec: NetworkSpec, init: str = "seed", seed: int | None = None, dtype: str = "float64") -> Params:
    """Initial W and b (b = 0) in layer order, W drawn as ``init`` says:

    - ``seed``: the document's ``inital_params``: legacy RNG seeded with 2 (or ``seed``),
      ``W[l] = randn(n_l, n_{l-1}) * 0.01`` for each layer in order;
    - ``xavier``: ``W[l] ~ N(0, 1) * sqrt(1 / n_{l-1})``;
    - ``he``: ``W[l] ~ N(0, 1) * sqrt(2 / n_{l-1})``;
    - ``glorot-uniform``: ``W[l] ~ U(-r, r)`` with ``r = sqrt(6 / (n_{l-1} + n_l))`` (Keras's
      default and the document's ``xavier_initializer``).

    ``xavier``, ``he`` and ``glorot-uniform`` draw from ``numpy.random.default_rng(seed)`` (seed 0
    when not given).
    """
    check_choice("init", init, INITS)
    if init == "seed":
        legacy = np.random.RandomState(2 if seed is None else seed)
        draw = lambda shape: legacy.randn(*shape) * 0.01  # noqa: E731 - the document's fixed scale
    elif init == "glorot-uniform":
        generator = np.random.default_rng(0 if seed is None else seed)
        draw = lambda shape: generator.uniform(-1, 1, shape) * np.sqrt(6 / sum(shape))  # noqa: E731
    else:
        generator = np.random.default_rng(0 if seed is None else seed)
        gain = 1.0 if init == "xavier" else 2.0
        draw = lambda shape: generator.standard_normal(shape) * np.sqrt(gain / shape[1])  # noqa: E731
    params: Params = {}
    for name, shape in spec.param_shapes().items():
        params[name] = np.zeros(shape, dtype=dtype) if name.startswith("b") else draw(shape).astype(dtype)
    return params


def cost_and_gradients(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> tuple[float, Params, ForwardPass]:
    """One forward and backward pass: (J, gradients keyed W1, b1, ..., the forward cache)."""
    cache = forward(params, X, spec)
    J = cost(cache.ZL, cache.A[-1], Y, spec.loss)
    return J, backward(params, cache, Y, spec), cache


@dataclass
class TrainingResult:
    """What ``train`` returns: the cost of every step, taken on that step's batch before its
    update, the size of each step's batch, and the trained parameters."""

    costs: list[float]
    params: Params = field(repr=False)
    batch_sizes: list[int] = field(default_factory=list)


def train(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec, training: Training) -> TrainingResult:
    """Mini-batch training from a copy of ``params``: for each batch of ``training.batches(m)``,
    J and the gradients on that batch (averaged over its own size), then the optimizer's step
    (``core.optimizers``)."""
    check_params(spec, params)
    params = {name: value.copy() for name, value in params.items()}
    state = OptimizerState.zeros(params)
    costs, sizes = [], []
    for batch in training.batches(X.shape[1]):
        J, grads, _cache = cost_and_gradients(params, X[:, batch], Y[:, batch], spec)
        costs.append(J)
        sizes.append(batch_size(batch, X.shape[1]))
        optimizers.step(params, grads, state, training)
    return TrainingResult(costs, params, sizes)


def model(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec, learning_rate: float,
          iterations: int) -> TrainingResult:
    """Full-batch gradient descent as the document's ``model()``: ``iterations`` steps from a
    copy of ``params``, keeping J before each update."""
    check_training(learning_rate, iterations)
    return train(params, X, Y, spec, Training("sgd", learning_rate, epochs=iterations))


def check_training(learning_rate: float, iterations: int) -> None:
    """Raise unless the learning rate is positive and finite and iterations a positive integer."""
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise GradparityError(f"learning rate must be a positive number, got {learning_rate}")
    if int(iterations) != iterations or iterations < 1:
        raise GradparityError(f"iterations must be a positive integer, got {iterations}")


def predict(params: Params, X: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """Predicted labels: ``A[L] > 0.5`` for one sigmoid output, the arg-max row one-hot otherwise."""
    AL = forward(params, X, spec).A[-1]
    if AL.shape[0] == 1:
        return (AL > 0.5).astype(AL.dtype)
    return (AL == AL.max(axis=0, keepdims=True)).astype(AL.dtype)


def evaluate(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> float:
    """Accuracy in percent: the share of examples whose every output label is predicted right."""
    predictions = predict(params, X, spec)
    return float(np.mean(np.all(predictions == np.round(Y), axis=0)) * 100.0)
