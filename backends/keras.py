"""Keras 3 behind the contract, on the backend ``KERAS_BACKEND`` names (the registry sets it
before the import; one backend per process).

The network is the document's Keras model: a ``keras.Sequential`` of ``Dense`` layers after a
``keras.Input``, with kernel = W.T and bias = b ravelled, and a ``keras.losses`` loss on the
output probabilities. Gradients come from the active backend's autodiff (``tf.GradientTape``,
``jax.value_and_grad`` over ``stateless_call``, torch autograd). Training is ``compile`` with
Keras's own optimizer (``keras.optimizers.SGD``, with ``momentum`` for momentum, or
``keras.optimizers.Adam``) + ``fit`` with ``shuffle=False``, fed each epoch's examples in the
reference's order so that Keras cuts exactly the reference's batches; each step's cost is read
from a metric that keeps the last batch's loss (``BatchCost``), not from Keras's running mean.
Second order differentiates the same model and weighted loss as a function of its trainable
variables (``stateless_call``, ``StatelessModel``) with the active backend's own mechanisms
(``SECOND_ORDER``).

Keras's own numerics are kept, not corrected. On the jax and torch backends its
cross-entropies clip probabilities to [epsilon, 1 - epsilon] (saturated outputs lose their
gradient), and some of its ops compute float64 inputs in float32 (found by the op probes of
``core.diagnosis``). ``dtype_used`` is the narrowest dtype among the tensors returned: measured,
so a float64 run whose numbers are float64-accurate is not called float32.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterator

import keras
import numpy as np

from gradparity.backends.contract import (Evaluation, Primitives, SecondOrder, Trajectory, differentiable_ops,
                                          second_order_ops)
from gradparity.backends.layout import dtype_name
from gradparity.core.errors import GradparityError

BACKEND = keras.backend.backend()
if BACKEND not in ("tensorflow", "jax", "torch"):
    raise GradparityError(f"Keras backend {BACKEND!r} is not supported; use tensorflow, jax or torch")
if BACKEND == "jax":
    import jax
if BACKEND == "tensorflow":
    import tensorflow as tf
if BACKEND == "torch":  # first order needs no import (J.backward() and .grad); second order does
    import torch
    from torch.autograd import forward_ad

# The plain adapter of the same framework: device choice, TF32 switches and flags.
FRAMEWORK = importlib.import_module(f"gradparity.backends.{BACKEND}")

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.network import NetworkSpec
    from gradparity.core.optimizers import Training

Params = dict[str, np.ndarray]
Gradients = tuple[object, list[object], list[object]]
JOINED_BYTES = 2**24  # the most data ``fit_runs`` copies to join every epoch into one
# On tensorflow, tracing fit's train step costs more than a few eager steps of the catalogue's
# small networks, so a case of at most this many steps fits with run_eagerly (the threshold's
# figures: docs/explanation/performance.md).
# (On jax an eager step runs op by op, compiling each primitive; torch is eager anyway.)
EAGER_STEPS = 8 if BACKEND == "tensorflow" else 0


def to_dense(params: Params) -> list[np.ndarray]:
    """``[kernel1, bias1, kernel2, ...]`` for the Dense layers: kernel = W.T ``(n_{l-1}, n_l)``,
    bias = b ravelled to ``(n_l,)``."""
    depth = len(params) // 2
    return [array for layer in range(1, depth + 1)
            for array in (params[f"W{layer}"].T, params[f"b{layer}"].ravel())]


def from_dense(weights: list[np.ndarray]) -> Params:
    """The reference layout of ``[kernel1, bias1, ...]``: W[l] = kernel.T, b[l] = bias as a column."""
    params: Params = {}
    for index in range(0, len(weights), 2):
        layer = index // 2 + 1
        params[f"W{layer}"] = np.ascontiguousarray(weights[index].T)
        params[f"b{layer}"] = weights[index + 1].reshape(-1, 1)
    return params


def computed_dtype(tensors: list[object]) -> str:
    """The narrowest float dtype among the tensors Keras returned (measured, not predicted)."""
    names = {dtype_name(tensor.dtype) for tensor in tensors}
    return min(names, key=lambda name: int(name.removeprefix("float")) if name.startswith("float") else 0)


def transposed_loss(function: str) -> str:
    """A ``keras.losses`` function on examples in rows, averaged as the Keras loss class does."""
    return f"keras.ops.mean(keras.losses.{function}(keras.ops.transpose(ty), keras.ops.transpose(tx)))"


# H(tx) tx of sum({f}) by the mechanism of each backend's ``fwd-over-rev`` mode: forward mode
# over reverse mode, the tangent of the gradient along tx
HVP_SOURCE = {
    "jax": "out = jax.jvp(jax.grad(lambda t: jnp.sum({f})), (tx,), (tx,))[1]",
    "torch": "out = torch.func.jvp(torch.func.grad(lambda t: torch.sum({f})), (tx,), (tx,))[1]",
    "tensorflow": """t = tf.Variable(tx)
