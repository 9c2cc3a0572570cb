"""Keras 3 behind the contract, on the backend ``KERAS_BACKEND`` names (the registry sets it
before the import; one backend per process).

The network is the document's Keras model: a ``keras.Sequential`` of ``Dense`` layers after a
``keras.Input``, with kernel = W.T and bias = b ravelled, and a ``keras.losses`` loss on the
output probabilities. Gradients come from the active backend's autodiff (``tf.GradientTape``,
``jax.value_and_grad`` over ``stateless_call``, torch autograd); training is ``compile`` +
``fit`` with ``keras.optimizers.SGD``.

Keras's own numerics are kept, not corrected. On the jax and torch backends its
cross-entropies clip probabilities to [epsilon, 1 - epsilon] (saturated outputs lose their
gradient), and some of its ops compute float64 inputs in float32 (found by the op probes of
``core.diagnosis``). ``dtype_used`` is the narrowest dtype among the tensors returned: measured,
so a float64 run whose numbers are float64-accurate is not called float32.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

import keras
import numpy as np

from gradparity.backends.contract import Evaluation, Primitives, Trajectory, differentiable_ops
from gradparity.backends.layout import dtype_name
from gradparity.core.errors import GradparityError

BACKEND = keras.backend.backend()
if BACKEND not in ("tensorflow", "jax", "torch"):
    raise GradparityError(f"Keras backend {BACKEND!r} is not supported; use tensorflow, jax or torch")
if BACKEND == "jax":
    import jax
if BACKEND == "tensorflow":
    import tensorflow as tf  # torch autograd needs no import: J.backward() and .grad

# The plain adapter of the same framework: device choice, TF32 switches and flags.
FRAMEWORK = importlib.import_module(f"gradparity.backends.{BACKEND}")

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.network import NetworkSpec

Params = dict[str, np.ndarray]
Gradients = tuple[object, list[object], list[object]]


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
    })


def build_model(case: Case) -> keras.Sequential:
    """``Input(n0)`` then ``Dense(n_l, activation=g[l])`` for l = 1..L in ``case.dtype``, holding
    ``case.params`` (kernel = W.T, bias = b ravelled)."""
    spec = case.spec
    layers = [
        keras.layers.Dense(units, activation=spec.activation(layer), dtype=case.dtype, name=f"dense{layer}")
        for layer, units in enumerate(spec.layer_sizes[1:], start=1)
    ]
    model = keras.Sequential([keras.Input(shape=(spec.layer_sizes[0],), dtype=case.dtype), *layers])
    model.set_weights(to_dense(case.params))
    return model


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
    compiled as one ``jax.jit`` program (op by op, JAX compiles every primitive per shape)."""
    frozen = [variable.value for variable in probe.non_trainable_variables]

    def objective(trainable: list[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
        outputs, _ = probe.stateless_call(trainable, frozen, X, training=True)
        outputs = as_list(outputs)
        return weight * loss(Y, outputs[-1]), outputs

    (J, outputs), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(
        [variable.value for variable in probe.trainable_variables])
    return J, outputs, grads


GRADIENTS: dict[str, Callable[..., Gradients]] = {
    "tensorflow": tensorflow_gradients, "torch": torch_gradients, "jax": jax_gradients,
}


class Adapter:
    """A Keras Sequential model, its loss and SGD, on the backend of this process."""

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        if name != f"keras-{BACKEND}":
            raise GradparityError(f"backend {name!r} loaded, but Keras runs on {BACKEND} in this process")
        self.name = name
        FRAMEWORK.select_device(device, allow_tf32)  # raises when cuda is asked and absent
        # Keras device names without an index: on torch, "cpu:0" makes every variable a
        # non-leaf copy of its Parameter (``.to("cpu:0")``), whose ``.grad`` stays empty.
        self.device = "gpu" if device == "cuda" else "cpu"

    def version(self) -> str:
        return f"keras {keras.__version__} on {BACKEND} {importlib.import_module(BACKEND).__version__}"

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
        sets the dtype of the SGD learning-rate variable and of the loss tracker, which would
        otherwise round a float64 run's learning rate and recorded losses to float32."""
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            with keras.device(self.device):
                yield
        finally:
            keras.config.set_floatx(previous)

    def evaluate(self, case: Case) -> Evaluation:
        """J = weight * loss(Y^T, AL^T) and its gradients by the backend's autodiff; the
        activations come from a functional view of the same layers."""
        with self.computing_in(case.dtype):
            model = build_model(case)
            probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
            loss, weight = keras_loss(case.spec, case.dtype)
            J, outputs, grads = GRADIENTS[BACKEND](probe, loss, weight, *batch(case))
        arrays = from_dense([keras.ops.convert_to_numpy(grad) for grad in grads])
        return Evaluation(
            float(keras.ops.convert_to_numpy(J)), arrays,
            [np.ascontiguousarray(keras.ops.convert_to_numpy(A).T) for A in outputs],
            computed_dtype([J, *outputs, *grads]),
        )

    def compiled_model(self, case: Case, run_eagerly: bool = False) -> keras.Sequential:
        """``build_model`` compiled with ``SGD(case.learning_rate)`` and the weighted Keras loss."""
        model = build_model(case)
        loss, weight = keras_loss(case.spec, case.dtype)
        optimizer = keras.optimizers.SGD(learning_rate=float(case.learning_rate))
        model.compile(optimizer=optimizer, loss=loss, loss_weights=weight, run_eagerly=run_eagerly)
        return model

    def train(self, case: Case) -> Trajectory:
        """``model.fit`` with one full batch per epoch, unshuffled; each epoch's loss is the
        batch's J before that epoch's update."""
        with self.computing_in(case.dtype):
            model = self.compiled_model(case)
            history = model.fit(
                np.ascontiguousarray(case.X.T), np.ascontiguousarray(case.Y.T),
                batch_size=case.m, epochs=case.steps, shuffle=False, verbose=0,
            )
            weights = [keras.ops.convert_to_numpy(variable.value) for variable in model.trainable_variables]
        return Trajectory([float(J) for J in history.history["loss"]], from_dense(weights),
                          computed_dtype(weights))

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
