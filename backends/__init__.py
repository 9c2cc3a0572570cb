"""Registry of backends: the built-in ones and those of installed plugins. A framework is
imported only inside its own module, and only when that backend is loaded (normally inside its
worker process).

A plugin is a package that names its backends in the entry-point group ``gradparity.backends``,
each ``name = package.module:ATTRIBUTE``, the attribute a ``BackendEntry`` in a module that
imports no framework. Listing them reads package metadata only (``importlib.metadata``); a
plugin's description is imported when its backend is asked for, and a description that cannot
be imported, is not a ``BackendEntry`` or was built for another major version of the contract
(``contract.VERSION``) becomes an entry that is ``refused``: that backend's error, never the
run's. A name with a PEP 440 specifier (``jax==0.4.30``) is that backend pinned to a version
of its ``package``, run from an environment made for it (``gradparity.venvs``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field, replace

from packaging.requirements import InvalidRequirement, Requirement

from gradparity.backends.contract import ROLES, VERSION
from gradparity.core.deviations import KnownDeviation
from gradparity.core.errors import SpecError
from gradparity.core.results import split_requirement

GROUP = "gradparity.backends"


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives, what it needs installed, the environment it runs under, and its
    rough cost: seconds for the default catalogue on one core (``run.backend_seconds`` of a
    ``gradparity run --json``), so the runner can start the costliest workers first.
    ``unused``: packages its framework imports only when they are installed, inside a
    ``try/except ImportError``, and the backend never needs; its worker hides them
    (``worker.hide``) instead of spending their import time. ``role`` is one of
    ``contract.ROLES``; ``package`` the distribution a version specifier pins (default: the first
    of ``requires``; else a plugin's own package, or numpy for a built-in); ``contract`` the
    contract version it was written for; ``deviations`` the known deviations a plugin registers
    for its backend (``core.deviations.KnownDeviation``; gradparity's own are in that module).

    Filled in by gradparity, never by a plugin: ``origin`` (where it comes from: ``gradparity``
    or the plugin's package and version), ``pinned`` (the requirement of a versioned column,
    ``jax==0.4.30``), ``interpreter`` (the Python its worker starts with, where not this one) and
    ``refused`` (why it cannot run: the run records that as its error)."""

    module: str
    requires: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    seconds: float = 10.0
    unused: tuple[str, ...] = ()
    role: str = "framework"
    package: str | None = None
    contract: str = VERSION
    deviations: tuple[KnownDeviation, ...] = ()
    origin: str = "gradparity"
    pinned: str | None = None
    interpreter: str | None = None
    refused: str | None = None

    @property
    def framework(self) -> str:
        """The distribution whose version the backend's results depend on."""
        return self.package or (self.requires[0] if self.requires else "numpy")


# Keras imports matplotlib.pyplot (keras.src.visualization) and scikit-learn (keras.src.wrappers)
# when present, and TensorFlow imports Keras; the workers compute nothing there, so hiding them
# shortens each such worker's start (docs/explanation/performance.md).
KERAS_EXTRAS = ("matplotlib", "sklearn")


