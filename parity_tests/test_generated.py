"""Generated networks through every backend, for real: at least 25 distinct architectures per
backend and dtype (depth 1-4, widths 1-16, m 1-64, every hidden activation and every loss),
all of them in one worker run per backend. ``GRADPARITY_FUZZ=thorough`` runs 300 per dtype
(a nightly job); the test prints how many distinct architectures each backend saw."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from gradparity.backends import REGISTRY, missing_requirement
from gradparity.core import deviations
from gradparity.core.cases import Case, make_case
from gradparity.core.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec
from gradparity.core.reference import initial_params
from gradparity.engine import RunOptions, run

PROFILES = {"default": 25, "thorough": 300}
PROFILE = os.environ.get("GRADPARITY_FUZZ", "default")
SEED = 20261129


def architecture(case: Case) -> tuple:
    """What makes two generated networks different: layers, activation, loss and m."""
    return (case.spec.layer_sizes, case.spec.hidden_activation, case.spec.loss, case.m)


def generated_cases(count: int, dtype: str, seed: int = SEED) -> list[Case]:
    """``count`` distinct random networks with data and xavier parameters, cycling through every
    (hidden activation, loss) pair so that each appears; the same networks for every dtype."""
    rng = np.random.default_rng(seed)
    pairs = itertools.cycle(itertools.product(HIDDEN_ACTIVATIONS, LOSSES))
    cases: dict[tuple, Case] = {}
    while len(cases) < count:
        activation, loss = next(pairs)
        sizes = [int(n) for n in rng.integers(1, 17, size=int(rng.integers(2, 6)))]
        sizes[-1] = max(sizes[-1], 2) if loss == "softmax-ce" else sizes[-1]
        spec, m = NetworkSpec(tuple(sizes), activation, loss), int(rng.integers(1, 65))
        X = rng.standard_normal((sizes[0], m))
        labels = rng.integers(0, sizes[-1], m)
        Y = np.eye(sizes[-1])[:, labels] if loss == "softmax-ce" else rng.integers(0, 2, (sizes[-1], m)) * 1.0
        params = initial_params(spec, "xavier", seed=int(rng.integers(2**31)))
        case = make_case(f"generated-{len(cases)}", spec.describe(), X, Y, params, spec, dtype, 0.1, 3)
        cases.setdefault(architecture(case), case)
    return list(cases.values())


def test_generated_networks_cover_every_activation_loss_and_shape_range():
    cases = generated_cases(PROFILES["default"], "float64")
    assert len({architecture(case) for case in cases}) == PROFILES["default"]
    assert {case.spec.hidden_activation for case in cases} == set(HIDDEN_ACTIVATIONS)
    assert {case.spec.loss for case in cases} == set(LOSSES)
    assert {case.spec.depth for case in cases} == {1, 2, 3, 4}
    assert max(max(case.spec.layer_sizes) for case in cases) > 12 and max(case.m for case in cases) > 48


@pytest.mark.parametrize("backend", list(REGISTRY))
def test_generated_networks_agree_on_every_backend(backend):
    reason = missing_requirement(REGISTRY[backend])
    if reason:
        pytest.skip(reason)
    count = PROFILES[PROFILE]
    cases = [case for dtype in DTYPES for case in generated_cases(count, dtype)]
    document = run(cases, RunOptions(backends=[backend], timeout=1800))
    seen = {dtype: {architecture(case) for case, result in zip(cases, document["results"])
                    if case.dtype == dtype and result["backends"][backend]["checks"]} for dtype in DTYPES}
    print(f"{backend}: {', '.join(f'{len(seen[d])} distinct architectures in {d}' for d in DTYPES)}")
    assert all(len(architectures) >= count for architectures in seen.values()), seen
    for result in document["results"]:
        outcome = result["backends"][backend]
        assert outcome["status"] in ("pass", "known_deviation"), f"{result['description']}: {outcome['reason']}"
        for check in outcome["checks"]:
            if check["verdict"] == "known_deviation":
                entry = next(e for e in deviations.KNOWN_DEVIATIONS if e.name == check["deviation"]["name"])
                assert entry.explains(check, result["dtype"])
                assert check["quantity"] == "dtype" or check["excess"] > 1, "a known deviation must deviate"
