"""HIPS autograd behind the gradparity contract: the reference network written in
``autograd.numpy`` as autograd's own examples write one (``np.maximum(0, x)`` for ReLU,
``logsumexp`` for the log-softmax, ``np.logaddexp(0, z)`` for the softplus), differentiated by
``autograd.value_and_grad``.

Second order along the case's direction V, three ways: ``jvp`` pushes V forward through the
network (``autograd.make_jvp``) for J̇ and the tangents Ȧ[l]; ``fwd-over-rev`` is the JVP of
``autograd.grad(J)`` along V and ``rev-over-rev`` the VJP of ``autograd.grad(J)`` with V
(``autograd.make_hvp``; H is symmetric), both H V.

The optimizers are written on the gradients, in ``autograd.numpy``, as the reference writes
them (``core.optimizers``): sgd, momentum (v = mu v + g, W -= lr v) and Adam's Algorithm 1.
``autograd.misc.optimizers`` has no such momentum (its ``sgd`` keeps v = mass v - (1 - mass) g
and adds step_size v), and its ``adam``, Algorithm 1 on the flattened parameters, starts its
moments as float64 zeros, so it turns float32 parameters into float64 ones at its first step.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Callable

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.builtins import list as alist, tuple as atuple
from autograd.scipy.special import logsumexp

from gradparity.backends.contract import (Evaluation, Primitives, SecondOrder, Trajectory, differentiable_ops,
                                          second_order_ops)
from gradparity.backends.layout import check_device, dtype_name, step_batches
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.optimizers import Training

Arrays = dict[str, np.ndarray]

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda Z: 1 / (1 + anp.exp(-Z)),
    "tanh": anp.tanh,
    "relu": lambda Z: anp.maximum(Z, 0.0),
    "softmax": lambda Z: anp.exp(Z - logsumexp(Z, axis=0, keepdims=True)),
}

GRADIENT = "out = autograd.grad(lambda t: anp.sum({f}))(tx)"
# H(tx) tx of sum({f}) as ``fwd-over-rev`` computes H V: the JVP of the gradient along tx
HVP = "out = autograd.make_jvp(autograd.grad(lambda t: anp.sum({f})))(tx)(tx)[1]"
# the activations of ``ACTIVATIONS`` and the losses of ``cost`` (over the logits, or the output for mse)
DIFFERENTIABLE = {
    "sigmoid": "1 / (1 + anp.exp(-{x}))", "tanh": "anp.tanh({x})", "relu": "anp.maximum({x}, 0.0)",
    "bce": "anp.sum(anp.logaddexp(0.0, {x}) - ty * {x}) / {x}.shape[1]",
    "softmax_ce": "-anp.sum(ty * ({x} - logsumexp({x}, axis=0, keepdims=True))) / {x}.shape[1]",
    "mse": "anp.mean(({x} - ty) ** 2)",
}
PREAMBLE = """import autograd
import autograd.numpy as anp
from autograd.scipy.special import logsumexp"""
PRIMITIVES = Primitives(PREAMBLE, "anp.asarray({array}, dtype=anp.{dtype})", "out", {
    "matmul": "out = tx @ ty",
    "add": "out = tx + ty",
    "softmax": "out = anp.exp(tx - logsumexp(tx, axis=0, keepdims=True))",
    "transpose_matmul": "out = tx.T @ ty",
    "sum": "out = anp.sum(tx, axis=1, keepdims=True)",
    "log": "out = anp.log(tx)",
    "mean": "out = anp.mean(tx)",
    "cast_scalar": "out = s * anp.ones((), dtype=anp.{dtype})",
    **differentiable_ops(GRADIENT, DIFFERENTIABLE),
    **second_order_ops(HVP, DIFFERENTIABLE),
})


def forward(params: Arrays, X: np.ndarray, spec: NetworkSpec) -> tuple[list[np.ndarray], np.ndarray]:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]); returns ``[A1, ..., AL]`` and ZL."""
    activations, A, Z = [], X, X
    for layer in range(1, spec.depth + 1):
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]
        A = ACTIVATIONS[spec.activation(layer)](Z)
        activations.append(A)
    return activations, Z


