"""Generated networks: random architectures, data and parameters, drawn from one seed, that the
parity suite runs beside the catalogue (25 per dtype by default, 300 in the thorough profile) and
``scripts/ray_timing.py`` times."""

from __future__ import annotations

import itertools

import numpy as np

from gradparity.core.cases import Case, make_case
from gradparity.core.network import HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec
from gradparity.core.optimizers import OPTIMIZERS, Training
from gradparity.core.reference import initial_params

SEED = 20261129


def architecture(case: Case) -> tuple:
    """What makes two generated networks different: layers, activation, loss and m."""
    return (case.spec.layer_sizes, case.spec.hidden_activation, case.spec.loss, case.m)


def generated_training(number: int, m: int) -> Training:
    """The training of generated network ``number`` with ``m`` examples: every optimizer in turn,
    2 epochs, shuffled; every other network on mini-batches of about m / 2 (an odd m ends each
    epoch on a partial batch)."""
    optimizer = OPTIMIZERS[number % len(OPTIMIZERS)]
    batch_size = max(1, m // 2) if number % 2 else None
    return Training(optimizer, 0.01 if optimizer.startswith("adam") else 0.1, epochs=2, batch_size=batch_size)


def generated_cases(count: int, dtype: str, seed: int = SEED) -> list[Case]:
    """``count`` distinct random networks named ``generated-0``, ``generated-1``, ...: 1-4
    layers, widths 1-16, m 1-64, standard normal data (one-hot labels for softmax-ce, 0/1
    otherwise) and xavier parameters, cycling through every (hidden activation, loss) pair so that
    each appears, trained as ``generated_training`` says; the same networks for every dtype and,
    for one ``seed``, on every call."""
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
        case = make_case(f"generated-{len(cases)}", spec.describe(), (X, Y), params, spec, dtype,
                         generated_training(len(cases), m))
        cases.setdefault(architecture(case), case)
    return list(cases.values())
