"""Known deviations: real, explained differences between a framework and the reference.

They are data, not tolerance. A check that breaks its tolerance is a known deviation only when
an entry here names its backend, case and dtype (glob patterns), the op probes of that run
(``core.diagnosis``) show at least one of the entry's operations deviating, and the check is
within the entry's bound for its quantity. A deviation that grows past its bound fails again;
an entry whose operations all probe clean where it applies no longer occurs: it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Iterable

import numpy as np

from gradparity.core.results import Check, Deviation


@dataclass(frozen=True)
class KnownDeviation:
    """Where it shows (globs over backend, case and dtype; ``optimizers``: the training
    optimizers it needs, empty for any), the framework operations that cause it, the cause in a
    sentence, and its bounds: ``bounds`` maps quantity globs to the largest relative error
    allowed (the first matching glob counts; ``dtype`` allows a dtype check), and ``within``
    names a dtype whose tolerance every other check of the quantities ``covers`` names must
    still meet (a float64 run computed partly in float32 must agree to float32 tolerance). ``measured`` says what was measured,
    with which command, and the headroom the bounds leave."""

    name: str
    backend: str
    case: str
    dtype: str
    ops: tuple[str, ...]
    cause: str
    measured: str
    bounds: tuple[tuple[str, float], ...] = ()
    within: str | None = None
    optimizers: tuple[str, ...] = ()
    covers: tuple[str, ...] = ("*",)  # the quantities (globs) ``within`` covers

    def applies(self, backend: str, case: str, dtype: str, optimizer: str = "sgd") -> bool:
        return (fnmatchcase(backend, self.backend) and fnmatchcase(case, self.case) and fnmatchcase(dtype, self.dtype)
                and (not self.optimizers or optimizer in self.optimizers))

    def bound(self, quantity: str) -> float | None:
        """The largest relative error allowed for ``quantity``, or None when it is not covered."""
        return next((bound for pattern, bound in self.bounds if fnmatchcase(quantity, pattern)), None)

    def explains(self, check: Check, asked: str) -> bool:
        """Whether the failed ``check`` is within this entry: its quantity's bound, or the
        tolerance of ``within`` (rtol and atol scale with eps, so that is an excess over the
        asked tolerance of at most eps(within) / eps(asked)); a NaN error is within nothing."""
        bound = self.bound(check.quantity)
        if bound is not None:
            return check.quantity == "dtype" or check.rel_error <= bound
        covered = any(fnmatchcase(check.quantity, pattern) for pattern in self.covers)
        if self.within and covered:
            return check.excess <= float(np.finfo(self.within).eps / np.finfo(asked).eps)
        return False

    def record(self) -> Deviation:
        """What a check it explains records of it."""
        return Deviation(self.name, list(self.ops), self.cause, self.measured)


KERAS_DEMOTION = (
    "Keras 3 computes some float64 operations in float32 on the {backend} backend ({ops}: the op "
    "probes show float32 outputs or float32 rounding for float64 inputs), so a float64 model "
    "agrees with the reference to float32 precision only."
)
KERAS_CLIPPING = (
    "Keras's cross-entropy on the {backend} backend clips the sigmoid's probabilities to "
    "[1e-7, 1 - 1e-7] (keras.config.epsilon()), so saturated outputs lose their loss and gradient, and the "
    "cost's tangent and H V with them; on the TensorFlow backend Keras recovers the logits instead and agrees."
)


CLIPPING_MEASURED = ("each bound is the relative error measured on the saturated case "
                     "(gradparity run --case saturated --backends {backend} --dtype {dtype} --order 2) plus 10%, "
                     "rounded up to two digits; quantities it leaves untouched are not covered")
DEMOTION_MEASURED = ("every check within the float32 tolerance; measured on the catalogue in float64 "
                     "(gradparity run --backends {backend} --dtype float64 --order 2): at most {excess:.2g} x the float64 "
                     "tolerance, {headroom:.0f} x below the float32 tolerance (eps32/eps64 = 5.4e8 x)")


KERAS_HYPERPARAMETERS = (
    "Keras's optimizers cast their Python-float hyper-parameters with keras.ops.cast(value, \"float64\"), which "
    "on the TensorFlow backend rounds them through float32 (0.9 -> 0.8999999761581421, 0.999 -> "
    "0.9990000128746033; the probe cast_scalar): a float64 run's momentum and Adam steps use float32-rounded "
    "momentum, beta1 and beta2, so its trajectory agrees with the reference to float32 precision only, while "
    "its cost, gradients and activations stay float64-accurate."
)
HYPERPARAMETERS_MEASURED = (
    "measured in float64 (gradparity run --backends keras-tensorflow --case keras-document --case tf-document "
    "--case momentum --dtype float64): final parameters up to {params:.2g} relative, step costs up to {costs:.2g}; "
    "at most {excess:.2g} x the float64 tolerance, {headroom:.0f} x below the float32 tolerance. A NumPy "
    "replay of Keras's update formulas with float32-rounded betas agrees with keras-tensorflow to 2.1e-15 "
    "(parity_tests/test_keras_training.py)."
)


def hyperparameter_rounding(params: float, costs: float, excess: float) -> KnownDeviation:
    """keras-tensorflow's float32-rounded optimizer hyper-parameters in float64, on training only."""
    headroom = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps) / excess
    return KnownDeviation("keras-tensorflow-float32-hyperparameters", "keras-tensorflow", "*", "float64",
                          ("cast_scalar",), KERAS_HYPERPARAMETERS,
                          HYPERPARAMETERS_MEASURED.format(params=params, costs=costs, excess=excess, headroom=headroom),
                          within="float32", optimizers=("momentum", "adam", "adam-hat"), covers=("trajectory *",))


