"""The small contract every framework adapter implements, in the reference layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from gradparity.core.cases import Case


@dataclass
class Evaluation:
    """One forward and backward pass: cost J, gradients keyed ``W1, b1, ...`` in the
    reference layout, the activations ``[A1, ..., AL]`` and the dtype actually computed in.
    ``checked`` marks the gradient entries actually computed, where that is a subset;
    ``second_order`` holds one answer per second-order mode, where the run asks for them."""

    cost: float
    gradients: dict[str, np.ndarray]
    activations: list[np.ndarray]
    dtype_used: str
    checked: dict[str, np.ndarray] | None = None
    second_order: list[SecondOrder] = field(default_factory=list)


@dataclass
class SecondOrder:
    """One second-order mode's answer along the case's direction V (``case.direction``): the
    cost's directional derivative J̇ = <∇J, V> and the tangents ``[Ȧ1, ..., ȦL]`` (a mode that
    computes ``tangents``), H V keyed ``W1, b1, ...`` in the reference layout (a mode that
    computes ``hvp``), and the dtype computed in; None where the mode does not compute it.
    ``examples`` marks the examples (columns of X) a ground truth used, where it used a subset.
    The worker fills in ``mode`` and ``computes`` (``Adapter.second_order_modes``), and
    ``skipped`` (``Unsupported``) or ``error`` for a mode that gave no answer."""

    cost_tangent: float | None = None
    tangents: list[np.ndarray] | None = None
    hvp: dict[str, np.ndarray] | None = None
    dtype_used: str | None = None
    examples: np.ndarray | None = None
    mode: str = ""
    computes: tuple[str, ...] = ()
    skipped: str | None = None
    error: str | None = None


@dataclass
class Trajectory:
    """``case.steps`` steps of the case's training (``core.optimizers.Training``) with the
    framework's own optimizer, on the case's batches in their order: J of each step on its
    batch before the update, the final parameters and the dtype computed in. ``optimizer`` is
    the form the framework's optimizer implements (``Adapter.optimizers``; the worker fills it
    in), which the reference is run in for the comparison."""

    costs: list[float]
    params: dict[str, np.ndarray]
    dtype_used: str
    optimizer: str | None = None


@dataclass(frozen=True)
class Primitives:
    """The single operations a framework's network is built from, as Python source, so that
    each can be probed alone (``core.diagnosis``) and pasted into an upstream reproducer.

    - ``preamble``: the lines a fresh process needs (environment, imports, switches such as x64).
    - ``tensor``: an expression turning the NumPy array ``{array}`` into a tensor of ``{dtype}``.
    - ``numpy``: an expression turning the result ``out`` back into a NumPy array.
    - ``ops``: op name (``core.diagnosis.OPS``) -> statements that assign ``out`` from the tensors
      ``tx``, ``ty`` and the Python float ``s``, in the reference layout (examples in columns).
    """

    preamble: str
    tensor: str
    numpy: str
    ops: dict[str, str]


def differentiable_ops(gradient: str, templates: dict[str, str]) -> dict[str, str]:
    """For each op template over ``{x}`` (and ``ty``): the op on ``tx`` and, as ``<name>_grad``,
    its derivative at ``tx`` by ``gradient`` (statements that differentiate ``{f}``, an
    expression of ``t``, and assign ``out``)."""
    ops = {}
    for name, template in templates.items():
        ops[name] = "out = " + template.format(x="tx")
        ops[f"{name}_grad"] = gradient.format(f=template.format(x="t"))
    return ops


def second_order_ops(hvp: str, templates: dict[str, str]) -> dict[str, str]:
    """For each op template over ``{x}`` (and ``ty``), as ``<name>_grad2``: the Hessian of the
    summed op at ``tx`` times ``tx``, H(tx) tx (g''(x) x for an activation), by ``hvp``
    (statements that differentiate ``{f}``, an expression of ``t``, twice, the second time
    along ``tx``, and assign ``out``)."""
    return {f"{name}_grad2": hvp.format(f=template.format(x="t")) for name, template in templates.items()}


VERSION = "1.0"
"""The version of this contract: ``Adapter``, the answers' dataclasses and ``Primitives``. The
major number changes when a method or field a backend relies on changes meaning or goes; the
minor one when an optional one is added. A plugin names the version it was written for
(``BackendEntry.contract``) and is refused where its major number is not this one's."""
ROLES = ("framework", "control", "ground truth")
"""What a backend's result proves (``Adapter.role``)."""
DEFAULT_OPTIMIZERS = {"sgd": "sgd"}
"""The ``optimizers`` of an adapter without an ``optimizers`` table: gradient descent only."""


