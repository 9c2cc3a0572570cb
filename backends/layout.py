"""Framework-free helpers every adapter shares at the boundary: the device argument, the
name of the dtype a framework actually computed in, and the Keras (kernel, bias) layout."""

from __future__ import annotations

import re

import numpy as np

from core.errors import GradparityError

DEVICES = ("cpu", "cuda")
Params = dict[str, np.ndarray]


def check_device(device: str) -> str:
    """``device`` itself when it is ``cpu`` or ``cuda``; anything else is a GradparityError."""
    if device not in DEVICES:
        raise GradparityError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    return device


def no_gpu(framework: str) -> GradparityError:
    """The error raised when ``cuda`` is asked for and ``framework`` finds no GPU."""
    return GradparityError(f"cuda requested but {framework} sees no GPU")


def dtype_name(dtype: object) -> str:
    """``float64``/``float32``/... from any framework's dtype: ``torch.float64``,
    ``<dtype: 'float64'>``, ``dtype('float64')`` all name the same thing."""
    found = re.search(r"b?float\d+", str(dtype))
    return found.group() if found else str(dtype)


def to_dense(params: Params) -> list[np.ndarray]:
    """``[kernel1, bias1, kernel2, ...]`` for Dense layers: kernel = W.T ``(n_{l-1}, n_l)``,
    bias = b ravelled to ``(n_l,)``."""
    depth = sum(1 for name in params if name.startswith("W"))
    weights: list[np.ndarray] = []
    for layer in range(1, depth + 1):
        weights += [np.ascontiguousarray(params[f"W{layer}"].T), params[f"b{layer}"].ravel()]
    return weights


def from_dense(weights: list[np.ndarray]) -> Params:
    """The inverse of ``to_dense``: ``W[l]`` = kernel.T, ``b[l]`` = bias as a column."""
    params: Params = {}
    for index in range(0, len(weights), 2):
        layer = index // 2 + 1
        params[f"W{layer}"] = np.ascontiguousarray(np.asarray(weights[index]).T)
        params[f"b{layer}"] = np.asarray(weights[index + 1]).reshape(-1, 1)
    return params