def clipping(backend: str, dtype: str, bounds: dict[str, float]) -> KnownDeviation:
    """The saturated-case clipping entry of one Keras backend and dtype, with its measured bounds."""
    return KnownDeviation(f"{backend}-bce-clipping-{dtype}", backend, "saturated", dtype, ("bce_probabilities",),
                          KERAS_CLIPPING.format(backend=backend.removeprefix("keras-")),
                          CLIPPING_MEASURED.format(backend=backend, dtype=dtype), tuple(bounds.items()))


def demotion(backend: str, ops: tuple[str, ...], excess: float) -> KnownDeviation:
    """The float64-computed-in-float32 entry of one Keras backend, for every case."""
    headroom = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps) / excess
    return KnownDeviation(f"{backend}-float32-ops", backend, "*", "float64", ops,
                          KERAS_DEMOTION.format(backend=backend.removeprefix("keras-"), ops=", ".join(ops)),
                          DEMOTION_MEASURED.format(backend=backend, excess=excess, headroom=headroom),
                          (("dtype", float("inf")),), within="float32")


# the clipped saturated case's second order (gradparity run --order 2 --case saturated ...), the same for
# keras-jax and keras-torch in float64 and for keras-torch in float32
SATURATED_SECOND_ORDER = {"Jdot": 0.44, "HV W1": 0.11, "HV b1": 0.047, "HV W2": 0.059}
KNOWN_DEVIATIONS: list[KnownDeviation] = [
    clipping("keras-jax", "float64", {"cost": 0.49, "dW1": 0.4, "db1": 0.52, "dW2": 0.69, "db2": 0.46,
                                      "trajectory cost": 0.49, "trajectory W1": 0.018, "trajectory b1": 0.58,
                                      "trajectory W2": 7.8e-05, "trajectory b2": 8.8e-06,
                                      **SATURATED_SECOND_ORDER}),
    clipping("keras-jax", "float32", {"cost": 0.49, "dW1": 0.41, "db1": 0.58, "dW2": 0.73, "trajectory cost": 0.49,
                                      "trajectory W1": 0.018, "trajectory b1": 0.6,
                                      "Jdot": 0.46, "HV W1": 0.25, "HV b1": 0.084, "HV W2": 0.18, "HV b2": 0.096}),
    clipping("keras-torch", "float64", {"cost": 0.49, "dW1": 0.4, "db1": 0.52, "dW2": 0.69, "db2": 0.46,
                                        "trajectory cost": 0.49, "trajectory W1": 0.018, "trajectory b1": 0.58,
                                        "trajectory W2": 7.8e-05, "trajectory b2": 8.8e-06, **SATURATED_SECOND_ORDER}),
    clipping("keras-torch", "float32", {"cost": 0.49, "dW1": 0.4, "db1": 0.52, "dW2": 0.69, "db2": 0.46,
                                        "trajectory cost": 0.49, "trajectory W1": 0.018, "trajectory b1": 0.59,
                                        **SATURATED_SECOND_ORDER}),
    demotion("keras-jax", ("tanh", "tanh_grad", "mean", "bce_probabilities", "mse"), 4.1e7),
    demotion("keras-torch", ("matmul", "transpose_matmul", "mean", "bce_probabilities", "softmax_ce_probabilities",
                             "mse"), 1.5e7),
    hyperparameter_rounding(params=8.5e-6, costs=6.3e-7, excess=1.1e6),
]


def applicable(backend: str, case: str, dtype: str, optimizer: str = "sgd",
               registered: Iterable[KnownDeviation] | None = None) -> list[KnownDeviation]:
    """The entries of ``registered`` (default ``KNOWN_DEVIATIONS``) for this backend, case,
    dtype and training optimizer."""
    entries = KNOWN_DEVIATIONS if registered is None else registered
    return [entry for entry in entries if entry.applies(backend, case, dtype, optimizer)]


def explaining(check: Check, entries: list[KnownDeviation], deviating_ops: set[str], asked: str) -> KnownDeviation | None:
    """The first entry whose operations deviate here and whose bound covers ``check``."""
    return next((entry for entry in entries if deviating_ops & set(entry.ops) and entry.explains(check, asked)), None)


def apply(checks: list[Check], entries: list[KnownDeviation], deviating_ops: set[str], asked: str) -> list[Check]:
    """The checks with every failed one that an entry explains (``explaining``) turned into a
    known deviation that records the entry."""
    applied = []
    for check in checks:
        entry = explaining(check, entries, deviating_ops, asked) if check.verdict == "fail" else None
        applied.append(replace(check, verdict="known_deviation", deviation=entry.record()) if entry else check)
    return applied


def stale(probed: Iterable[tuple[list[KnownDeviation], set[str]]]) -> list[KnownDeviation]:
    """The entries that applied to a probed result — ``probed`` gives, per probed result, the
    entries that apply to it and the operations that deviated there — and whose operations
    deviated in none of them: the framework was fixed."""
    applied: dict[str, KnownDeviation] = {}
    occurred: set[str] = set()
    for entries, deviating_ops in probed:
        for entry in entries:
            applied[entry.name] = entry
            if deviating_ops & set(entry.ops):
                occurred.add(entry.name)
    return [entry for name, entry in applied.items() if name not in occurred]


def stale_hint(entry: KnownDeviation) -> str:
    """The one line that tells a maintainer to remove a deviation that no longer occurs."""
    return (f"registered deviation {entry.name!r} no longer occurs: its operations ({', '.join(entry.ops)}) "
            "now agree with NumPy; remove it from core/deviations.py")
