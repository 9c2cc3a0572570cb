"""TensorFlow behind the contract: ``tf.GradientTape`` for the gradients, a training step that
applies them with the document's own TF1 optimizers (``tf.compat.v1.train``) to ``tf.Variable``
parameters: a ``tf.function`` for a case of more than ``EAGER_STEPS`` steps, eager below.
Second order along a direction V: ``tf.autodiff.ForwardAccumulator`` for J̇ and the tangents
Ȧ[l], the same accumulator around a ``GradientTape`` for H V (forward over reverse), both as a
``tf.function`` per network structure; nested tapes (reverse over reverse), eagerly.

``GradientDescentOptimizer``; ``MomentumOptimizer`` (accum = mu accum + g, var -= lr accum: the
reference's momentum); ``AdamOptimizer`` (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), var -= lr_t m /
(sqrt(v) + eps): Kingma & Ba's efficient form, ``adam-hat``).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Callable

import tensorflow as tf
from tensorflow.python.framework import config as tf_framework_config  # no public getter for determinism

from gradparity.backends.contract import (Evaluation, Primitives, SecondOrder, Trajectory, differentiable_ops,
                                          second_order_ops)
from gradparity.backends.layout import check_device, dtype_name, no_gpu, step_batches
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.optimizers import Training

Variables = dict[str, tf.Variable]
# Tracing a step into a tf.function costs more than a short case's eager steps of the catalogue's
# small networks, so a case of at most this many steps trains eagerly (the threshold's figures:
# docs/explanation/performance.md).
EAGER_STEPS = 24

ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "softmax": lambda Z: tf.nn.softmax(Z, axis=0),
}

GRADIENT = """t = tf.Variable(tx)
with tf.GradientTape() as tape:
    total = tf.reduce_sum({f})
out = tape.gradient(total, t)"""
# H(tx) tx of sum(f) as ``fwd-over-rev`` computes H V: the accumulator's JVP of the tape's gradient
HVP = """t = tf.Variable(tx)
with tf.autodiff.ForwardAccumulator(t, tx) as accumulator:
    with tf.GradientTape() as tape:
        total = tf.reduce_sum({f})
    grad = tape.gradient(total, t)
out = accumulator.jvp(grad)"""
# the activations of ``ACTIVATIONS`` and the losses of ``cost`` (over the logits, or the output for mse)
DIFFERENTIABLE = {
    "sigmoid": "tf.sigmoid({x})", "tanh": "tf.tanh({x})", "relu": "tf.nn.relu({x})",
    "bce": "tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=ty, logits={x})) / {x}.shape[1]",
    "softmax_ce": "tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=ty, logits={x}, axis=0)) / {x}.shape[1]",
    "mse": "tf.reduce_mean(tf.square({x} - ty))",
}
PREAMBLE = "import tensorflow as tf"
PRIMITIVES = Primitives(PREAMBLE, "tf.constant({array}, dtype=tf.{dtype})", "out.numpy()", {
    "matmul": "out = tf.matmul(tx, ty)",
    "add": "out = tx + ty",
    "softmax": "out = tf.nn.softmax(tx, axis=0)",
    "transpose_matmul": "out = tf.matmul(tx, ty, transpose_a=True)",
    "sum": "out = tf.reduce_sum(tx, axis=1, keepdims=True)",
    "log": "out = tf.math.log(tx)",
    "mean": "out = tf.reduce_mean(tx)",
    "cast_scalar": "out = s * tf.ones((), dtype=tf.{dtype})",
    **differentiable_ops(GRADIENT, DIFFERENTIABLE),
    **second_order_ops(HVP, DIFFERENTIABLE),
})


def select_device(device: str, allow_tf32: bool) -> str:
    """The TF device name for ``cpu``/``cuda``; on cuda TF32 execution is switched off unless allowed."""
    if check_device(device) == "cpu":
        return "/CPU:0"
    if not tf.config.list_physical_devices("GPU"):
        raise no_gpu("tensorflow")
    tf.config.experimental.enable_tensor_float_32_execution(allow_tf32)
    return "/GPU:0"


def compile_seconds() -> float | None:
    """Seconds ``tf.function`` has spent building graphs in this process, from TensorFlow's own
    counter ``/tensorflow/core/tf_function/graph_building_time_usecs``; None where this
    TensorFlow does not keep it."""
    try:
        from tensorflow.python.eager.polymorphic_function import tracing_compilation
        return tracing_compilation._graph_building_time_counter.get_cell().value() / 1e6
    except (ImportError, AttributeError):
        return None


def flags() -> dict[str, str]:
    """oneDNN (on by default on x86 Linux), TF32 execution, op determinism, thread pools."""
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow default)"),
        "tensor_float_32_execution": str(tf.config.experimental.tensor_float_32_execution_enabled()),
        "op_determinism": str(tf_framework_config.is_op_determinism_enabled()),
        "intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
        "inter_op_threads": str(tf.config.threading.get_inter_op_parallelism_threads()),
    }


def forward(params: Variables, X: tf.Tensor, spec: NetworkSpec) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]); returns ``[A1, ..., AL]`` and ZL."""
    activations, A, Z = [], X, X
    for layer in range(1, spec.depth + 1):
        Z = tf.matmul(params[f"W{layer}"], A) + params[f"b{layer}"]
        A = ACTIVATIONS[spec.activation(layer)](Z)
        activations.append(A)
    return activations, Z