with tf.autodiff.ForwardAccumulator(t, tx) as accumulator:
    with tf.GradientTape() as tape:
        total = tf.reduce_sum({f})
    gradient = tape.gradient(total, t)
out = accumulator.jvp(gradient, unconnected_gradients=tf.UnconnectedGradients.ZERO)""",
}[BACKEND]
# The model's hidden activations, and its losses as the model computes them from the logits Z[L]
# (from A[L] for mse): examples in rows, so the output activation is the Dense layer's own call
# and on tensorflow the loss finds the logits the activation left on its output
SECOND_ORDER_DIFFERENTIABLE = {
    **{name: f"keras.activations.{name}({{x}})" for name in ("sigmoid", "tanh", "relu")},
    "bce": "keras.ops.mean(keras.losses.binary_crossentropy(keras.ops.transpose(ty), "
           "keras.activations.sigmoid(keras.ops.transpose({x})))) * {x}.shape[0]",
    "softmax_ce": "keras.ops.mean(keras.losses.categorical_crossentropy(keras.ops.transpose(ty), "
                  "keras.activations.softmax(keras.ops.transpose({x}))))",
    "mse": "keras.ops.mean(keras.losses.mean_squared_error(keras.ops.transpose(ty), keras.ops.transpose({x})))",
}

PRIMITIVES = Primitives(
    f'import os\nos.environ["KERAS_BACKEND"] = "{BACKEND}"\n{FRAMEWORK.PREAMBLE}\nimport keras',
    'keras.ops.convert_to_tensor({array}, dtype="{dtype}")', "keras.ops.convert_to_numpy(out)", {
        "matmul": "out = keras.ops.matmul(tx, ty)",
        "add": "out = keras.ops.add(tx, ty)",
        "softmax": "out = keras.activations.softmax(tx, axis=0)",
        **differentiable_ops(FRAMEWORK.GRADIENT, {name: f"keras.activations.{name}({{x}})"
                                                  for name in ("sigmoid", "tanh", "relu")}),
        "transpose_matmul": "out = keras.ops.matmul(keras.ops.transpose(tx), ty)",
        "sum": "out = keras.ops.sum(tx, axis=1, keepdims=True)",
        "log": "out = keras.ops.log(tx)",
        "mean": "out = keras.ops.mean(tx)",
        "bce_probabilities": f"out = {transposed_loss('binary_crossentropy')} * tx.shape[0]",
        "softmax_ce_probabilities": f"out = {transposed_loss('categorical_crossentropy')}",
        "mse": f"out = {transposed_loss('mean_squared_error')}",
        "cast_scalar": 'out = keras.ops.cast(s, "{dtype}")',
        **second_order_ops(HVP_SOURCE, SECOND_ORDER_DIFFERENTIABLE),
    })


def build_model(case: Case) -> keras.Sequential:
    """``Input(n0)`` then ``Dense(n_l, activation=g[l])`` for l = 1..L in ``case.dtype``, whose
    variables are created holding ``case.params`` (kernel = W.T, bias = b ravelled): no random
    initial values are drawn, only to be overwritten (on jax each draw compiles per shape)."""
    spec, weights = case.spec, to_dense(case.params)
    layers = [
        keras.layers.Dense(units, activation=spec.activation(layer), dtype=case.dtype, name=f"dense{layer}",
                           kernel_initializer=holding(weights[2 * layer - 2]),
                           bias_initializer=holding(weights[2 * layer - 1]))
        for layer, units in enumerate(spec.layer_sizes[1:], start=1)
    ]
    return keras.Sequential([keras.Input(shape=(spec.layer_sizes[0],), dtype=case.dtype), *layers])


def holding(array: np.ndarray) -> Callable[..., np.ndarray]:
    """A Keras initializer that gives ``array`` itself (Keras converts it to its variable's dtype)."""
    def initializer(shape: tuple[int, ...], dtype: object = None) -> np.ndarray:
        if tuple(shape) != array.shape:
            raise GradparityError(f"Keras asked an initial value of shape {tuple(shape)} for an array {array.shape}")
        return array

    return initializer


def keras_loss(spec: NetworkSpec, dtype: str) -> tuple[keras.losses.Loss, float]:
    """The Keras loss on probabilities and the weight that makes it the reference J.

    BinaryCrossentropy averages over the nL outputs of an example, where J sums them, so it is
    weighted by nL; CategoricalCrossentropy (sum over classes, mean over examples) and
    MeanSquaredError (mean over nL, then over m) are J as they stand."""
    if spec.loss == "bce":
        return keras.losses.BinaryCrossentropy(dtype=dtype), float(spec.layer_sizes[-1])
    if spec.loss == "softmax-ce":
        return keras.losses.CategoricalCrossentropy(dtype=dtype), 1.0
    return keras.losses.MeanSquaredError(dtype=dtype), 1.0


def keras_optimizer(training: Training) -> keras.optimizers.Optimizer:
    """Keras's own optimizer for ``training``, hyper-parameters as Python floats: ``SGD(lr)``,
    ``SGD(lr, momentum)`` or ``Adam(lr, beta_1, beta_2, epsilon)`` (both Adam forms asked run
    Keras's one Adam, the efficient form: see ``Adapter.optimizers``)."""
    lr = float(training.learning_rate)
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if training.optimizer == "momentum":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(training.momentum))
    if training.optimizer in ("adam", "adam-hat"):
        return keras.optimizers.Adam(learning_rate=lr, beta_1=float(training.beta1),
                                     beta_2=float(training.beta2), epsilon=float(training.epsilon))
    raise GradparityError(f"Keras has no {training.optimizer!r} optimizer here")


