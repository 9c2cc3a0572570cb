"""JAX behind the contract: ``jax.value_and_grad`` for the gradients, optax for the losses and
the optimizers, one jitted program per case and batch shape that computes J, the activations
and the gradients and applies the optimizer's update: a full-batch case's evaluation and every
training step run the same compiled program.

float64 needs ``jax_enable_x64``; the registry sets ``JAX_ENABLE_X64=1`` before the import.
Without it JAX silently computes float32, which ``dtype_used`` then shows.

optax's optimizers as a JAX user writes them: ``optax.sgd(lr)``, ``optax.sgd(lr, momentum=mu)``
(``trace``: v = g + mu v, then -lr v: the reference's momentum) and ``optax.adam`` (its
``scale_by_adam`` bias-corrects m and v and adds eps to sqrt(v^): Kingma & Ba's Algorithm 1).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradparity.backends.contract import (Evaluation, Primitives, SecondOrder, Trajectory, differentiable_ops,
                                          second_order_ops)
from gradparity.backends.layout import cache_directory, check_device, dtype_name, no_gpu, step_batches
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.optimizers import Training

Arrays = dict[str, jax.Array]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softmax": lambda Z: jax.nn.softmax(Z, axis=0),
}

GRADIENT = "out = jax.grad(lambda t: jnp.sum({f}))(tx)"
# H(tx) tx as the fwd-over-rev mode computes H V: the JVP of the gradient along tx
HVP_SOURCE = "out = jax.jvp(jax.grad(lambda t: jnp.sum({f})), (tx,), (tx,))[1]"
# the activations of ``ACTIVATIONS`` and the losses of ``cost`` (over the logits, or the output for mse)
DIFFERENTIABLE = {
    "sigmoid": "jax.nn.sigmoid({x})", "tanh": "jnp.tanh({x})", "relu": "jax.nn.relu({x})",
    "bce": "jnp.sum(optax.losses.sigmoid_binary_cross_entropy({x}, ty)) / {x}.shape[1]",
    "softmax_ce": "jnp.sum(optax.losses.softmax_cross_entropy({x}, ty, axis=0)) / {x}.shape[1]",
    "mse": "jnp.mean(optax.losses.squared_error({x}, ty))",
}
PREAMBLE = """import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp"""
PRIMITIVES = Primitives(PREAMBLE + "\nimport optax", "jnp.asarray({array}, dtype=jnp.{dtype})", "out", {
    "matmul": "out = tx @ ty",
    "add": "out = tx + ty",
    "softmax": "out = jax.nn.softmax(tx, axis=0)",
    "transpose_matmul": "out = tx.T @ ty",
    "sum": "out = jnp.sum(tx, axis=1, keepdims=True)",
    "log": "out = jnp.log(tx)",
    "mean": "out = jnp.mean(tx)",
    "cast_scalar": "out = s * jnp.ones((), dtype=jnp.{dtype})",
    **differentiable_ops(GRADIENT, DIFFERENTIABLE),
    **second_order_ops(HVP_SOURCE, DIFFERENTIABLE),
})


def select_device(device: str, allow_tf32: bool) -> jax.Device:
    """The JAX device for ``cpu``/``cuda``; on cuda matmuls run at ``highest`` precision
    (no TF32) unless allowed. Compiled programs are kept between runs (``keep_compiled_programs``)."""
    keep_compiled_programs()
    if check_device(device) == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        raise no_gpu("jax") from None
    if not allow_tf32:
        jax.config.update("jax_default_matmul_precision", "highest")
    return gpu


def keep_compiled_programs() -> None:
    """JAX's persistent compilation cache in ``cache_directory("jax")`` for every program, however
    quick to compile (XLA CPU compiles every small network again on every run): a rerun loads the
    same executables instead of compiling them again, so its numbers are the same. A cache
    directory the user configured for JAX is kept; ``GRADPARITY_CACHE_DIR=off`` turns it off."""
    directory = cache_directory("jax")
    if directory is None or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


# JAX's own duration events of turning a function into a program: tracing, lowering, XLA's
# compilation (or loading the program from the persistent cache)
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compiled = {"seconds": 0.0}


def _count_compiling(event: str, seconds: float, **_details: object) -> None:
    if event in COMPILE_EVENTS:
        _compiled["seconds"] += seconds


jax.monitoring.register_event_duration_secs_listener(_count_compiling)


def compile_seconds() -> float:
    """Seconds this process has spent compiling so far: the sum of JAX's ``COMPILE_EVENTS``."""
    return _compiled["seconds"]