def cost(ZL: tf.Tensor, AL: tf.Tensor, Y: tf.Tensor, loss: str) -> tf.Tensor:
    """J of ``core.reference.cost`` from TF's stable losses: bce = sigmoid_cross_entropy_with_logits
    summed over all nL*m outputs / m; softmax-ce = softmax_cross_entropy_with_logits over the class
    axis 0, summed / m; mse = mean((AL - Y)^2) over nL*m. m is read from Y's shape when the
    program runs (a second-order program is traced for any m); as a tensor of J's dtype it
    divides exactly as the Python int would."""
    m = tf.cast(tf.shape(Y)[1], ZL.dtype)
    if loss == "bce":
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=ZL)) / m
    if loss == "softmax-ce":
        return tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=ZL, axis=0)) / m
    return tf.reduce_mean(tf.square(AL - Y))


def optimizer(training: Training, dtype: str) -> tf.compat.v1.train.Optimizer:
    """The TF1 optimizer of ``training``, its hyper-parameters given as tensors of ``dtype``.
    Given Python floats, TF1's optimizers turn them into float32 tensors (and keep Adam's b^t
    in float32 variables), so a float64 run would take steps with float32-rounded lr and b:
    measured in float64, tf-document then ends 1.8e-6 relative away from the reference in its
    parameters (keras-document 6.1e-8, momentum 1.5e-7) instead of 6e-14."""
    hyper = lambda value: tf.constant(value, dtype=dtype)  # noqa: E731
    learning_rate = hyper(training.learning_rate)
    if training.optimizer == "sgd":
        return tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    if training.optimizer == "momentum":
        return tf.compat.v1.train.MomentumOptimizer(learning_rate, hyper(training.momentum))
    return tf.compat.v1.train.AdamOptimizer(learning_rate, beta1=hyper(training.beta1), beta2=hyper(training.beta2),
                                            epsilon=hyper(training.epsilon))