class BatchCost(keras.metrics.Metric):
    """The cost of the last batch a train step saw: ``weight * loss(y_true, y_pred)``, with the
    same loss object and weight as the compiled loss (``CompileLoss`` computes it the same way).
    Keras's train step computes ``y_pred`` before the optimizer's update and hands it to the
    metrics after, so this is the batch's J before the step; unlike ``logs["loss"]`` (a running,
    batch-size-weighted mean over the epoch) it is not averaged with earlier batches. Its variable
    is in the case's dtype, so float64 costs are not rounded to float32."""

    def __init__(self, loss: keras.losses.Loss, weight: float, dtype: str, name: str = "batch_cost") -> None:
        super().__init__(name=name, dtype=dtype)
        self.loss, self.weight = loss, weight
        self.cost = self.add_variable(shape=(), initializer="zeros", dtype=dtype, name="cost")

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        value = keras.ops.cast(self.loss(y_true, y_pred, sample_weight), self.dtype)
        self.cost.assign(keras.ops.multiply(value, self.weight))

    def result(self) -> object:
        return keras.ops.cast(self.cost, self.dtype)


class CostRecorder(keras.callbacks.Callback):
    """Appends the ``BatchCost`` of every train batch, in order (a callback that overrides
    ``on_train_batch_end`` makes Keras call it synchronously, step by step)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.costs = name, []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.costs.append(float(logs[self.name]))


def epoch_orders(case: Case) -> list[np.ndarray]:
    """Each epoch's examples in the reference's order: the epoch's batches
    (``case.training.batches``) concatenated. Cut into contiguous pieces of the batch size, the
    last one partial, each gives back exactly the reference's batches."""
    batches = case.training.batches(case.m)
    per_epoch = len(batches) // case.training.epochs
    examples = np.arange(case.m)
    return [np.concatenate([examples[batch] for batch in batches[start:start + per_epoch]])
            for start in range(0, len(batches), per_epoch)]


