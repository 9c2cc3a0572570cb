"""Op probes, run in a backend's worker: each operation of ``core.diagnosis.probe_plan`` through
the adapter's ``Primitives`` source, measured against NumPy in float64; a deviating op gets a
standalone reproducer, kept only when it, run on its own, fails its assert as the probe did."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from gradparity.backends.layout import dtype_name
from gradparity.core.diagnosis import ProbeInput, op_tolerance, probe_plan, probe_source, small

FULL_INPUTS_AT_MOST = 256  # elements a reproducer may write out in full


def probe_case(adapter, case) -> list[dict]:
    """One record per op the adapter's ``primitives()`` table covers (none without a table):
    ``op, source, input_dtype, output_dtype, rel_error, tolerance, deviates, reproducer`` and
    ``digest`` (SHA-256 of the output's bytes, first 16 hex digits: the same op at two framework
    versions gave the same output when it agrees); the first deviating op whose reproducer fails
    alone carries it."""
    primitives = adapter.primitives() if hasattr(adapter, "primitives") else None
    if primitives is None:
        return []
    plan = [probe for probe in probe_plan(case.params, case.X, case.Y, case.spec, case.direction is not None)
            if probe.op in primitives.ops]
    records = [probe_op(primitives, probe, case.dtype) for probe in plan]
    for probe, record in zip(plan, records):
        if record["deviates"] and "error" not in record:
            record["reproducer"] = reproducer(primitives, probe, case.dtype)
            if record["reproducer"]:
                break
    return records


def probe_op(primitives, probe: ProbeInput, dtype: str) -> dict:
    """Run one op on the case's arrays and measure it; an op that raises deviates, with why."""
    record = {"op": probe.op, "source": primitives.ops[probe.op].strip().replace("{dtype}", dtype),
              "input_dtype": dtype, "output_dtype": None, "rel_error": None,
              "tolerance": op_tolerance(dtype, probe.n), "deviates": True, "reproducer": None}
    namespace = {name: value if isinstance(value, float) else np.asarray(value, np.float64)
                 for name, value in probe.inputs.items()}
    try:
        failed = execute(probe_source(primitives, probe, dtype), namespace)
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
        return record
    error = namespace["error"]
    got = np.ascontiguousarray(namespace["got"])
    record.update(output_dtype=dtype_name(got.dtype), rel_error=error if np.isfinite(error) else None,
                  deviates=failed, digest=hashlib.sha256(got.tobytes()).hexdigest()[:16])
    return record


def execute(source: str, namespace: dict) -> bool:
    """Run ``source`` in ``namespace``; True when its asserts fail."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            exec(compile(source, "<probe>", "exec"), namespace)
        except AssertionError:
            return True
    return False


def reproducer(primitives, probe: ProbeInput, dtype: str) -> str | None:
    """The standalone source on a 4 x 8 corner of the inputs, or on all of them (when they are
    few) where the corner does not show the defect; None when neither fails alone."""
    few = sum(np.size(value) for value in probe.inputs.values()) <= FULL_INPUTS_AT_MOST
    for candidate in (small(probe), probe) if few else (small(probe),):
        source = probe_source(primitives, candidate, dtype, standalone=True)
        try:
            if execute(source, {}):
                return source
        except Exception:
            return None
    return None
