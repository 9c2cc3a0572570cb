"""How the reference trains: the optimizers, written like the derivation, and the mini-batches.

Each optimizer updates the parameters in place from the gradients g of one step, carrying its
state explicitly (``OptimizerState``: the step count t, counted from 1, and the moments m, v):

    sgd:       W -= lr g
    momentum:  v = mu v + g,  W -= lr v
    adam:      Kingma & Ba (2015), Algorithm 1:
               m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,
               m^ = m / (1 - b1^t),     v^ = v / (1 - b2^t),     W -= lr m^ / (sqrt(v^) + eps)
    adam-hat:  the paper's efficient form, the same m and v, then
               lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),           W -= lr_t m / (sqrt(v) + eps^)

The two Adam forms differ only where eps matters: eps^ = eps sqrt(1 - b2^t) makes them equal.
torch.optim.Adam and optax.adam are Algorithm 1 (default eps 1e-8); Keras's Adam and TF1's
AdamOptimizer are the efficient form (default eps^ 1e-7 and 1e-8).

Momentum as written here is torch.optim.SGD's, optax.sgd's (``trace``) and TF1's
MomentumOptimizer's (``accum``). Keras's SGD keeps u = mu u - lr g and adds it, W += u: with a
constant learning rate u = -lr v, the same update rounded differently.

Mini-batches: every epoch visits the m examples once, in data order (``shuffle = "none"``) or
in a permutation drawn from ``numpy.random.default_rng(seed)`` per epoch (``"seed"``), cut
into contiguous batches of ``batch_size``; the last, partial batch is kept, and its cost is
averaged over its own size. A full batch is always taken in data order: permuting it would
change only the order of summation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from gradparity.core.errors import GradparityError
from gradparity.core.record import words
from gradparity.core.results import Optimizer, Shuffle

Params = dict[str, np.ndarray]
Batch = slice | np.ndarray
OPTIMIZERS = words(Optimizer)
SHUFFLES = words(Shuffle)
HYPERPARAMETERS = {"sgd": ("learning_rate",), "momentum": ("learning_rate", "momentum"),
                   "adam": ("learning_rate", "beta1", "beta2", "epsilon"),
                   "adam-hat": ("learning_rate", "beta1", "beta2", "epsilon")}


@dataclass(frozen=True)
class Training:
    """An optimizer with its hyper-parameters and the batch schedule: ``epochs`` passes over
    the data in batches of ``batch_size`` examples (None: the full batch, one step per epoch),
    in the order ``shuffle`` and ``seed`` fix. Hyper-parameters an optimizer does not use are
    kept but ignored."""

    optimizer: str = "sgd"
    learning_rate: float = 0.5
    epochs: int = 10
    batch_size: int | None = None
    shuffle: str = "seed"
    seed: int = 0
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise GradparityError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.shuffle not in SHUFFLES:
            raise GradparityError(f"unknown shuffle {self.shuffle!r}; choose one of {', '.join(SHUFFLES)}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise GradparityError(f"learning rate must be a positive number, got {self.learning_rate}")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise GradparityError(f"epochs must be a positive integer, got {self.epochs}")
        if self.batch_size is not None and (int(self.batch_size) != self.batch_size or self.batch_size < 1):
            raise GradparityError(f"batch size must be a positive integer, got {self.batch_size}")
        for name in ("momentum", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise GradparityError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if not (np.isfinite(self.epsilon) and self.epsilon > 0):
            raise GradparityError(f"epsilon must be a positive number, got {self.epsilon}")

    def check_batch_size(self, m: int) -> None:
        """Raise unless the batch size fits the m examples."""
        if self.batch_size is not None and self.batch_size > m:
            raise GradparityError(f"batch size {self.batch_size} is larger than the {m} examples")

    def batches(self, m: int) -> list[Batch]:
        """The examples of every step in order: slices in data order, index arrays when shuffled."""
        self.check_batch_size(m)
        size = self.batch_size or m
        if size == m or self.shuffle == "none":
            epoch: list[Batch] = [slice(start, min(start + size, m)) for start in range(0, m, size)]
            return epoch * self.epochs
        generator = np.random.default_rng(self.seed)
        return [order[start:start + size] for _ in range(self.epochs)
                for order in [generator.permutation(m)] for start in range(0, m, size)]

    def steps(self, m: int) -> int:
        """Updates in all: epochs x ceil(m / batch size)."""
        return self.epochs * -(-m // (self.batch_size or m))

    def in_form(self, optimizer: str) -> Training:
        """The same training with another optimizer (the other Adam form), hyper-parameters kept."""
        return replace(self, optimizer=optimizer)

    def hyperparameters(self) -> dict[str, float]:
        """The hyper-parameters this optimizer uses, by name."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS[self.optimizer]}

    def to_dict(self, m: int) -> dict:
        """Plain data for a document: every field, the optimizer's own hyper-parameters and the
        number of steps."""
        return {**asdict(self), "hyperparameters": self.hyperparameters(), "steps": self.steps(m)}

    def describe(self) -> str:
        """``adam (learning_rate 0.001, beta1 0.9, ...), batches of 100, 10 epochs`` style."""
        settings = ", ".join(f"{name} {value:g}" for name, value in self.hyperparameters().items())
        batches = f"batches of {self.batch_size} ({self.shuffle} shuffle)" if self.batch_size else "full batch"
        return f"{self.optimizer} ({settings}), {batches}, {self.epochs} epochs"


