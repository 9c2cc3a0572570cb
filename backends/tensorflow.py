"""TensorFlow behind the contract: ``tf.GradientTape`` for the gradients, a training step that
applies them with the document's own TF1 optimizers (``tf.compat.v1.train``) to ``tf.Variable``
parameters: a ``tf.function`` for a case of more than ``EAGER_STEPS`` steps, eager below.

``GradientDescentOptimizer``; ``MomentumOptimizer`` (accum = mu accum + g, var -= lr accum: the
reference's momentum); ``AdamOptimizer`` (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), var -= lr_t m /
(sqrt(v) + eps): Kingma & Ba's efficient form, ``adam-hat``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

import tensorflow as tf
from tensorflow.python.framework import config as tf_framework_config  # no public getter for determinism

from gradparity.backends.contract import Evaluation, Primitives, Trajectory, differentiable_ops
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
    axis 0, summed / m; mse = mean((AL - Y)^2) over nL*m."""
    m = Y.shape[1]
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


class Adapter:
    """``tf.GradientTape`` and a ``tf.function`` step of a TF1 optimizer on the reference network."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam-hat", "adam-hat": "adam-hat"}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        self.device = select_device(device, allow_tf32)

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
