"""Framework-free conventions every adapter shares at the boundary: the device argument, its
error when no GPU is there, where compiled programs are kept between runs, the name of the
dtype a framework actually computed in, and the batches of a training run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

import numpy as np

from gradparity.core.errors import GradparityError

if TYPE_CHECKING:
    from gradparity.core.cases import Case

Tensor = TypeVar("Tensor")

DEVICES = ("cpu", "cuda")


def check_device(device: str) -> str:
    """``device`` itself when it is ``cpu`` or ``cuda``; anything else is a GradparityError."""
    if device not in DEVICES:
        raise GradparityError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    return device


def no_gpu(framework: str) -> GradparityError:
    """The error raised when ``cuda`` is asked for and ``framework`` finds no GPU."""
    return GradparityError(f"cuda requested but {framework} sees no GPU")


CACHE_VARIABLE = "GRADPARITY_CACHE_DIR"


def cache_directory(framework: str) -> Path | None:
    """Where ``framework`` keeps what it compiled, between runs: ``$GRADPARITY_CACHE_DIR/<framework>``,
    by default under ``$XDG_CACHE_HOME`` (``~/.cache``)/gradparity; None when the variable is
    ``off``."""
    root = os.environ.get(CACHE_VARIABLE) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradparity"
    return None if str(root) == "off" else Path(root) / framework


def dtype_name(dtype: object) -> str:
    """``float64``/``float32``/... from any framework's dtype: ``torch.float64``,
    ``<dtype: 'float64'>``, ``dtype('float64')`` all name the same thing."""
    found = re.search(r"b?float\d+", str(dtype))
    return found.group() if found else str(dtype)


def step_batches(case: Case, convert: Callable[[np.ndarray], Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
    """Each training step's ``(X, Y)``: the columns of ``case.training.batches`` in order,
    converted to the framework by ``convert``; a batch that comes back every epoch (the same
    slice: the full batch, or unshuffled mini-batches) is converted once."""
    converted: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    for batch in case.training.batches(case.m):
        key = (batch.start, batch.stop) if isinstance(batch, slice) else None
        if key in converted:
            yield converted[key]
            continue
        pair = convert(np.ascontiguousarray(case.X[:, batch])), convert(np.ascontiguousarray(case.Y[:, batch]))
        if key is not None:
            converted[key] = pair
        yield pair
