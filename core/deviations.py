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
    error measured (with ``python -m core.cli run``), which is also its bound."""

    backend: str
    case: str
    dtype: str
    quantity: str
    cause: str
    measured: float

    def matches(self, backend: str, case: str, dtype: str, quantity: str) -> bool:
        return all(fnmatchcase(value, pattern) for value, pattern in (
            (backend, self.backend), (case, self.case), (dtype, self.dtype), (quantity, self.quantity)))

    def to_dict(self, backend: str, case: str, quantity: str, rel_error: float) -> dict:
        return {"backend": backend, "case": case, "quantity": quantity, "cause": self.cause,
                "measured": f"{rel_error:.2g} relative (recorded bound {self.measured:.2g})"}


KNOWN_DEVIATIONS: list[KnownDeviation] = []


def find(backend: str, case: str, dtype: str, quantity: str, rel_error: float) -> KnownDeviation | None:
    """The registered deviation that explains ``rel_error`` here, or None."""
    for deviation in KNOWN_DEVIATIONS:
        if deviation.matches(backend, case, dtype, quantity) and rel_error <= deviation.measured:
            return deviation
    return None
