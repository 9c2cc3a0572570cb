"""The network specification shared by the reference and every backend.

A network is a list of layer sizes ``[n0, n1, ..., nL]``, a hidden activation
used on layers 1..L-1 and a loss that fixes the output activation:

    bce         sigmoid output, J = -1/m * sum(Y log A + (1 - Y) log(1 - A))
    softmax-ce  softmax output, J = -1/m * sum(Y log A)
    mse         sigmoid output, J = 1/(nL m) * sum((A - Y)^2)

Parameters travel as a plain dict ``{"W1": (n1, n0), "b1": (n1, 1), ...}`` in the
reference layout; that dict is also the ``.npz`` format of ``--params`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradparity.core.errors import ParamsError, SpecError

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("bce", "softmax-ce", "mse")
OUTPUT_ACTIVATION = {"bce": "sigmoid", "softmax-ce": "softmax", "mse": "sigmoid"}
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class NetworkSpec:
    """Layer sizes ``[n0, ..., nL]``, hidden activation and loss of a dense network."""

    layer_sizes: tuple[int, ...]
    hidden_activation: str = "sigmoid"
    loss: str = "bce"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_sizes", tuple(int(n) for n in self.layer_sizes))
        if len(self.layer_sizes) < 2:
            raise SpecError(f"a network needs an input and an output layer, got sizes {list(self.layer_sizes)}")
        for index, size in enumerate(self.layer_sizes):
            if size < 1:
                raise SpecError(f"layer {index} has {size} units; every layer needs at least 1")
        check_choice("activation", self.hidden_activation, HIDDEN_ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        if self.loss == "softmax-ce" and self.layer_sizes[-1] < 2:
            raise SpecError("loss softmax-ce needs at least 2 output units (one per class)")

    @property
    def depth(self) -> int:
        """L, the number of layers with parameters."""
        return len(self.layer_sizes) - 1

    @property
    def output_activation(self) -> str:
        """The activation of the output layer, fixed by the loss: sigmoid or softmax."""
        return OUTPUT_ACTIVATION[self.loss]

    def activation(self, layer: int) -> str:
        """Activation g of layer ``layer`` (1-based): hidden below L, output at L."""
        return self.output_activation if layer == self.depth else self.hidden_activation

    def param_shapes(self) -> dict[str, tuple[int, int]]:
        """``{"W1": (n1, n0), "b1": (n1, 1), ...}`` in layer order."""
        shapes: dict[str, tuple[int, int]] = {}
        for layer in range(1, self.depth + 1):
            shapes[f"W{layer}"] = (self.layer_sizes[layer], self.layer_sizes[layer - 1])
            shapes[f"b{layer}"] = (self.layer_sizes[layer], 1)
        return shapes

    def max_reduction(self, m: int) -> int:
        """Longest sum in forward or backward: the widest fan-in, fan-out or m."""
        return max(max(self.layer_sizes), m)

    def describe(self) -> str:
        """``2-4-1 sigmoid/bce`` style one-line summary."""
        sizes = "-".join(str(n) for n in self.layer_sizes)
        return f"{sizes} {self.hidden_activation}/{self.loss}"


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise SpecError naming ``value`` unless it is one of ``choices``."""
    if value not in choices:
        raise SpecError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def check_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for ``float64``/``float32``; anything else is a SpecError."""
    check_choice("dtype", str(dtype), DTYPES)
    return np.dtype(dtype)


def spec_from_params(params: dict[str, np.ndarray], hidden_activation: str, loss: str) -> NetworkSpec:
    """Read the layer sizes off ``W1 .. WL`` and check every ``W``/``b`` shape against them."""
    depth = sum(1 for key in params if key.startswith("W"))
    if depth == 0:
        raise ParamsError("parameters hold no W1; expected W1, b1, ..., WL, bL")
    sizes = [np.shape(params.get("W1", np.empty((0, 0))))[-1]]
    for layer in range(1, depth + 1):
        if f"W{layer}" not in params:
            raise ParamsError(f"parameters lack W{layer} (found {', '.join(sorted(params))})")
        sizes.append(np.shape(params[f"W{layer}"])[0])
    spec = NetworkSpec(tuple(sizes), hidden_activation, loss)
    check_params(spec, params)
    return spec


def check_params(spec: NetworkSpec, params: dict[str, np.ndarray]) -> None:
    """Raise ParamsError unless ``params`` holds exactly the spec's finite W/b arrays."""
    expected = spec.param_shapes()
    extra = sorted(set(params) - set(expected))
    if extra:
        raise ParamsError(f"unexpected parameters {', '.join(extra)} for a {spec.depth}-layer network")
    for name, shape in expected.items():
        if name not in params:
            raise ParamsError(f"parameters lack {name}")
        got = np.shape(params[name])
        if got != shape:
            raise ParamsError(f"{name} has shape {got}, expected {shape} for layers {list(spec.layer_sizes)}")
        if not np.all(np.isfinite(params[name])):
            raise ParamsError(f"{name} holds NaN or infinite values")
