"""Registry of backends. A framework is imported only inside its own module, and only
when that backend is loaded (normally inside its worker process)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field

from gradparity.core.errors import SpecError


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives, what it needs installed, the environment it runs under, and its
    rough cost: seconds for the default catalogue on one core (``run.backend_seconds`` of a
    ``gradparity run --json``), so the runner can start the costliest workers first.
    ``unused``: packages its framework imports only when they are installed, inside a
    ``try/except ImportError``, and the backend never needs; its worker hides them
    (``worker.hide``) instead of spending their import time."""

    module: str
    requires: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    seconds: float = 10.0
    unused: tuple[str, ...] = ()


# Keras imports matplotlib.pyplot (keras.src.visualization) and scikit-learn (keras.src.wrappers)
# when present, and TensorFlow imports Keras; the workers compute nothing there, so hiding them
# shortens each such worker's start (docs/explanation/performance.md).
KERAS_EXTRAS = ("matplotlib", "sklearn")


REGISTRY: dict[str, BackendEntry] = {
    "numpy": BackendEntry("gradparity.backends.numpy", seconds=2),
    "finite-diff": BackendEntry("gradparity.backends.finite_diff", seconds=6),
    "jax": BackendEntry("gradparity.backends.jax", ("jax", "optax"), {"JAX_ENABLE_X64": "1"}, seconds=7),
    "torch": BackendEntry("gradparity.backends.torch", ("torch",), seconds=6),
    "tensorflow": BackendEntry("gradparity.backends.tensorflow", ("tensorflow",), seconds=11, unused=KERAS_EXTRAS),
    "keras-tensorflow": BackendEntry("gradparity.backends.keras", ("keras", "tensorflow"),
                                     {"KERAS_BACKEND": "tensorflow"}, seconds=21, unused=KERAS_EXTRAS),
    "keras-jax": BackendEntry("gradparity.backends.keras", ("keras", "jax"),
                              {"KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1"}, seconds=15, unused=KERAS_EXTRAS),
    "keras-torch": BackendEntry("gradparity.backends.keras", ("keras", "torch"), {"KERAS_BACKEND": "torch"},
                                seconds=11, unused=KERAS_EXTRAS),
}
EXTRA_OF = {"optax": "jax"}  # a requirement installed by another package's extra
GROUPS = {"keras": ("keras-tensorflow", "keras-jax", "keras-torch"), "all": tuple(REGISTRY)}


def resolve(names: list[str] | None) -> list[str]:
    """Expand ``keras``/``all`` and check every name; ``None`` means every registered backend."""
    if not names:
        return list(REGISTRY)
    resolved: list[str] = []
    for name in names:
        if name not in REGISTRY and name not in GROUPS:
            raise SpecError(f"unknown backend {name!r}; choose from {', '.join([*REGISTRY, *GROUPS])}")
        for member in GROUPS.get(name, (name,)):
            if member not in resolved:
                resolved.append(member)
    return resolved


def missing_requirement(entry: BackendEntry) -> str | None:
    """Why ``entry`` cannot run here (a framework that is not installed), or None; imports nothing."""
    for package in entry.requires:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (pip install 'gradparity[{EXTRA_OF.get(package, package)}]')"
    return None


def load(name: str, device: str = "cpu", allow_tf32: bool = False, entry: BackendEntry | None = None):
    """Import the backend's module in this process and return its ``Adapter``. Sets the
    entry's environment first (``KERAS_BACKEND``, ``JAX_ENABLE_X64``), so call it in a fresh
    process, before the framework is first imported there."""
    entry = entry or REGISTRY[name]
    os.environ.update(entry.environment)
    module = importlib.import_module(entry.module)
    return module.Adapter(name, device=device, allow_tf32=allow_tf32)