def batch_size(batch: Batch, m: int) -> int:
    """The number of examples in ``batch``."""
    return len(range(m)[batch]) if isinstance(batch, slice) else len(batch)


def epoch_means(costs: list[float], sizes: list[int], epochs: int) -> list[float]:
    """The mean cost of each epoch, every step's cost weighted by its batch size (the figure
    Keras reports as an epoch's loss)."""
    per_epoch = len(costs) // epochs
    return [float(np.average(costs[e * per_epoch:(e + 1) * per_epoch], weights=sizes[e * per_epoch:(e + 1) * per_epoch]))
            for e in range(epochs)]


@dataclass
class OptimizerState:
    """What an optimizer carries from step to step: t (steps taken), first moments m (the
    velocity v of momentum lives in v) and second moments v, zero at the start."""

    t: int = 0
    m: Params = field(default_factory=dict)
    v: Params = field(default_factory=dict)

    @classmethod
    def zeros(cls, params: Params) -> OptimizerState:
        return cls(0, {name: np.zeros_like(value) for name, value in params.items()},
                   {name: np.zeros_like(value) for name, value in params.items()})


def sgd(params: Params, grads: Params, state: OptimizerState, training: Training) -> None:
    """W -= lr g."""
    for name, W in params.items():
        W -= training.learning_rate * grads[name]


def momentum(params: Params, grads: Params, state: OptimizerState, training: Training) -> None:
    """v = mu v + g, W -= lr v."""
    for name, W in params.items():
        v = state.v[name]
        v *= training.momentum
        v += grads[name]
        W -= training.learning_rate * v


def moments(grads: Params, state: OptimizerState, training: Training) -> None:
    """Adam's moments: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2."""
    for name, g in grads.items():
        state.m[name] *= training.beta1
        state.m[name] += (1 - training.beta1) * g
        state.v[name] *= training.beta2
        state.v[name] += (1 - training.beta2) * np.square(g)


def adam(params: Params, grads: Params, state: OptimizerState, training: Training) -> None:
    """Algorithm 1: m^ = m / (1 - b1^t), v^ = v / (1 - b2^t), W -= lr m^ / (sqrt(v^) + eps)."""
    moments(grads, state, training)
    correction1, correction2 = 1 - training.beta1 ** state.t, 1 - training.beta2 ** state.t
    for name, W in params.items():
        m_hat = state.m[name] / correction1
        v_hat = state.v[name] / correction2
        W -= training.learning_rate * m_hat / (np.sqrt(v_hat) + training.epsilon)


def adam_hat(params: Params, grads: Params, state: OptimizerState, training: Training) -> None:
    """The efficient form: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), W -= lr_t m / (sqrt(v) + eps^)."""
    moments(grads, state, training)
    lr_t = training.learning_rate * math.sqrt(1 - training.beta2 ** state.t) / (1 - training.beta1 ** state.t)
    for name, W in params.items():
        W -= lr_t * state.m[name] / (np.sqrt(state.v[name]) + training.epsilon)


UPDATES = {"sgd": sgd, "momentum": momentum, "adam": adam, "adam-hat": adam_hat}


def step(params: Params, grads: Params, state: OptimizerState, training: Training) -> None:
    """t = t + 1, then the update of ``training.optimizer``, in place. Scalars stay Python
    floats, so a float32 run computes every array operation in float32."""
    state.t += 1
    UPDATES[training.optimizer](params, grads, state, training)
