"""Known deviations: real, explained differences between a framework and the reference.

They are data, not tolerance: a check that breaks its tolerance is a known deviation only
when an entry here names its backend, case, dtype and quantity, and its measured error is
within the entry's recorded bound. A deviation that grows past its bound fails again.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class KnownDeviation:
    """Glob patterns for where it shows, its cause in one sentence, and the largest relative
    error measured (with ``gradparity run``), which is also its bound."""

    backend: str
    case: str
    dtype: str
    quantities: tuple[str, ...]
    cause: str
    measured: float

    def matches(self, backend: str, case: str, dtype: str, quantity: str) -> bool:
        return (fnmatchcase(backend, self.backend) and fnmatchcase(case, self.case) and fnmatchcase(dtype, self.dtype)
                and any(fnmatchcase(quantity, pattern) for pattern in self.quantities))

    def to_dict(self, backend: str, case: str, quantity: str, rel_error: float) -> dict:
        return {"backend": backend, "case": case, "quantity": quantity, "cause": self.cause,
                "measured": f"{rel_error:.2g} relative (recorded bound {self.measured:.2g})"}


KERAS_CLIPPING = (
    "Keras's cross-entropy on the {backend} backend clips the sigmoid's probabilities to "
    "[1e-7, 1 - 1e-7] (keras.config.epsilon()), so saturated outputs lose their loss and gradient; "
    "on the TensorFlow backend Keras recovers the logits instead and agrees."
)
SATURATED_QUANTITIES = ("cost", "dW*", "db*", "trajectory *")

KNOWN_DEVIATIONS: list[KnownDeviation] = [
    KnownDeviation("keras-jax", "saturated", "*", SATURATED_QUANTITIES, KERAS_CLIPPING.format(backend="JAX"), 0.67),
    KnownDeviation("keras-torch", "saturated", "*", SATURATED_QUANTITIES, KERAS_CLIPPING.format(backend="torch"), 0.63),
]


def find(backend: str, case: str, dtype: str, quantity: str, rel_error: float) -> KnownDeviation | None:
    """The registered deviation that explains ``rel_error`` here, or None."""
    for deviation in KNOWN_DEVIATIONS:
        if deviation.matches(backend, case, dtype, quantity) and rel_error <= deviation.measured:
            return deviation
    return None