REGISTRY: dict[str, BackendEntry] = {
    "numpy": BackendEntry("gradparity.backends.numpy", seconds=2, role="control"),
    "finite-diff": BackendEntry("gradparity.backends.finite_diff", seconds=6, role="ground truth"),
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
GROUPS = {"keras": ("keras-tensorflow", "keras-jax", "keras-torch")}  # and "all": ``groups``


@dataclass(frozen=True)
class Plugin:
    """A backend an installed package declares (entry-point group ``GROUP``), read from its
    metadata alone: the backend's name, the description's ``module:ATTRIBUTE`` and the package."""

    name: str
    value: str
    package: str
    version: str

    @property
    def origin(self) -> str:
        return f"{self.package} {self.version}"


def plugins() -> dict[str, Plugin]:
    """The installed plugins' backends by name (a name declared twice: the first package's)."""
    found: dict[str, Plugin] = {}
    for point in importlib.metadata.entry_points(group=GROUP):
        distribution = point.dist
        package, version = (distribution.name, distribution.version) if distribution else ("unknown package", "?")
        found.setdefault(point.name, Plugin(point.name, point.value, package, version))
    return found


def known() -> list[str]:
    """Every backend name: the built-in ones, then the plugins' (a plugin cannot replace a built-in)."""
    return [*REGISTRY, *(name for name in plugins() if name not in REGISTRY)]


def groups() -> dict[str, tuple[str, ...]]:
    """Names that stand for several backends: ``keras`` and ``all`` (plugins included)."""
    return {**GROUPS, "all": tuple(known())}


def resolve(names: list[str] | None) -> list[str]:
    """Expand ``keras``/``all`` and check every name (a backend, or a backend with a version
    requirement); ``None`` means every backend, built-in and plugin."""
    every, named = known(), groups()
    if not names:
        return every
    resolved: list[str] = []
    for name in names:
        base, specifier = split_requirement(name)
        if base not in every and (specifier or base not in named):
            raise SpecError(f"unknown backend {base!r}; choose from {', '.join([*every, *named])}")
        for member in (name,) if specifier else named.get(name, (name,)):
            if member not in resolved:
                resolved.append(member)
    return resolved


def entry(name: str) -> BackendEntry:
    """The entry of backend ``name`` (``resolve``'s names): a built-in one, a plugin's
    description (refused, with the reason, where it cannot be used) or, for a name with a
    version requirement, its backend's entry ``pinned`` to that requirement."""
    base, specifier = split_requirement(name)
    if specifier:
        found = entry(base)
        return replace(found, pinned=requirement(found.framework, specifier, name))
    if name in REGISTRY:
        return REGISTRY[name]
    return plugin_entry(plugins()[name])


def requirement(package: str, specifier: str, name: str) -> str:
    """``package`` with ``specifier`` as a PEP 508 requirement; SpecError naming ``name`` where
    it is not one."""
    try:
        return str(Requirement(f"{package}{specifier}"))
    except InvalidRequirement as error:
        raise SpecError(f"{name!r} is not a backend with a version requirement (jax==0.4.30): "
                        f"{str(error).splitlines()[0]}") from None


def plugin_entry(plugin: Plugin) -> BackendEntry:
    """Import a plugin's description and check it: a ``BackendEntry`` for this contract's major
    version, with a known role; else an entry refused with the one-line reason."""
    where = f"plugin {plugin.name} ({plugin.origin})"
    module, _, attribute = plugin.value.partition(":")
    try:
        described = getattr(importlib.import_module(module.strip()), attribute.strip())
    except Exception as error:
        said = " ".join(str(error).split())  # on one line
        return BackendEntry("", origin=plugin.origin, refused=f"{where} failed to load {plugin.value}: "
                                                               f"{type(error).__name__}: {said}")
    if not isinstance(described, BackendEntry):
        problem = f"{plugin.value} is a {type(described).__name__}, not a gradparity.backends.BackendEntry"
    elif described.contract.split(".")[0] != VERSION.split(".")[0]:
        problem = f"it was built for adapter contract {described.contract}; this gradparity speaks {VERSION}"
    elif described.role not in ROLES:
        problem = f"its role {described.role!r} is not one of {', '.join(ROLES)}"
    elif not all(isinstance(deviation, KnownDeviation) for deviation in described.deviations):
        problem = "its deviations are not all gradparity.core.deviations.KnownDeviation entries"
    else:
        package = described.package or (None if described.requires else plugin.package)  # its own engine
        return replace(described, package=package, origin=plugin.origin, pinned=None, interpreter=None, refused=None)
    return BackendEntry("", origin=plugin.origin, refused=f"{where} is refused: {problem}")


def missing_requirement(entry: BackendEntry) -> str | None:
    """Why ``entry`` cannot run here (a framework that is not installed), or None; imports
    nothing. A pinned entry runs from its own environment, so nothing is missing here."""
    package = missing_package(entry)
    return f"{package} is not installed ({install_hint(entry, package)})" if package else None


def missing_package(entry: BackendEntry) -> str | None:
    """The first package ``entry`` needs that is not installed here (none for a pinned entry)."""
    if entry.pinned or entry.refused:
        return None
    return next((package for package in entry.requires if importlib.util.find_spec(package) is None), None)


def install_hint(entry: BackendEntry, package: str) -> str:
    """The command that installs ``package`` for ``entry``: gradparity's extra for a built-in backend."""
    if entry.origin == "gradparity":
        return f"pip install 'gradparity[{EXTRA_OF.get(package, package)}]'"
    return f"pip install {package}"


def load(name: str, device: str = "cpu", allow_tf32: bool = False, entry: BackendEntry | None = None):
    """Import the backend's module in this process and return its ``Adapter``. Sets the
    entry's environment first (``KERAS_BACKEND``, ``JAX_ENABLE_X64``), so call it in a fresh
    process, before the framework is first imported there."""
    entry = entry or REGISTRY[name]
    os.environ.update(entry.environment)
    module = importlib.import_module(entry.module)
    return module.Adapter(split_requirement(name)[0], device=device, allow_tf32=allow_tf32)