def cost(ZL: np.ndarray, AL: np.ndarray, Y: np.ndarray, loss: str) -> np.ndarray:
    """J of ``core.reference.cost``: bce = sum(softplus(z) - z y) / m with softplus(z) =
    logaddexp(0, z) (the reference's max(z, 0) + log(1 + e^-|z|)); softmax-ce = -sum(Y log
    softmax(ZL)) / m with log softmax = ZL - logsumexp(ZL) over the class axis 0; mse = the mean
    of (AL - Y)^2 over nL*m."""
    m = Y.shape[1]
    if loss == "bce":
        return anp.sum(anp.logaddexp(0.0, ZL) - Y * ZL) / m
    if loss == "softmax-ce":
        return -anp.sum(Y * (ZL - logsumexp(ZL, axis=0, keepdims=True))) / m
    return anp.mean((AL - Y) ** 2)


def objective(params: Arrays, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> tuple[np.ndarray, list[np.ndarray]]:
    """(J, [A1, ..., AL]) of one forward pass."""
    activations, ZL = forward(params, X, spec)
    return cost(ZL, activations[-1], Y, spec.loss), activations


def cost_of(params: Arrays, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """J alone of ``objective``: the function ``autograd.grad`` differentiates."""
    return objective(params, X, Y, spec)[0]


value_and_gradients = autograd.value_and_grad(cost_of)


class Optimizer:
    """The reference's optimizers (``core.optimizers``) on autograd's gradients, state carried
    per parameter: sgd W -= lr g; momentum v = mu v + g, W -= lr v; adam (Algorithm 1)
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, W -= lr m^ / (sqrt(v^) + eps) with
    m^ = m / (1 - b1^t), v^ = v / (1 - b2^t)."""

    def __init__(self, training: Training, params: Arrays) -> None:
        self.training, self.t = training, 0
        self.m = {name: anp.zeros_like(value) for name, value in params.items()}
        self.v = {name: anp.zeros_like(value) for name, value in params.items()}

    def update(self, params: Arrays, grads: Arrays) -> Arrays:
        """The parameters after one step on ``grads``."""
        self.t += 1
        return {name: self.updated(name, W, grads[name]) for name, W in params.items()}

    def updated(self, name: str, W: np.ndarray, g: np.ndarray) -> np.ndarray:
        training, lr = self.training, self.training.learning_rate
        if training.optimizer == "sgd":
            return W - lr * g
        if training.optimizer == "momentum":
            self.v[name] = training.momentum * self.v[name] + g
            return W - lr * self.v[name]
        self.m[name] = training.beta1 * self.m[name] + (1 - training.beta1) * g
        self.v[name] = training.beta2 * self.v[name] + (1 - training.beta2) * g ** 2
        m_hat = self.m[name] / (1 - training.beta1 ** self.t)
        v_hat = self.v[name] / (1 - training.beta2 ** self.t)
        return W - lr * m_hat / (anp.sqrt(v_hat) + training.epsilon)


def forward_tangents(params: Arrays, direction: Arrays, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> SecondOrder:
    """``autograd.make_jvp`` of ``objective`` at the parameters along V: (J̇, [Ȧ1, ..., ȦL]).
    Its outputs go into autograd's own tuple and list, which forward mode traces through (from
    Python's, it would return zero tangents)."""
    def traced(point: Arrays) -> tuple:
        J, activations = objective(point, X, Y, spec)
        return atuple((J, alist(activations)))

    J_dot, A_dots = autograd.make_jvp(traced)(params)(direction)[1]
    return SecondOrder(cost_tangent=float(J_dot), tangents=list(A_dots), dtype_used=narrowest_dtype([J_dot, *A_dots]))


def hvp_forward_over_reverse(params: Arrays, direction: Arrays, X: np.ndarray, Y: np.ndarray,
                             spec: NetworkSpec) -> SecondOrder:
    """H V = d/dr ∇J(θ + rV) at r = 0: ``autograd.make_jvp(autograd.grad(J))`` along V."""
    gradient = autograd.grad(cost_of)
    return hvp_answer(autograd.make_jvp(gradient)(params, X, Y, spec)(direction)[1])


def hvp_reverse_over_reverse(params: Arrays, direction: Arrays, X: np.ndarray, Y: np.ndarray,
                             spec: NetworkSpec) -> SecondOrder:
    """H V = Vᵀ H (H is symmetric): ``autograd.make_hvp(J)``, the VJP of ``autograd.grad(J)``, with V."""
    vector_hessian, _gradients = autograd.make_hvp(cost_of)(params, X, Y, spec)
    return hvp_answer(vector_hessian(direction))


def hvp_answer(hvp: Arrays) -> SecondOrder:
    """H V keyed ``W1, b1, ...``, with the narrowest dtype among its arrays."""
    return SecondOrder(hvp=dict(hvp), dtype_used=narrowest_dtype(list(hvp.values())))


def narrowest_dtype(arrays: list[np.ndarray]) -> str:
    """The name of the narrowest dtype among ``arrays`` (a float32 among float64s shows)."""
    return dtype_name(min((np.asarray(array).dtype for array in arrays), key=lambda dtype: dtype.itemsize))


# mode -> (what it computes, the function computing it from params, V, X, Y and the spec)
SECOND_ORDER: dict[str, tuple[tuple[str, ...], Callable[..., SecondOrder]]] = {
    "jvp": (("tangents",), forward_tangents),
    "fwd-over-rev": (("hvp",), hvp_forward_over_reverse),
    "rev-over-rev": (("hvp",), hvp_reverse_over_reverse),
}


def parameters(case: Case) -> Arrays:
    """The case's parameters as plain ``numpy.ndarray`` copies: autograd differentiates with
    respect to that type only (a large case's arrays arrive as ``numpy.memmap``)."""
    return {name: np.array(value) for name, value in case.params.items()}


def version() -> str:
    """autograd's version (it has no ``__version__``) and NumPy's, which computes every array."""
    return f"autograd {importlib.metadata.version('autograd')} (numpy {np.__version__})"


class Adapter:
    """``autograd.value_and_grad`` on the reference network in ``autograd.numpy``, the
    optimizers of ``Optimizer`` on its gradients, the second-order modes of ``SECOND_ORDER``."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam", "adam-hat": "adam"}
    second_order_modes = {mode: computes for mode, (computes, _function) in SECOND_ORDER.items()}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        if check_device(device) != "cpu":
            raise GradparityError("cuda requested but autograd runs on NumPy, on the CPU only")

    def version(self) -> str:
        return version()

    def compile_seconds(self) -> float:
        """autograd traces every call afresh and compiles nothing."""
        return 0.0

    def flags(self) -> dict[str, str]:
        """The BLAS NumPy was built with: it sums autograd's matrix products."""
        blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
        return {"blas": f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()}

    def evaluate(self, case: Case) -> Evaluation:
        """J and its gradients by ``autograd.value_and_grad``; the activations of the same
        ``forward``, untraced."""
        params = parameters(case)
        J, grads = value_and_gradients(params, case.X, case.Y, case.spec)
        activations, _ZL = forward(params, case.X, case.spec)
        return Evaluation(float(J), dict(grads), activations, narrowest_dtype(list(grads.values())))

    def train(self, case: Case) -> Trajectory:
        """``Optimizer`` on each of the case's batches in order, J recorded before each update."""
        params, costs = parameters(case), []
        optimizer = Optimizer(case.training, params)
        for X, Y in step_batches(case, lambda array: array):
            J, grads = value_and_gradients(params, X, Y, case.spec)
            costs.append(float(J))
            params = optimizer.update(params, grads)
        return Trajectory(costs, params, narrowest_dtype(list(params.values())))

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode`` of ``SECOND_ORDER`` at the case's parameters along ``case.direction``."""
        if mode not in SECOND_ORDER:
            raise GradparityError(f"unknown second-order mode {mode!r}; choose one of {', '.join(SECOND_ORDER)}")
        return SECOND_ORDER[mode][1](parameters(case), case.along(), case.X, case.Y, case.spec)

    def primitives(self) -> Primitives:
        """The operations of ``forward`` and ``cost``, as source (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": None, "compiled": "autograd has no compiler"}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One training step (gradients by ``autograd.value_and_grad``, then ``Optimizer``) on
        the full batch, from a private copy of the parameters."""
        if mode != "eager":
            raise GradparityError(f"autograd cannot time mode {mode!r}: {self.bench_modes().get(mode, 'unknown mode')}")
        state = {"params": parameters(case)}
        optimizer = Optimizer(case.training, state["params"])

        def step() -> None:
            _J, grads = value_and_gradients(state["params"], case.X, case.Y, case.spec)
            state["params"] = optimizer.update(state["params"], grads)

        return step
