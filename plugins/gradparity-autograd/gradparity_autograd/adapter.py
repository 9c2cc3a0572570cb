"""HIPS autograd behind the gradparity contract: the reference network written in
``autograd.numpy`` as autograd's own examples write one (``np.maximum(z, 0)`` for ReLU,
``logsumexp`` for the log-softmax, ``np.logaddexp(0, z)`` for the softplus), differentiated by
``autograd.value_and_grad``.

Second order along the case's direction V, three ways: ``jvp`` pushes V forward through the
network (``autograd.make_jvp``) for J̇ and the tangents Ȧ[l]; ``fwd-over-rev`` is the JVP of
``autograd.grad(J)`` along V and ``rev-over-rev`` the VJP of ``autograd.grad(J)`` with V
(``autograd.make_hvp``; H is symmetric), both H V.

Training runs autograd's own optimizers where they have a form of the reference's
(``core.optimizers``), on a gradient function of the step number as autograd's examples call
them: ``autograd.misc.optimizers.sgd`` with mass 0 (v = -g, x = x + lr v: W -= lr g) and
``autograd.misc.optimizers.adam`` (Algorithm 1). Its ``sgd`` with a mass keeps
v = mass v - (1 - mass) g, a momentum the reference does not have, so momentum is written on
the gradients. Both optimizers flatten the parameters into one vector whose state starts as
float64 zeros, so from the first step on they keep a float64 copy of float32 parameters and
hand the gradient float32 ones: a float32 run's updates are computed in float64.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Callable

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.builtins import list as alist, tuple as atuple
from autograd.misc import optimizers
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
Gradient = Callable[[Arrays, int], Arrays]  # (parameters, step number) -> gradients

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


def sgd(gradient: Gradient, params: Arrays, training: Training, steps: int) -> Arrays:
    """``autograd.misc.optimizers.sgd`` with mass 0: v = -g, x = x + lr v, which is W -= lr g."""
    return optimizers.sgd(gradient, params, num_iters=steps, step_size=training.learning_rate, mass=0.0)


def momentum(gradient: Gradient, params: Arrays, training: Training, steps: int) -> Arrays:
    """v = mu v + g, W -= lr v, written on the gradients: autograd's ``sgd`` with mass mu keeps
    v = mu v - (1 - mu) g instead, a form the reference does not have."""
    velocity = {name: anp.zeros_like(value) for name, value in params.items()}
    for step in range(steps):
        grads = gradient(params, step)
        velocity = {name: training.momentum * velocity[name] + grads[name] for name in params}
        params = {name: params[name] - training.learning_rate * velocity[name] for name in params}
    return params


def adam(gradient: Gradient, params: Arrays, training: Training, steps: int) -> Arrays:
    """``autograd.misc.optimizers.adam``: Algorithm 1 (m^ = m / (1 - b1^t), v^ = v / (1 - b2^t),
    x = x - lr m^ / (sqrt(v^) + eps))."""
    return optimizers.adam(gradient, params, num_iters=steps, step_size=training.learning_rate, b1=training.beta1,
                           b2=training.beta2, eps=training.epsilon)


# form (``Adapter.optimizers``) -> (gradient function, parameters, training, steps) -> the parameters after the steps
OPTIMIZERS: dict[str, Callable[[Gradient, Arrays, Training, int], Arrays]] = {
    "sgd": sgd, "momentum": momentum, "adam": adam}


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
        """The optimizer of ``OPTIMIZERS`` on the case's batches in order, through a gradient
        function of the step number (autograd's optimizers' ``grad(x, i)``) that records J on
        that step's batch before the update."""
        batches, costs = list(step_batches(case, lambda array: array)), []

        def gradient(params: Arrays, step: int) -> Arrays:
            J, grads = value_and_gradients(params, *batches[step], case.spec)
            costs.append(float(J))
            return grads

        form = self.optimizers[case.training.optimizer]
        params = OPTIMIZERS[form](gradient, parameters(case), case.training, len(batches))
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
        """One training step on the full batch: the gradients by ``autograd.value_and_grad``,
        then one step of the case's optimizer (``OPTIMIZERS``), from a private copy of the
        parameters. autograd's optimizers carry their moments within one call only, so each
        timed step starts them afresh: the same work as any other step."""
        if mode != "eager":
            raise GradparityError(f"autograd cannot time mode {mode!r}: {self.bench_modes().get(mode, 'unknown mode')}")
        state, update = {"params": parameters(case)}, OPTIMIZERS[self.optimizers[case.training.optimizer]]

        def gradient(params: Arrays, _step: int) -> Arrays:
            return value_and_gradients(params, case.X, case.Y, case.spec)[1]

        def step() -> None:
            state["params"] = update(gradient, state["params"], case.training, 1)

        return step
