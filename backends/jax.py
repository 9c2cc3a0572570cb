"""JAX behind the contract: ``jax.value_and_grad`` for the gradients, a jitted update for training.

float64 needs ``jax_enable_x64``; the registry sets ``JAX_ENABLE_X64=1`` before the import.
Without it JAX silently computes float32, which ``dtype_used`` then shows.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradparity.backends.contract import Evaluation, Primitives, Trajectory, differentiable_ops
from gradparity.backends.layout import check_device, dtype_name, no_gpu
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec

if TYPE_CHECKING:
    from gradparity.core.cases import Case

Arrays = dict[str, jax.Array]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softmax": lambda Z: jax.nn.softmax(Z, axis=0),
}

GRADIENT = "out = jax.grad(lambda t: jnp.sum({f}))(tx)"
# the activations of ``ACTIVATIONS`` and the losses of ``cost`` (over the logits, or the output for mse)
DIFFERENTIABLE = {
    "sigmoid": "jax.nn.sigmoid({x})", "tanh": "jnp.tanh({x})", "relu": "jax.nn.relu({x})",
    "bce": "jnp.sum(jax.nn.softplus({x}) - {x} * ty) / {x}.shape[1]",
    "softmax_ce": "-jnp.sum(ty * jax.nn.log_softmax({x}, axis=0)) / {x}.shape[1]",
    "mse": "jnp.mean(jnp.square({x} - ty))",
}
PREAMBLE = """import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp"""
PRIMITIVES = Primitives(PREAMBLE, "jnp.asarray({array}, dtype=jnp.{dtype})", "out", {
    "matmul": "out = tx @ ty",
    "add": "out = tx + ty",
    "softmax": "out = jax.nn.softmax(tx, axis=0)",
    "transpose_matmul": "out = tx.T @ ty",
    "sum": "out = jnp.sum(tx, axis=1, keepdims=True)",
    "log": "out = jnp.log(tx)",
    "mean": "out = jnp.mean(tx)",
    "cast_scalar": "out = s * jnp.ones((), dtype=jnp.{dtype})",
    **differentiable_ops(GRADIENT, DIFFERENTIABLE),
})


def select_device(device: str, allow_tf32: bool) -> jax.Device:
    """The JAX device for ``cpu``/``cuda``; on cuda matmuls run at ``highest`` precision
    (no TF32) unless allowed."""
    if check_device(device) == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        raise no_gpu("jax") from None
    if not allow_tf32:
        jax.config.update("jax_default_matmul_precision", "highest")
    return gpu


def flags() -> dict[str, str]:
    """x64 and the default matmul precision (``None`` = the platform's default)."""
    return {
        "jax_enable_x64": str(jax.config.jax_enable_x64),
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "default_backend": jax.default_backend(),
    }


def forward(params: Arrays, X: jax.Array, spec: NetworkSpec) -> tuple[list[jax.Array], jax.Array]:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]); returns ``[A1, ..., AL]`` and ZL."""
    activations, A, Z = [], X, X
    for layer in range(1, spec.depth + 1):
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]
        A = ACTIVATIONS[spec.activation(layer)](Z)
        activations.append(A)
    return activations, Z


def cost(ZL: jax.Array, AL: jax.Array, Y: jax.Array, loss: str) -> jax.Array:
    """J of ``core.reference.cost`` (JAX has no loss library without optax):
    bce = 1/m sum(softplus(z) - z y), softmax-ce = -1/m sum(y log_softmax(z)),
    mse = mean((AL - Y)^2) over nL*m. ``jax.nn.softplus`` (a ``logaddexp``) has the right
    derivative at z = 0; written as max(z, 0) + log1p(e^-|z|), autodiff takes the derivatives
    of max and |.| at 0 as 1/2 and 1 and gets sigmoid(0) - y off by 1/2 there."""
    m = Y.shape[1]
    if loss == "bce":
        return jnp.sum(jax.nn.softplus(ZL) - ZL * Y) / m
    if loss == "softmax-ce":
        return -jnp.sum(Y * jax.nn.log_softmax(ZL, axis=0)) / m
    return jnp.mean(jnp.square(AL - Y))


def objective(params: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> tuple[jax.Array, list[jax.Array]]:
    """(J, [A1, ..., AL]) of one forward pass; differentiated with ``has_aux``."""
    activations, ZL = forward(params, X, spec)
    return cost(ZL, activations[-1], Y, spec.loss), activations


def gradient_step(spec: NetworkSpec, learning_rate: float) -> Callable[[Arrays, jax.Array, jax.Array], tuple[jax.Array, Arrays]]:
    """params -> (J, params - lr dJ/dparams): one gradient-descent step, J before the update."""
    value_and_grad = jax.value_and_grad(partial(objective, spec=spec), has_aux=True)

    def step(params: Arrays, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, Arrays]:
        (J, _activations), grads = value_and_grad(params, X, Y)
        return J, jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)

    return step


class Adapter:
    """``jax.value_and_grad`` and a jitted gradient-descent step on the reference network."""

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        self.device = select_device(device, allow_tf32)

    def version(self) -> str:
        return f"jax {jax.__version__} (jaxlib {jax.lib.__version__})"

    def flags(self) -> dict[str, str]:
        return flags()

    def _arrays(self, case: Case) -> tuple[Arrays, jax.Array, jax.Array]:
        """Parameters, X and Y placed on the device (float64 only when x64 is on)."""
        put = lambda array: jax.device_put(array, self.device)  # noqa: E731
        return {name: put(value) for name, value in case.params.items()}, put(case.X), put(case.Y)

    def evaluate(self, case: Case) -> Evaluation:
        """``jax.value_and_grad(objective, has_aux=True)`` compiled as one ``jax.jit`` program
        (op by op, JAX would compile every primitive for every new shape)."""
        params, X, Y = self._arrays(case)
        value_and_grad = jax.jit(jax.value_and_grad(partial(objective, spec=case.spec), has_aux=True))
        (J, activations), grads = value_and_grad(params, X, Y)
        return Evaluation(
            float(J), {name: np.asarray(grad) for name, grad in grads.items()},
            [np.asarray(A) for A in activations], dtype_name(grads["W1"].dtype),
        )

    def train(self, case: Case) -> Trajectory:
        """``case.steps`` calls of the jitted ``gradient_step``."""
        params, X, Y = self._arrays(case)
        step = jax.jit(gradient_step(case.spec, case.learning_rate))
        costs = []
        for _ in range(case.steps):
            J, params = step(params, X, Y)
            costs.append(J)
        return Trajectory(
            [float(J) for J in costs], {name: np.asarray(value) for name, value in params.items()},
            dtype_name(params["W1"].dtype),
        )

    def primitives(self) -> Primitives:
        """The operations of ``forward``, ``cost`` and the update step, as source (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": None, "compiled": None}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One gradient step, op by op (``eager``) or as one ``jax.jit`` program (``compiled``),
        blocking until the new parameters are ready."""
        if mode not in ("eager", "compiled"):
            raise GradparityError(f"unknown bench mode {mode!r}; choose eager or compiled")
        state = dict(zip(("params", "X", "Y"), self._arrays(case)))
        step = gradient_step(case.spec, case.learning_rate)
        if mode == "compiled":
            step = jax.jit(step)

        def timed() -> None:
            _J, state["params"] = step(state["params"], state["X"], state["Y"])
            jax.block_until_ready(state["params"])

        return timed