def fit_runs(case: Case) -> list[tuple[np.ndarray, int]]:
    """``(examples in order, epochs)`` of each ``fit`` that together cut exactly the reference's
    batches (``epoch_orders``): every epoch joined into one when every batch is full (the batch
    size divides m) and the copy stays within ``JOINED_BYTES`` (on TensorFlow each epoch costs
    a new tf.data iterator, about 10 ms); else the epochs in one ``fit`` when they share one
    order; else one ``fit`` per epoch."""
    orders = epoch_orders(case)
    if case.m % (case.training.batch_size or case.m) == 0 and case.X.nbytes * len(orders) <= JOINED_BYTES:
        return [(np.concatenate(orders), 1)]
    if all(np.array_equal(order, orders[0]) for order in orders):
        return [(orders[0], len(orders))]
    return [(order, 1) for order in orders]


def batch(case: Case) -> tuple[object, object]:
    """X^T ``(m, n0)`` and Y^T ``(m, nL)`` as backend tensors in ``case.dtype``: Keras puts examples in rows."""
    return tuple(keras.ops.convert_to_tensor(array.T, dtype=case.dtype) for array in (case.X, case.Y))


def as_list(outputs: object) -> list[object]:
    """The probe's per-layer outputs as a list: a one-layer model returns its tensor bare."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def tensorflow_gradients(probe: keras.Model, loss: Callable, weight: float, X: object, Y: object) -> Gradients:
    """(J, [A1..AL], dJ/d[kernel1, bias1, ...]) with ``tf.GradientTape``."""
    with tf.GradientTape() as tape:
        outputs = as_list(probe(X, training=True))
        J = weight * loss(Y, outputs[-1])
    return J, outputs, tape.gradient(J, probe.trainable_variables)


def torch_gradients(probe: keras.Model, loss: Callable, weight: float, X: object, Y: object) -> Gradients:
    """(J, [A1..AL], dJ/d[kernel1, bias1, ...]) with ``J.backward()`` and the variables' ``.grad``."""
    outputs = as_list(probe(X, training=True))
    J = weight * loss(Y, outputs[-1])
    J.backward()
    return J, outputs, [variable.value.grad for variable in probe.trainable_variables]


