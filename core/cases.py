"""The case catalogue: named networks, data and parameters that every backend is run on, and
the shapes `gradparity bench` times."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from gradparity.core import datasets
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec, check_dtype, check_params
from gradparity.core.optimizers import Training
from gradparity.core.reference import Params, initial_params


@dataclass
class Case:
    """A network, its data and its starting parameters, all in one dtype.

    ``training`` (optimizer, hyper-parameters, batches) drives the training trajectory;
    ``tolerance`` maps a quantity kind (``cost``, ``gradients``, ``activations``,
    ``trajectory``) to an rtol that replaces the policy's for this case; ``direction`` is
    the direction V of its second-order quantities (``core.second_order``), where they are asked.
    """

    name: str
    description: str
    spec: NetworkSpec
    X: np.ndarray = field(repr=False)
    Y: np.ndarray = field(repr=False)
    params: Params = field(repr=False)
    dtype: str = "float64"
    training: Training = field(default_factory=Training)
    tolerance: dict[str, float] = field(default_factory=dict)
    direction: Params | None = field(default=None, repr=False)

    @property
    def m(self) -> int:
        """The number of examples, the columns of ``X``."""
        return self.X.shape[1]

    @property
    def key(self) -> str:
        """``name/dtype``, unique within a run."""
        return f"{self.name}/{self.dtype}"

    @property
    def learning_rate(self) -> float:
        """The learning rate of its ``training``."""
        return self.training.learning_rate

    @property
    def steps(self) -> int:
        """The number of updates of its trajectory."""
        return self.training.steps(self.m)

    def along(self) -> Params:
        """The direction V of its second-order quantities; a GradparityError where it has none."""
        if self.direction is None:
            raise GradparityError(f"case {self.name} has no second-order direction (run it with order 2)")
        return self.direction

    def with_training(self, **overrides: object) -> Case:
        """The same case with some fields of its ``Training`` replaced (None keeps a field)."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if not given:
            return self
        training = replace(self.training, **given)
        training.check_batch_size(self.m)
        return replace(self, training=training)


def make_case(
    name: str,
    description: str,
    data: tuple[np.ndarray, np.ndarray],
    params: Params,
    spec: NetworkSpec,
    dtype: str = "float64",
    training: Training | None = None,
) -> Case:
    """Check ``data`` (X, Y), parameters and batch size against ``spec`` and cast everything to
    ``dtype`` (the training defaults to ``Training()``: full-batch gradient descent, lr 0.5, 10 steps)."""
    X, Y = data
    numpy_dtype = check_dtype(dtype)
    datasets.check_data(X, Y, spec.loss)
    if X.shape[0] != spec.layer_sizes[0] or Y.shape[0] != spec.layer_sizes[-1]:
        raise GradparityError(
            f"data has {X.shape[0]} features and {Y.shape[0]} output rows, "
            f"but the network's layers are {list(spec.layer_sizes)}"
        )
    check_params(spec, params)
    training = training or Training()
    training.check_batch_size(X.shape[1])
    cast = lambda array: np.ascontiguousarray(array, dtype=numpy_dtype)  # noqa: E731
    return Case(name, description, spec, cast(X), cast(Y), {k: cast(v) for k, v in params.items()}, dtype, training)


@dataclass(frozen=True)
class DatasetCase:
    """A catalogue case built from a bundled dataset: its name and description, the dataset,
    the hidden layers, activation and loss, the initialisation and the training; called with
    a dtype, it is that case."""

    name: str
    description: str
    dataset: str
    hidden: tuple[int, ...]
    activation: str
    loss: str
    init: str
    training: Training

    def __call__(self, dtype: str) -> Case:
        X, Y = datasets.load_dataset(self.dataset, self.loss)
        spec = NetworkSpec((X.shape[0], *self.hidden, Y.shape[0]), self.activation, self.loss)
        return make_case(self.name, self.description, (X, Y), initial_params(spec, self.init), spec, dtype,
                         self.training)


def _signs_shape(dtype: str) -> Case:
    """The ``signs-synthetic`` data (m = 1080); ``xavier`` initialisation with seed 1."""
    X, Y = datasets.load_dataset("signs-synthetic", "softmax-ce")
    spec = NetworkSpec((12288, 25, 12, 6), "relu", "softmax-ce")
    params = initial_params(spec, "xavier", seed=1)
    return make_case(
        "signs-shape", "The document's TensorFlow network 12288-25-12-6 (relu, softmax) on seeded synthetic data, m = 1080",
        (X, Y), params, spec, dtype, Training(learning_rate=0.05, epochs=3),
    )


def _saturated(dtype: str) -> Case:
    """The ``flower`` data (m = 400); ``xavier`` initialisation with seed 3, then W1 times 4, every
    entry of W2 set to 40 and b2 to -80."""
    X, Y = datasets.load_dataset("flower", "bce")
    spec = NetworkSpec((2, 4, 1), "sigmoid", "bce")
    params = initial_params(spec, "xavier", seed=3)
    params["W1"] *= 4.0
    params["W2"] = np.full((1, 4), 40.0)
    params["b2"] = np.full((1, 1), -80.0)
    return make_case(
        "saturated", "Large output weights: |Z2| up to 80, sigmoid outputs at 1 - 1e-12 and beyond, on both sides",
        (X, Y), params, spec, dtype, Training(learning_rate=0.01),
    )


def _single_example(dtype: str) -> Case:
    """The first example of the ``flower`` data (m = 1); ``xavier`` initialisation with seed 4."""
    X, Y = datasets.load_dataset("flower", "bce")
    spec = NetworkSpec((2, 4, 1), "sigmoid", "bce")
    return make_case(
        "single-example", "One example (m = 1): every sum over examples has a single term",
        (X[:, :1], Y[:, :1]), initial_params(spec, "xavier", seed=4), spec, dtype, Training(learning_rate=1.2),
    )