class Unsupported(Exception):
    """A case an adapter cannot run (an optimizer its framework lacks): the backend is skipped
    on that case, with the message as the reason."""


class Adapter(Protocol):
    """A framework behind the contract. Each ``backends/<framework>.py`` defines
    ``class Adapter`` with this constructor and these methods; ``provides`` defaults to all
    four quantities (finite differences give only cost and gradients). ``role`` (default
    ``framework``) says what a result proves: ``control`` is the reference itself run through
    a worker (it checks the harness, not the maths); ``ground truth`` computes in float64
    whatever is asked (finite differences) and is judged with their own tolerance.
    ``optimizers`` maps each optimizer of ``core.optimizers.OPTIMIZERS`` that the framework can
    run to the form it implements (Adam: ``adam`` = Algorithm 1 or ``adam-hat`` = the
    efficient form, taken from the framework's source); a case whose optimizer is missing
    there is skipped for this backend, with the reason. ``second_order_modes`` names each way
    the framework differentiates twice or forwards (``jvp``, ``fwd-over-rev``, ...) with what it
    computes (``tangents``: J̇ and Ȧ[l]; ``hvp``: H V); ``gradparity run --order 2`` asks every
    mode for every case, and each is judged as a column of its own."""

    provides: tuple[str, ...]
    """Which of ``cost``, ``gradients``, ``activations`` and ``trajectory`` it computes."""
    role: str
    """One of ``ROLES``."""
    optimizers: dict[str, str]
    """Each optimizer asked mapped to the form its framework runs (default ``{"sgd": "sgd"}``)."""

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None: ...

    second_order_modes: dict[str, tuple[str, ...]]
    """Each second-order mode mapped to what it computes, of ``tangents`` and ``hvp`` (optional)."""

    def version(self) -> str:
        """The framework's version string, e.g. ``torch 2.13.0``."""

    def compile_seconds(self) -> float | None:
        """Seconds this process has spent compiling so far, as the framework counts it (tracing,
        lowering, XLA compilation or loading from its cache); 0.0 where nothing is compiled;
        None where the framework does not say (optional: without it, None)."""

    def flags(self) -> dict[str, str]:
        """Settings that move numbers (x64, TF32, oneDNN, Keras backend and epsilon...)."""

    def evaluate(self, case: Case) -> Evaluation:
        """Cost, gradients and activations of ``case.params`` on ``case.X, case.Y``."""

    def train(self, case: Case) -> Trajectory:
        """``case.training`` from ``case.params``: the framework's optimizer, on the batches
        ``case.training.batches(case.m)`` in that order, J recorded before each update."""

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode``'s answer along ``case.direction`` at ``case.params`` on ``case.X,
        case.Y`` (raises ``Unsupported`` with the reason where the mode cannot run here)."""

    def primitives(self) -> Primitives:
        """The framework's single operations (optional: without it nothing can be probed)."""

    def bench_modes(self) -> dict[str, str | None]:
        """Each timing mode (``eager``, ``compiled``) mapped to None when it runs here, or to
        the reason it does not (e.g. ``torch.compile`` unavailable on this CPU)."""

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """A zero-argument callable doing one full training step (forward, backward, update)
        on data already placed on the device, blocking until the result is ready."""