def jax_gradients(probe: keras.Model, loss: Callable, weight: float, X: object, Y: object) -> Gradients:
    """(J, [A1..AL], dJ/d[kernel1, bias1, ...]) with ``jax.value_and_grad`` of ``stateless_call``,
    compiled as one ``jax.jit`` program (op by op, JAX compiles every primitive per shape); the
    data are its arguments, not constants folded into the program."""
    frozen = [variable.value for variable in probe.non_trainable_variables]

    def objective(trainable: list[jax.Array], X: jax.Array, Y: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        outputs, _ = probe.stateless_call(trainable, frozen, X, training=True)
        outputs = as_list(outputs)
        return weight * loss(Y, outputs[-1]), outputs

    (J, outputs), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(
        [variable.value for variable in probe.trainable_variables], X, Y)
    return J, outputs, grads


GRADIENTS: dict[str, Callable[..., Gradients]] = {
    "tensorflow": tensorflow_gradients, "torch": torch_gradients, "jax": jax_gradients,
}


@dataclass(frozen=True)
class StatelessModel:
    """The case's model and weighted loss as a pure function of its trainable variables
    ``[kernel1, bias1, ...]``, through ``stateless_call``: what the second-order mechanisms
    differentiate (the probe model of ``evaluate``, whose outputs are every layer's)."""

    probe: keras.Model
    loss: keras.losses.Loss
    weight: float

    @classmethod
    def of(cls, case: Case) -> StatelessModel:
        model = build_model(case)
        probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
        return cls(probe, *keras_loss(case.spec, case.dtype))

    def objective(self, trainable: list[object], X: object, Y: object) -> tuple[object, list[object]]:
        """(J, [A1, ..., AL]) with ``trainable`` in place of the variables, examples in rows."""
        frozen = [variable.value for variable in self.probe.non_trainable_variables]
        outputs, _ = self.probe.stateless_call(trainable, frozen, X, training=True)
        outputs = as_list(outputs)
        return self.weight * self.loss(Y, outputs[-1]), outputs

    def cost(self, trainable: list[object], X: object, Y: object) -> object:
        return self.objective(trainable, X, Y)[0]


# A second-order mode: (model, trainable, direction, X, Y) -> ((J, [A1, ..., AL]), (J̇, [Ȧ1, ..., ȦL]))
# for a tangents mode, or H V as [kernel1, bias1, ...] for an hvp mode; trainable and direction in
# the Dense layout. A tangents mode returns its primals too: their dtype is part of what it computed.
ForwardTangents = tuple[tuple[object, list[object]], tuple[object, list[object]]]


def jax_jvp(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> ForwardTangents:
    """``jax.jvp`` of (J, [A1, ..., AL]) along the direction."""
    return jax.jvp(lambda p: model.objective(p, X, Y), (trainable,), (direction,))


def jax_fwd_over_rev(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = ``jax.jvp(jax.grad(J))`` along the direction."""
    return jax.jvp(jax.grad(lambda p: model.cost(p, X, Y)), (trainable,), (direction,))[1]


def jax_rev_over_rev(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = ``jax.grad`` of <``jax.grad(J)``, V>."""
    gradient = jax.grad(lambda p: model.cost(p, X, Y))
    return jax.grad(lambda p: sum(jax.numpy.vdot(g, v) for g, v in zip(gradient(p), direction)))(trainable)


def torch_func_jvp(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> ForwardTangents:
    """``torch.func.jvp`` of (J, [A1, ..., AL]) along the direction."""
    return torch.func.jvp(lambda *p: model.objective(list(p), X, Y), tuple(trainable), tuple(direction))


def torch_forward_ad(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> ForwardTangents:
    """The tangents of dual tensors (``torch.autograd.forward_ad``) carried through the model."""
    with forward_ad.dual_level():
        J, outputs = model.objective([forward_ad.make_dual(p, v) for p, v in zip(trainable, direction)], X, Y)
        J, outputs = forward_ad.unpack_dual(J), [forward_ad.unpack_dual(A) for A in outputs]
    return (J.primal, [A.primal for A in outputs]), (J.tangent, [A.tangent for A in outputs])


def torch_fwd_over_rev(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = ``torch.func.jvp`` of ``torch.func.grad(J)`` along the direction."""
    gradient = torch.func.grad(lambda *p: model.cost(list(p), X, Y), argnums=tuple(range(len(trainable))))
    return list(torch.func.jvp(gradient, tuple(trainable), tuple(direction))[1])


def torch_double_backward(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = the gradient of <g, V>, g = ``torch.autograd.grad(J, create_graph=True)``."""
    leaves = [p.detach().clone().requires_grad_(True) for p in trainable]
    gradients = torch.autograd.grad(model.cost(leaves, X, Y), leaves, create_graph=True)
    return list(torch.autograd.grad(sum(torch.sum(g * v) for g, v in zip(gradients, direction)), leaves))


def tensorflow_forward_accumulator(model: StatelessModel, trainable: list, direction: list, X: object,
                                   Y: object) -> ForwardTangents:
    """The ``tf.autodiff.ForwardAccumulator`` tangents of J and [A1, ..., AL]."""
    with tf.autodiff.ForwardAccumulator(trainable, direction) as accumulator:
        J, outputs = model.objective(trainable, X, Y)
    return (J, outputs), (accumulator.jvp(J), [accumulator.jvp(A) for A in outputs])


def tensorflow_fwd_over_rev(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = the ``ForwardAccumulator`` tangent of a ``GradientTape``'s gradient."""
    with tf.autodiff.ForwardAccumulator(trainable, direction) as accumulator:
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            J = model.cost(trainable, X, Y)
        gradients = tape.gradient(J, trainable)
    return accumulator.jvp(gradients)


def tensorflow_rev_over_rev(model: StatelessModel, trainable: list, direction: list, X: object, Y: object) -> list:
    """H V = the outer ``GradientTape``'s gradient of <g, V>, g from an inner tape."""
    with tf.GradientTape() as outer:
        outer.watch(trainable)
        with tf.GradientTape() as inner:
            inner.watch(trainable)
            J = model.cost(trainable, X, Y)
        gradients = inner.gradient(J, trainable)
        along = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(gradients, direction)])
    return outer.gradient(along, trainable)


# each Keras backend's second-order modes: name -> (what it computes, how)
SECOND_ORDER: dict[str, dict[str, tuple[str, Callable]]] = {
    "jax": {"jvp": ("tangents", jax_jvp), "fwd-over-rev": ("hvp", jax_fwd_over_rev),
            "rev-over-rev": ("hvp", jax_rev_over_rev)},
    "torch": {"func.jvp": ("tangents", torch_func_jvp), "forward-ad": ("tangents", torch_forward_ad),
              "fwd-over-rev": ("hvp", torch_fwd_over_rev), "double-backward": ("hvp", torch_double_backward)},
    "tensorflow": {"forward-accumulator": ("tangents", tensorflow_forward_accumulator),
                   "fwd-over-rev": ("hvp", tensorflow_fwd_over_rev), "rev-over-rev": ("hvp", tensorflow_rev_over_rev)},
}


class Adapter:
    """A Keras Sequential model, its loss and Keras's optimizers, on the backend of this process.

    ``optimizers``, read from Keras 3's source (``keras/src/optimizers/adam.py`` and ``sgd.py``,
    ``update_step``): Keras's ``Adam`` is the efficient form of Kingma & Ba, ``adam-hat``:
    m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2) (the reference's moments, rounded differently),
    alpha = lr sqrt(1 - b2^t) / (1 - b1^t), W -= m alpha / (sqrt(v) + eps^), its ``epsilon``
    being eps^; a case asking Algorithm 1 (``adam``) is run with it and compared in that form.
    Keras's ``SGD(momentum=mu)`` keeps u = mu u - lr g and adds it, W += u: with a constant
    learning rate u = -lr v of the reference's v = mu v + g, W -= lr v, the same update rounded
    differently. Both cast their Python-float hyper-parameters with ``ops.cast(beta, dtype)``,
    which on the tensorflow backend goes through float32 (0.9 -> 0.8999999761581421) in a
    float64 run; that is Keras's numerics and is kept."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam-hat", "adam-hat": "adam-hat"}
    second_order_modes = {mode: (computes,) for mode, (computes, _how) in SECOND_ORDER[BACKEND].items()}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        if name != f"keras-{BACKEND}":
            raise GradparityError(f"backend {name!r} loaded, but Keras runs on {BACKEND} in this process")
        self.name = name
        FRAMEWORK.select_device(device, allow_tf32)  # raises when cuda is asked and absent
        # Keras device names without an index: on torch, "cpu:0" makes every variable a
        # non-leaf copy of its Parameter (``.to("cpu:0")``), whose ``.grad`` stays empty.
        self.device = "gpu" if device == "cuda" else "cpu"
        self._built: tuple[Case, keras.Sequential] | None = None  # evaluate's model, for train of the same case
        self._second_order: dict[tuple, Callable] = {}  # second_order_program's, by modes and case shape
        self._answers: tuple[Case | None, dict] = (None, {})  # the last case's second-order answers, by mode

    def version(self) -> str:
        return f"keras {keras.__version__} on {BACKEND} {importlib.import_module(BACKEND).__version__}"

    def compile_seconds(self) -> float | None:
        """The backend framework's compile seconds in this process (``compile_seconds`` of its adapter)."""
        return FRAMEWORK.compile_seconds()

    def flags(self) -> dict[str, str]:
        """Keras's backend, epsilon and floatx, then the backend framework's own switches."""
        keras_flags = {
            "keras_backend": BACKEND,
            "epsilon": repr(keras.config.epsilon()),
            "floatx": keras.config.floatx(),
        }
        return keras_flags | FRAMEWORK.flags()

    @contextmanager
    def computing_in(self, dtype: str) -> Iterator[None]:
        """Keras on this adapter's device with floatx = ``dtype``, restored afterwards: floatx
        sets the dtype of the optimizer's learning-rate variable and of the metrics, which would
        otherwise round a float64 run's learning rate and recorded losses to float32."""
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            with keras.device(self.device):
                yield
        finally:
            keras.config.set_floatx(previous)

    def model_of(self, case: Case) -> keras.Sequential:
        """The model ``evaluate`` built for ``case``, handed over once (``train`` fits it, so
        nothing else may reuse it), or a new one: one model per case, not one per quantity."""
        built, self._built = self._built, None
        return built[1] if built and built[0] is case else build_model(case)

    def evaluate(self, case: Case) -> Evaluation:
        """J = weight * loss(Y^T, AL^T) and its gradients by the backend's autodiff; the
        activations come from a functional view of the same layers. The model is kept for
        ``train`` of the same case (``model_of``); computing gradients leaves its weights as they were."""
        with self.computing_in(case.dtype):
            model = build_model(case)
            self._built = (case, model)
            probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
            loss, weight = keras_loss(case.spec, case.dtype)
            J, outputs, grads = GRADIENTS[BACKEND](probe, loss, weight, *batch(case))
        arrays = from_dense([keras.ops.convert_to_numpy(grad) for grad in grads])
        return Evaluation(
            float(keras.ops.convert_to_numpy(J)), arrays,
            [np.ascontiguousarray(keras.ops.convert_to_numpy(A).T) for A in outputs],
            computed_dtype([J, *outputs, *grads]),
        )

    def compiled_model(self, case: Case, run_eagerly: bool = False, record_costs: bool = False) -> keras.Sequential:
        """The case's model (``model_of``) compiled with the optimizer ``case.training`` asks
        (``keras_optimizer``) and the weighted Keras loss; ``record_costs`` adds the ``BatchCost`` metric."""
        model = self.model_of(case)
        loss, weight = keras_loss(case.spec, case.dtype)
        metrics = [BatchCost(loss, weight, case.dtype)] if record_costs else None
        model.compile(optimizer=keras_optimizer(case.training), loss=loss, loss_weights=weight,
                      metrics=metrics, run_eagerly=run_eagerly)
        return model

    def train(self, case: Case) -> Trajectory:
        """``model.fit`` with ``shuffle=False`` on the examples in the reference's order,
        ``batch_size`` the case's (the full batch when None), as ``fit_runs`` groups the epochs;
        the fits share one compiled model, whose optimizer keeps its step count and moments
        across them, eagerly for a case of at most ``EAGER_STEPS`` steps. Each step's J, on its
        batch before its update, is the ``BatchCost`` metric after that step."""
        size = case.training.batch_size or case.m
        with self.computing_in(case.dtype):
            model = self.compiled_model(case, run_eagerly=case.steps <= EAGER_STEPS, record_costs=True)
            recorder = CostRecorder("batch_cost")
            for order, epochs in fit_runs(case):
                model.fit(np.ascontiguousarray(case.X.T[order]), np.ascontiguousarray(case.Y.T[order]),
                          batch_size=size, epochs=epochs, shuffle=False, verbose=0, callbacks=[recorder])
            steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            weights = [keras.ops.convert_to_numpy(variable.value) for variable in model.trainable_variables]
        if steps != case.steps or len(recorder.costs) != case.steps:
            raise GradparityError(f"Keras took {steps} steps and recorded {len(recorder.costs)} costs; "
                                  f"the case has {case.steps}")
        return Trajectory(recorder.costs, from_dense(weights), computed_dtype(weights))

    def second_order_program(self, case: Case, modes: tuple[str, ...]) -> Callable:
        """The modes ``modes`` on a ``StatelessModel`` of the case's network, as one function of
        (variables, direction, X, Y) answering ``{mode: answer}``, made once per case shape
        (spec, dtype, X's shape): another case of the same shape runs it again. On jax it is one
        ``jax.jit`` program for every mode, each traced alone (op by op, JAX compiles every
        primitive per shape; one program pays XLA's fixed compile cost once, not per mode)."""
        key = (modes, case.spec, case.dtype, case.X.shape)
        if key not in self._second_order:
            model = StatelessModel.of(case)

            def program(trainable: list, direction: list, X: object, Y: object) -> dict:
                return {mode: SECOND_ORDER[BACKEND][mode][1](model, trainable, direction, X, Y) for mode in modes}

            self._second_order[key] = jax.jit(program) if BACKEND == "jax" else program
        return self._second_order[key]

    def second_order_answer(self, case: Case, mode: str) -> Any:
        """Mode ``mode``'s raw answer on ``case``: on jax every mode's, from one program run once
        per case (the worker asks for each mode in turn); elsewhere this mode's alone."""
        if self._answers[0] is not case or mode not in self._answers[1]:
            modes = tuple(SECOND_ORDER[BACKEND]) if BACKEND == "jax" else (mode,)
            program = self.second_order_program(case, modes)
            trainable, direction = ([keras.ops.convert_to_tensor(array, dtype=case.dtype) for array in to_dense(params)]
                                    for params in (case.params, case.along()))
            self._answers = (case, program(trainable, direction, *batch(case)))
        return self._answers[1][mode]

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode`` (``SECOND_ORDER``) at ``case.params`` along ``case.direction``, both in
        the Dense layout (kernel = W.T); J̇ is the tangent of the weighted Keras loss that
        ``evaluate`` differentiates, Ȧ[l] those of the layers' outputs, transposed back, and
        H V is returned in the reference layout. ``dtype_used`` is measured, as ``evaluate``'s,
        on what the mode returns (a tangents mode's J and activations included)."""
        if mode not in SECOND_ORDER[BACKEND]:
            raise GradparityError(f"keras-{BACKEND} has no second-order mode {mode!r}; "
                                  f"choose from {', '.join(SECOND_ORDER[BACKEND])}")
        with self.computing_in(case.dtype):
            answer = self.second_order_answer(case, mode)
        if SECOND_ORDER[BACKEND][mode][0] == "tangents":
            (cost, activations), (cost_tangent, tangents) = answer
            return SecondOrder(cost_tangent=float(keras.ops.convert_to_numpy(cost_tangent)),
                               tangents=[np.ascontiguousarray(keras.ops.convert_to_numpy(A).T) for A in tangents],
                               dtype_used=computed_dtype([cost, *activations, cost_tangent, *tangents]))
        return SecondOrder(hvp=from_dense([keras.ops.convert_to_numpy(product) for product in answer]),
                           dtype_used=computed_dtype(list(answer)))

    def primitives(self) -> Primitives:
        """The ``keras.ops``/``keras.activations``/``keras.losses`` calls of the model, and the
        backend's own autodiff for the activations' derivatives (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        """Eager is ``run_eagerly=True``; compiled is Keras's default train step (jax.jit, a
        tf.function), which on torch is not compiled at all."""
        if BACKEND == "torch":
            return {"eager": None, "compiled": "Keras resolves jit_compile='auto' to eager on the torch backend"}
        return {"eager": None, "compiled": None}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One ``model.train_on_batch`` on the full batch, already converted to backend tensors;
        it returns the loss as NumPy, so it blocks until the step is done."""
        reason = self.bench_modes().get(mode, f"unknown bench mode {mode!r}; choose eager or compiled")
        if reason:
            raise GradparityError(f"{self.name} cannot time mode {mode!r}: {reason}")
        with self.computing_in(case.dtype):
            model = self.compiled_model(case, run_eagerly=mode == "eager")
            X, Y = batch(case)

        def step() -> None:
            with self.computing_in(case.dtype):
                model.train_on_batch(X, Y)

        return step