def _tf_document(dtype: str) -> Case:
    """The ``signs-synthetic`` data (m = 1080); ``glorot-uniform`` initialisation with seed 1."""
    X, Y = datasets.load_dataset("signs-synthetic", "softmax-ce")
    spec = NetworkSpec((12288, 25, 12, 6), "relu", "softmax-ce")
    return make_case(
        "tf-document", "The document's TensorFlow set-up: 12288-25-12-6 relu/softmax-ce, glorot-uniform init, "
        "Adam (efficient form, TF1 AdamOptimizer's defaults) at lr 1e-4, batches of 32, 2 epochs of m = 1080 "
        "(each epoch ends on a batch of 24)",
        (X, Y), initial_params(spec, "glorot-uniform", seed=1), spec, dtype,
        Training("adam-hat", learning_rate=1e-4, epochs=2, batch_size=32, epsilon=1e-8),
    )


CATALOGUE: dict[str, Callable[[str], Case]] = {
    "seed-2layer": DatasetCase(
        "seed-2layer", "The document's set-up: flower data, hidden [4], sigmoid, bce, seeded 0.01 init",
        "flower", (4,), "sigmoid", "bce", "seed", Training(learning_rate=1.2)),
    "deep-sigmoid": DatasetCase(
        "deep-sigmoid", "Four sigmoid layers, hidden [16, 8, 4], on the flower data",
        "flower", (16, 8, 4), "sigmoid", "bce", "xavier", Training(learning_rate=0.5)),
    "tanh": DatasetCase(
        "tanh", "The document's network with tanh hidden units", "flower", (4,), "tanh", "bce", "xavier", Training(learning_rate=1.2)),
    "relu": DatasetCase(
        "relu", "ReLU hidden layers [8, 4] with He init", "flower", (8, 4), "relu", "bce", "he", Training(learning_rate=0.5)),
    "softmax-digits": DatasetCase(
        "softmax-digits", "The document's multi-class extension: 8x8 digits, hidden [25, 12] relu, softmax-ce",
        "digits", (25, 12), "relu", "softmax-ce", "he", Training(learning_rate=0.1)),
    "signs-shape": _signs_shape,
    "keras-mse": DatasetCase(
        "keras-mse", "The document's Keras model: hidden [4] sigmoid, sigmoid output, mean squared error",
        "flower", (4,), "sigmoid", "mse", "seed", Training(learning_rate=1.2)),
    "breast-cancer": DatasetCase(
        "breast-cancer", "Real data: 30 standardised features, hidden [16, 8] relu, bce",
        "breast-cancer", (16, 8), "relu", "bce", "he", Training(learning_rate=0.1)),
    "saturated": _saturated,
    "single-example": _single_example,
    "keras-document": DatasetCase(
        "keras-document", "The document's Keras model exactly: 2-4-1 sigmoid/mse on the flower data, glorot-uniform "
        "init, Keras's Adam defaults (efficient form, lr 1e-3, epsilon 1e-7), batch_size 100, 10 epochs",
        "flower", (4,), "sigmoid", "mse", "glorot-uniform",
        Training("adam-hat", learning_rate=1e-3, epochs=10, batch_size=100, epsilon=1e-7)),
    "tf-document": _tf_document,
    "momentum": DatasetCase(
        "momentum", "Momentum 0.9 on shuffled mini-batches of 64 (each epoch ends on a batch of 16): "
        "2-8-1 tanh/bce on the flower data, 3 epochs",
        "flower", (8,), "tanh", "bce", "xavier", Training("momentum", learning_rate=0.05, epochs=3, batch_size=64)),
}
"""The catalogue: each case's name mapped to a function of the dtype that builds it
(``build_case`` calls it); ``gradparity run`` runs them all."""


def build_case(name: str, dtype: str = "float64", **training: object) -> Case:
    """The catalogue case ``name`` in ``dtype``; keyword arguments that are not None replace
    fields of its ``Training`` (``epochs=3``, ``optimizer="adam"``, ...)."""
    if name not in CATALOGUE:
        raise GradparityError(f"unknown case {name!r}; choose from {', '.join(CATALOGUE)}")
    check_dtype(dtype)
    return CATALOGUE[name](dtype).with_training(**training)


def _deep(dtype: str) -> Case:
    """Bench shape ``deep``: 20-16-8-4-1 sigmoid/bce on seeded synthetic data: X ~ N(0, 1) of
    shape (20, 400) from ``default_rng(0)``, label y = [x1 x2 + x3 > 0]; Xavier init (seed 0),
    learning rate 0.5."""
    X = np.random.default_rng(0).standard_normal((20, 400))
    Y = (X[0] * X[1] + X[2] > 0).astype(np.float64)[np.newaxis, :]
    spec = NetworkSpec((20, 16, 8, 4, 1), "sigmoid", "bce")
    return make_case("deep", "20-16-8-4-1 sigmoid/bce on seeded synthetic data, m = 400",
                     (X, Y), initial_params(spec, "xavier"), spec, dtype, Training(learning_rate=0.5))


# The networks `gradparity bench` times one training step of.
BENCH_SHAPES: dict[str, Callable[[str], Case]] = {
    "seed": lambda dtype: build_case("seed-2layer", dtype),  # 2-4-1 sigmoid/bce, flower, m = 400
    "deep": _deep,
    "digits": lambda dtype: build_case("softmax-digits", dtype),  # 64-25-12-10 relu/softmax-ce, m = 1797
    "signs": lambda dtype: build_case("signs-shape", dtype),  # 12288-25-12-6 relu/softmax-ce, m = 1080
}
