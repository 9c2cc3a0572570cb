"""Framework-free conventions every adapter shares at the boundary: the device argument, its
error when no GPU is there, and the name of the dtype a framework actually computed in."""

from __future__ import annotations

import re

from gradparity.core.errors import GradparityError

DEVICES = ("cpu", "cuda")


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