def training_step(variables: Variables, spec: NetworkSpec,
                  optimizer: tf.compat.v1.train.Optimizer) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """A step (X, Y) -> J: J under a GradientTape, then ``optimizer.apply_gradients``; J is
    taken before the update."""

    def step(X: tf.Tensor, Y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            activations, ZL = forward(variables, X, spec)
            J = cost(ZL, activations[-1], Y, spec.loss)
        grads = tape.gradient(J, variables)
        optimizer.apply_gradients([(grads[name], variable) for name, variable in variables.items()])
        return J

    return step


Tensors = list[tf.Tensor]


def accumulated_tangents(params: Tensors, direction: Tensors, X: tf.Tensor, Y: tf.Tensor,
                         spec: NetworkSpec) -> tuple[tf.Tensor, Tensors]:
    """``forward-accumulator``: ``forward`` and ``cost`` under a ``tf.autodiff.ForwardAccumulator``
    whose tangents are V; J̇ and ``[Ȧ1, ..., ȦL]`` are its ``jvp`` of J and of each A[l]."""
    with tf.autodiff.ForwardAccumulator(params, direction) as accumulator:
        activations, ZL = forward(named(params, spec), X, spec)
        J = cost(ZL, activations[-1], Y, spec.loss)
    return accumulator.jvp(J), [accumulator.jvp(A) for A in activations]


def forward_over_reverse(params: Tensors, direction: Tensors, X: tf.Tensor, Y: tf.Tensor,
                         spec: NetworkSpec) -> Tensors:
    """``fwd-over-rev``: the ForwardAccumulator (tangents V) around a GradientTape; H V is the
    accumulator's ``jvp`` of the tape's gradient, which is taken inside it."""
    with tf.autodiff.ForwardAccumulator(params, direction) as accumulator:
        with tf.GradientTape() as tape:
            tape.watch(params)
            activations, ZL = forward(named(params, spec), X, spec)
            J = cost(ZL, activations[-1], Y, spec.loss)
        grads = tape.gradient(J, params)
    return [accumulator.jvp(grad) for grad in grads]


def reverse_over_reverse(params: Tensors, direction: Tensors, X: tf.Tensor, Y: tf.Tensor,
                         spec: NetworkSpec) -> Tensors:
    """``rev-over-rev``: nested GradientTapes; the inner one's gradient g is taken inside the
    outer one, and H V = d<g, V>/dθ is the outer tape's gradient of the scalar <g, V>."""
    with tf.GradientTape() as outer:
        outer.watch(params)
        with tf.GradientTape() as inner:
            inner.watch(params)
            activations, ZL = forward(named(params, spec), X, spec)
            J = cost(ZL, activations[-1], Y, spec.loss)
        grads = inner.gradient(J, params)
        along = tf.add_n([tf.reduce_sum(grad * v) for grad, v in zip(grads, direction)])
    return outer.gradient(along, params)


def named(params: Tensors, spec: NetworkSpec) -> dict[str, tf.Tensor]:
    """``[W1, b1, ...]`` keyed by name, as ``forward`` takes them."""
    return dict(zip(spec.param_shapes(), params))


SECOND_ORDER: dict[str, Callable[..., tf.Tensor | Tensors | tuple[tf.Tensor, Tensors]]] = {
    "forward-accumulator": accumulated_tangents, "fwd-over-rev": forward_over_reverse,
    "rev-over-rev": reverse_over_reverse,
}
# A ForwardAccumulator's JVP of each op is a tf.function that TensorFlow traces for the op's exact
# input shapes (the first 32 shapes of each op): run eagerly, every case of new shapes pays for
# tracing them, several times what its computation costs. These modes run as one tf.function per
# network structure with every dimension open, so the op JVPs are traced once for open shapes and
# each case after the first of its structure reuses the program. Nested tapes trace nothing: eager.
TRACED_MODES = ("forward-accumulator", "fwd-over-rev")


def second_order_program(mode: str, spec: NetworkSpec, dtype: str) -> Callable[..., Any]:
    """Mode ``mode`` of ``SECOND_ORDER`` for networks of ``spec``'s structure, as a function of
    ``(params, direction, X, Y)``: a ``tf.function`` over matrices of any shape in ``dtype`` for
    ``TRACED_MODES``, the eager function otherwise."""
    program = functools.partial(SECOND_ORDER[mode], spec=spec)
    if mode not in TRACED_MODES:
        return program
    matrix = tf.TensorSpec([None, None], dtype)
    parameters = [matrix] * (2 * spec.depth)
    return tf.function(program, input_signature=[parameters, parameters, matrix, matrix])


def structure(spec: NetworkSpec) -> tuple[int, str | None, str]:
    """What a second-order program depends on: depth, hidden activation (none for one layer), loss."""
    return spec.depth, spec.hidden_activation if spec.depth > 1 else None, spec.loss


def computed_dtype(tensors: Tensors) -> str:
    """The dtype the tensors were computed in: the first one's, unless another differs from it."""
    names = [dtype_name(tensor.dtype) for tensor in tensors]
    return next((name for name in names if name != names[0]), names[0])


class Adapter:
    """``tf.GradientTape`` and a ``tf.function`` step of a TF1 optimizer on the reference network."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam-hat", "adam-hat": "adam-hat"}
    second_order_modes = {"forward-accumulator": ("tangents",), "fwd-over-rev": ("hvp",), "rev-over-rev": ("hvp",)}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        self.device = select_device(device, allow_tf32)
        self.programs: dict[tuple, Callable[..., Any]] = {}  # second order: (mode, dtype, structure) -> program

    def version(self) -> str:
        return f"tensorflow {tf.__version__}"

    def compile_seconds(self) -> float | None:
        return compile_seconds()

    def flags(self) -> dict[str, str]:
        return flags()

    def _placed(self, case: Case) -> tuple[Variables, tf.Tensor, tf.Tensor]:
        """Parameters as tf.Variables, X and Y as constants, on the device (call inside ``tf.device``)."""
        variables = {name: tf.Variable(value, name=name) for name, value in case.params.items()}
        return variables, tf.constant(case.X), tf.constant(case.Y)

    def evaluate(self, case: Case) -> Evaluation:
        """J and ``[A1, ..., AL]`` under a GradientTape, then ``tape.gradient(J, variables)``."""
        with tf.device(self.device):
            variables, X, Y = self._placed(case)
            with tf.GradientTape() as tape:
                activations, ZL = forward(variables, X, case.spec)
                J = cost(ZL, activations[-1], Y, case.spec.loss)
            grads = tape.gradient(J, variables)
        return Evaluation(
            float(J), {name: grad.numpy() for name, grad in grads.items()},
            [A.numpy() for A in activations], dtype_name(grads["W1"].dtype),
        )

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode`` of ``SECOND_ORDER`` along V = ``case.direction``, by its program for the
        case's network structure (``second_order_program``, kept for the next case)."""
        if mode not in SECOND_ORDER:
            raise GradparityError(f"unknown second-order mode {mode!r}; choose {', '.join(SECOND_ORDER)}")
        key = (mode, case.dtype, structure(case.spec))
        if key not in self.programs:
            self.programs[key] = second_order_program(mode, case.spec, case.dtype)
        names = list(case.spec.param_shapes())
        with tf.device(self.device):
            params = [tf.constant(case.params[name]) for name in names]
            direction = [tf.constant(case.along()[name]) for name in names]
            answer = self.programs[key](params, direction, tf.constant(case.X), tf.constant(case.Y))
        if mode == "forward-accumulator":
            Jdot, tangents = answer
            return SecondOrder(cost_tangent=float(Jdot), tangents=[Adot.numpy() for Adot in tangents],
                               dtype_used=computed_dtype([Jdot, *tangents]))
        return SecondOrder(hvp={name: value.numpy() for name, value in zip(names, answer)},
                           dtype_used=computed_dtype(answer))

    def train(self, case: Case) -> Trajectory:
        """``training_step`` on each of the case's batches in order, as one ``tf.function`` when
        the case takes more than ``EAGER_STEPS`` steps, else eagerly."""
        with tf.device(self.device):
            variables, _X, _Y = self._placed(case)
            step = training_step(variables, case.spec, optimizer(case.training, case.dtype))
            step = tf.function(step) if case.steps > EAGER_STEPS else step
            costs = [step(X, Y) for X, Y in step_batches(case, tf.constant)]
        return Trajectory(
            [float(J) for J in costs], {name: variable.numpy() for name, variable in variables.items()},
            dtype_name(variables["W1"].dtype),
        )

    def primitives(self) -> Primitives:
        """The operations of ``forward``, ``cost`` and the update step, as source (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": None, "compiled": None}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One training step, eagerly or as a ``tf.function`` graph; reading W1 back to the host
        blocks until the step's updates have run."""
        if mode not in ("eager", "compiled"):
            raise GradparityError(f"unknown bench mode {mode!r}; choose eager or compiled")
        with tf.device(self.device):
            variables, X, Y = self._placed(case)
            step = training_step(variables, case.spec, optimizer(case.training, case.dtype))
        if mode == "compiled":
            step = tf.function(step)

        def timed() -> None:
            with tf.device(self.device):
                step(X, Y)
            variables["W1"].numpy()

        return timed