def flags() -> dict[str, str]:
    """x64, the default matmul precision (``None`` = the platform's default) and the directory
    of compiled programs kept between runs (``None`` = compiled afresh)."""
    return {
        "jax_enable_x64": str(jax.config.jax_enable_x64),
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "default_backend": jax.default_backend(),
        "jax_compilation_cache_dir": str(jax.config.jax_compilation_cache_dir),
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
    """J of ``core.reference.cost`` from optax's losses: bce = sigmoid_binary_cross_entropy
    (-y log_sigmoid(z) - (1 - y) log_sigmoid(-z)) summed over all nL*m outputs / m;
    softmax-ce = softmax_cross_entropy over the class axis 0, summed / m; mse = the mean of
    squared_error over nL*m."""
    m = Y.shape[1]
    if loss == "bce":
        return jnp.sum(optax.losses.sigmoid_binary_cross_entropy(ZL, Y)) / m
    if loss == "softmax-ce":
        return jnp.sum(optax.losses.softmax_cross_entropy(ZL, Y, axis=0)) / m
    return jnp.mean(optax.losses.squared_error(AL, Y))


def objective(params: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> tuple[jax.Array, list[jax.Array]]:
    """(J, [A1, ..., AL]) of one forward pass; differentiated with ``has_aux``."""
    activations, ZL = forward(params, X, spec)
    return cost(ZL, activations[-1], Y, spec.loss), activations


def optimizer(training: Training) -> optax.GradientTransformation:
    """The optax optimizer of ``training``: sgd, sgd with momentum, or adam (Algorithm 1)."""
    if training.optimizer == "sgd":
        return optax.sgd(training.learning_rate)
    if training.optimizer == "momentum":
        return optax.sgd(training.learning_rate, momentum=training.momentum)
    return optax.adam(training.learning_rate, b1=training.beta1, b2=training.beta2, eps=training.epsilon)


def value_and_update(spec: NetworkSpec, transformation: optax.GradientTransformation) -> Callable:
    """(params, state, X, Y) -> ((J, [A1, ..., AL]), grads, params, state): J, the activations
    and the gradients on the batch, then the optimizer's update applied; all before the update."""
    value_and_grad = jax.value_and_grad(partial(objective, spec=spec), has_aux=True)

    def step(params: Arrays, state: optax.OptState, X: jax.Array, Y: jax.Array) -> tuple:
        (J, activations), grads = value_and_grad(params, X, Y)
        updates, state = transformation.update(grads, state, params)
        return (J, activations), grads, optax.apply_updates(params, updates), state

    return step


def training_step(spec: NetworkSpec, transformation: optax.GradientTransformation) -> Callable:
    """(params, state, X, Y) -> (J, params, state) of ``value_and_update``: J is taken before
    the update (under ``jax.jit`` the unused outputs are not computed)."""
    step = value_and_update(spec, transformation)

    def updated(params: Arrays, state: optax.OptState, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, Arrays, optax.OptState]:
        (J, _activations), _grads, params, state = step(params, state, X, Y)
        return J, params, state

    return updated


def cost_of(params: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> jax.Array:
    """J alone of ``objective``: the function the HVP modes differentiate twice."""
    return objective(params, X, Y, spec)[0]


def forward_tangents(params: Arrays, direction: Arrays, X: jax.Array, Y: jax.Array,
                     spec: NetworkSpec) -> tuple[jax.Array, list[jax.Array]]:
    """``jax.jvp`` of ``objective`` at params along V: (J̇, [Ȧ1, ..., ȦL])."""
    _primal, (cost_tangent, tangents) = jax.jvp(partial(objective, X=X, Y=Y, spec=spec), (params,), (direction,))
    return cost_tangent, tangents


def forward_over_reverse(params: Arrays, direction: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> Arrays:
    """H V as ``jax.jvp(jax.grad(J), (params,), (V,))``: the gradient's tangent along V."""
    return jax.jvp(jax.grad(partial(cost_of, X=X, Y=Y, spec=spec)), (params,), (direction,))[1]


def reverse_over_reverse(params: Arrays, direction: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> Arrays:
    """H V as ``jax.grad(lambda p: <jax.grad(J)(p), V>)``: the gradient of the gradient's inner
    product with V."""
    gradient = jax.grad(partial(cost_of, X=X, Y=Y, spec=spec))

    def along(point: Arrays) -> jax.Array:
        grads = gradient(point)
        return sum(jnp.vdot(grads[name], direction[name]) for name in grads)

    return jax.grad(along)(params)


# mode -> (what it computes, its function)
SECOND_ORDER: dict[str, tuple[tuple[str, ...], Callable]] = {
    "jvp": (("tangents",), forward_tangents),
    "fwd-over-rev": (("hvp",), forward_over_reverse),
    "rev-over-rev": (("hvp",), reverse_over_reverse),
}


@partial(jax.jit, static_argnames="spec")
def every_mode(params: Arrays, direction: Arrays, X: jax.Array, Y: jax.Array, spec: NetworkSpec) -> dict:
    """Every mode of ``SECOND_ORDER``, each its own transformation of ``objective``, traced
    separately and compiled as one program per network and shape: XLA's fixed cost per compiled
    program (most of a small network's compile time) is paid once instead of once per mode."""
    return {mode: function(params, direction, X, Y, spec) for mode, (_computes, function) in SECOND_ORDER.items()}


class Adapter:
    """``jax.value_and_grad`` and an optax step on the reference network, one jitted program per
    case (``program_of``); the second-order modes of ``SECOND_ORDER`` on the same ``objective``."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam", "adam-hat": "adam"}
    second_order_modes = {mode: computes for mode, (computes, _program) in SECOND_ORDER.items()}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        self.device = select_device(device, allow_tf32)
        self._program: tuple[Case, optax.GradientTransformation, Callable] | None = None
        self._second_order: tuple[Case | None, dict] = (None, {})  # the last case's answers of every mode

    def version(self) -> str:
        return f"jax {jax.__version__} (jaxlib {jax.lib.__version__})"

    def flags(self) -> dict[str, str]:
        return flags()

    def compile_seconds(self) -> float:
        return compile_seconds()

    def _arrays(self, case: Case) -> tuple[Arrays, jax.Array, jax.Array]:
        """Parameters, X and Y placed on the device (float64 only when x64 is on)."""
        put = lambda array: jax.device_put(array, self.device)  # noqa: E731
        return {name: put(value) for name, value in case.params.items()}, put(case.X), put(case.Y)

    def program_of(self, case: Case) -> tuple[optax.GradientTransformation, Callable]:
        """The case's optimizer and its ``value_and_update`` under one ``jax.jit``, made once per
        case: evaluate and train share it, so a full-batch case compiles one program, not two
        (a batch of another size compiles it once more)."""
        if self._program is None or self._program[0] is not case:
            transformation = optimizer(case.training)
            self._program = (case, transformation, jax.jit(value_and_update(case.spec, transformation)))
        return self._program[1:]

    def evaluate(self, case: Case) -> Evaluation:
        """J, the activations and ``jax.value_and_grad``'s gradients from the case's compiled
        program (``program_of``; op by op, JAX would compile every primitive for every new
        shape); the update it also computes is dropped."""
        params, X, Y = self._arrays(case)
        transformation, program = self.program_of(case)
        (J, activations), grads, _params, _state = program(params, transformation.init(params), X, Y)
        return Evaluation(
            float(J), {name: np.asarray(grad) for name, grad in grads.items()},
            [np.asarray(A) for A in activations], dtype_name(grads["W1"].dtype),
        )

    def train(self, case: Case) -> Trajectory:
        """The case's compiled program (``program_of``) on each of its batches in order."""
        params, _X, _Y = self._arrays(case)
        transformation, program = self.program_of(case)
        state, costs = transformation.init(params), []
        for X, Y in step_batches(case, lambda array: jax.device_put(array, self.device)):
            (J, _activations), _grads, params, state = program(params, state, X, Y)
            costs.append(J)
        return Trajectory(
            [float(J) for J in costs], {name: np.asarray(value) for name, value in params.items()},
            dtype_name(params["W1"].dtype),
        )

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode`` of ``SECOND_ORDER`` at the case's parameters along ``case.direction``,
        from ``every_mode``'s program, run once per case (the worker asks for each mode in turn)."""
        if mode not in SECOND_ORDER:
            raise GradparityError(f"unknown second-order mode {mode!r}; choose one of {', '.join(SECOND_ORDER)}")
        if self._second_order[0] is not case:
            params, X, Y = self._arrays(case)
            direction = {name: jax.device_put(value, self.device) for name, value in case.along().items()}
            self._second_order = (case, every_mode(params, direction, X, Y, case.spec))
        answer = self._second_order[1][mode]
        if SECOND_ORDER[mode][0] == ("tangents",):
            cost_tangent, tangents = answer
            return SecondOrder(cost_tangent=float(cost_tangent), tangents=[np.asarray(A) for A in tangents],
                               dtype_used=dtype_name(tangents[-1].dtype))
        return SecondOrder(hvp={name: np.asarray(answer[name]) for name in case.spec.param_shapes()},
                           dtype_used=dtype_name(answer["W1"].dtype))

    def primitives(self) -> Primitives:
        """The operations of ``forward``, ``cost`` and the update step, as source (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": None, "compiled": None}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One training step, op by op (``eager``) or as one ``jax.jit`` program (``compiled``),
        blocking until the new parameters are ready."""
        if mode not in ("eager", "compiled"):
            raise GradparityError(f"unknown bench mode {mode!r}; choose eager or compiled")
        params, X, Y = self._arrays(case)
        transformation = optimizer(case.training)
        state = {"params": params, "optimizer": transformation.init(params)}
        step = training_step(case.spec, transformation)
        if mode == "compiled":
            step = jax.jit(step)

        def timed() -> None:
            _J, state["params"], state["optimizer"] = step(state["params"], state["optimizer"], X, Y)
            jax.block_until_ready(state["params"])

        return timed
