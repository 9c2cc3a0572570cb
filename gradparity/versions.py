"""Between versions: where a run has one backend at several versions (``--backends
jax==0.4.30,jax``), how far the versions' own numbers are apart, case by case and quantity by
quantity, in units in the last place of the case's dtype (bit-identical said as such), and which
of the op probes, run in both, give different outputs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gradparity.backends.contract import Evaluation, Trajectory
from gradparity.core.cases import Case
from gradparity.core.results import OpGap, VersionComparison, VersionGap, split_requirement
from gradparity.runner import BackendOutcome


def version_groups(columns: list[str]) -> dict[str, list[str]]:
    """The backends that run as more than one column (``jax==0.4.30`` and ``jax``), each with
    its columns in the order asked."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        groups.setdefault(split_requirement(column)[0], []).append(column)
    return {backend: members for backend, members in groups.items() if len(members) > 1}


def between_versions(cases: list[Case], outcomes: dict[str, BackendOutcome]) -> list[VersionComparison]:
    """Each pair of neighbouring columns of a backend run at several versions, on every case
    both answered: every quantity's gap (``gap``) and their op probes side by side."""
    comparisons = []
    for backend, columns in version_groups(list(outcomes)).items():
        for first, second in zip(columns, columns[1:]):
            one, other = outcomes[first], outcomes[second]
            for index in sorted(set(one.outputs) & set(other.outputs)):
                case = cases[index]
                quantities = [gap(quantity, kind, a, b, case.dtype)
                              for quantity, kind, a, b in paired(one.outputs[index], other.outputs[index])]
                comparisons.append(VersionComparison(backend, [first, second], [one.version, other.version], case.name,
                                                     case.dtype, quantities,
                                                     op_gaps(one.probes.get(index), other.probes.get(index))))
    return comparisons


def paired(one: tuple, other: tuple) -> Iterator[tuple[str, str, object, object]]:
    """``(quantity, kind, a, b)`` for every quantity both answers hold, named as the checks are."""
    (evaluation, trajectory), (evaluation_b, trajectory_b) = one, other
    yield "cost", "cost", evaluation.cost, evaluation_b.cost
    yield from keyed("d", "gradients", evaluation.gradients, evaluation_b.gradients)
    for layer, (a, b) in enumerate(zip(evaluation.activations, evaluation_b.activations), 1):
        yield f"A{layer}", "activations", a, b
    if trajectory is not None and trajectory_b is not None:
        yield from trajectories(trajectory, trajectory_b)
    yield from second_orders(evaluation, evaluation_b)


def keyed(prefix: str, kind: str, a: dict, b: dict, suffix: str = "") -> Iterator[tuple[str, str, object, object]]:
    """The arrays both dictionaries hold, as ``prefix + key + suffix``."""
    for name in a:
        if name in b:
            yield f"{prefix}{name}{suffix}", kind, a[name], b[name]


def trajectories(a: Trajectory, b: Trajectory) -> Iterator[tuple[str, str, object, object]]:
    """The training costs and final parameters, where both followed the same optimizer form."""
    if a.optimizer == b.optimizer:
        yield "trajectory cost", "trajectory", a.costs, b.costs
        yield from keyed("trajectory ", "trajectory", a.params, b.params)


def second_orders(a: Evaluation, b: Evaluation) -> Iterator[tuple[str, str, object, object]]:
    """J̇, Ȧ[l] and H V of every second-order mode both answered, named ``quantity [mode]``."""
    answers = {answer.mode: answer for answer in b.second_order}
    for answer in a.second_order:
        other = answers.get(answer.mode)
        if other is None:
            continue
        if answer.cost_tangent is not None and other.cost_tangent is not None:
            yield f"Jdot [{answer.mode}]", "tangents", answer.cost_tangent, other.cost_tangent
        for layer, (x, y) in enumerate(zip(answer.tangents or (), other.tangents or ()), 1):
            yield f"Adot{layer} [{answer.mode}]", "tangents", x, y
        yield from keyed("HV ", "hvp", answer.hvp or {}, other.hvp or {}, f" [{answer.mode}]")


def gap(quantity: str, kind: str, a: object, b: object, dtype: str) -> VersionGap:
    """How far ``a`` and ``b`` are apart: the most ulps of ``dtype`` between two entries,
    |a - b| / spacing(max(|a|, |b|)), the largest |a - b|, and how many entries differ in any
    bit (NaN against NaN counts as equal; arrays of another shape differ everywhere)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        return VersionGap(quantity, kind, np.inf, np.inf, max(x.size, y.size), max(x.size, y.size))
    both_nan = np.isnan(x) & np.isnan(y)
    differing = (x.view(np.uint64) != y.view(np.uint64)) & ~both_nan
    if not differing.any():
        return VersionGap(quantity, kind, 0.0, 0.0, 0, int(x.size))
    difference = np.abs(x - y)[differing]
    spacing = np.spacing(np.maximum(np.abs(x), np.abs(y))[differing].astype(dtype)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return VersionGap(quantity, kind, float(np.max(difference / spacing)), float(np.max(difference)),
                          int(differing.sum()), int(x.size))


def op_gaps(one: list[dict] | str | None, other: list[dict] | str | None) -> list[OpGap]:
    """Every op probed in both versions, in the order probed (one case's probe plan is the
    same in both; an op can be probed twice, as sigmoid is for a hidden layer and the output):
    identical outputs (their digests) and each one's relative error against NumPy in float64."""
    if not isinstance(one, list) or not isinstance(other, list):
        return []
    return [OpGap(a["op"], a.get("digest") is not None and a.get("digest") == b.get("digest"),
                  [nan_if_none(a["rel_error"]), nan_if_none(b["rel_error"])])
            for a, b in zip(one, other) if a["op"] == b["op"]]


def nan_if_none(value: float | None) -> float:
    return np.nan if value is None else float(value)
