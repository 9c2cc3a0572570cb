"""The reference's optimizers and batch order against an independent implementation written
here from Kingma & Ba (2015) and the momentum equations: whole-network parameter vectors,
explicit step counts, no shared code with ``core.optimizers`` beyond the gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec
from gradparity.core.optimizers import OPTIMIZERS, Training, epoch_means
from gradparity.core.reference import cost_and_gradients, initial_params, train

RTOL = 1e-12


def flat(params: dict) -> np.ndarray:
    return np.concatenate([params[name].ravel() for name in sorted(params)])


def unflat(vector: np.ndarray, like: dict) -> dict:
    out, start = {}, 0
    for name in sorted(like):
        size = like[name].size
        out[name] = vector[start:start + size].reshape(like[name].shape).copy()
        start += size
    return out


def independent_order(m: int, batch: int | None, epochs: int, shuffle: str, seed: int) -> list[np.ndarray]:
    """Index arrays of every step: a full batch is the data order; otherwise each epoch is
    arange(m) or default_rng(seed)'s next permutation, cut every ``batch`` examples."""
    if batch is None or batch == m:
        return [np.arange(m)] * epochs
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(epochs):
        order = np.arange(m) if shuffle == "none" else rng.permutation(m)
        steps += np.split(order, np.arange(batch, m, batch))
    return steps


def independent_train(params: dict, X, Y, spec: NetworkSpec, training: Training) -> tuple[list[float], dict]:
    """The same training as one flat parameter vector: theta, m, v updated by the paper's formulas."""
    theta = flat(params)
    first, second = np.zeros_like(theta), np.zeros_like(theta)
    lr, b1, b2, eps, mu = (training.learning_rate, training.beta1, training.beta2, training.epsilon,
                           training.momentum)
    costs = []
    steps = independent_order(X.shape[1], training.batch_size, training.epochs, training.shuffle, training.seed)
    for t, index in enumerate(steps, start=1):
        J, grads, _cache = cost_and_gradients(unflat(theta, params), X[:, index], Y[:, index], spec)
        costs.append(J)
        g = flat(grads)
        if training.optimizer == "sgd":
            theta = theta - lr * g
        elif training.optimizer == "momentum":
            first = mu * first + g
            theta = theta - lr * first
        else:
            first = b1 * first + (1 - b1) * g
            second = b2 * second + (1 - b2) * g * g
            if training.optimizer == "adam":
                theta = theta - lr * (first / (1 - b1 ** t)) / (np.sqrt(second / (1 - b2 ** t)) + eps)
            else:
                step_size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                theta = theta - step_size * first / (np.sqrt(second) + eps)
    return costs, unflat(theta, params)


def random_network(rng: np.random.Generator, loss: str) -> tuple[NetworkSpec, np.ndarray, np.ndarray, dict]:
    sizes = [int(n) for n in rng.integers(2, 9, size=int(rng.integers(2, 5)))]
    activation = ("sigmoid", "tanh", "relu")[int(rng.integers(3))]
    spec = NetworkSpec(tuple(sizes), activation, loss)
    m = int(rng.integers(5, 40))
    X = rng.standard_normal((sizes[0], m))
    Y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], m)] if loss == "softmax-ce" else \
        rng.integers(0, 2, (sizes[-1], m)).astype(float)
    return spec, X, Y, initial_params(spec, "xavier", seed=int(rng.integers(1000)))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("trial", range(6))
def test_reference_training_equals_an_independent_implementation(optimizer, trial):
    rng = np.random.default_rng(1000 * trial + OPTIMIZERS.index(optimizer))
    spec, X, Y, params = random_network(rng, ("bce", "softmax-ce", "mse")[trial % 3])
    m = X.shape[1]
    batch = (None, int(rng.integers(1, m + 1)), max(1, m // 3))[trial % 3]
    training = Training(optimizer, learning_rate=float(rng.uniform(0.001, 0.3)), epochs=int(rng.integers(1, 4)),
                        batch_size=batch, shuffle=("seed", "none")[trial % 2], seed=trial,
                        momentum=float(rng.uniform(0, 0.99)), beta1=float(rng.uniform(0.5, 0.95)),
                        beta2=float(rng.uniform(0.9, 0.9999)), epsilon=float(10 ** rng.uniform(-8, -3)))
    trained = train(params, X, Y, spec, training)
    costs, final = independent_train(params, X, Y, spec, training)
    assert len(trained.costs) == len(costs) == training.steps(m)
    np.testing.assert_allclose(trained.costs, costs, rtol=RTOL)
    for name, value in final.items():
        np.testing.assert_allclose(trained.params[name], value, rtol=RTOL, atol=RTOL * np.abs(value).max())
        assert not np.array_equal(trained.params[name], params[name]) or name.startswith("b"), name


def test_batches_cover_every_example_once_per_epoch_and_keep_the_partial_one():
    training = Training("sgd", epochs=3, batch_size=32)
    batches = training.batches(1080)
    assert len(batches) == 3 * 34 == training.steps(1080)
    sizes = [len(range(1080)[b]) if isinstance(b, slice) else len(b) for b in batches]
    assert sizes == ([32] * 33 + [24]) * 3
    epochs = [np.concatenate(batches[e * 34:(e + 1) * 34]) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(1080))
    assert not np.array_equal(epochs[0], epochs[1])  # seeded: a new permutation each epoch
    unshuffled = Training("sgd", epochs=2, batch_size=32, shuffle="none").batches(1080)
    assert [(b.start, b.stop) for b in unshuffled[:2]] == [(0, 32), (32, 64)] and unshuffled[33] == slice(1056, 1080)
    assert Training("sgd", epochs=2).batches(50) == [slice(0, 50)] * 2  # the full batch is never permuted


def test_a_partial_batch_is_averaged_over_its_own_size():
    rng = np.random.default_rng(7)
    spec, X, Y, params = random_network(rng, "bce")
    m = X.shape[1]
    training = Training("sgd", learning_rate=0.1, epochs=1, batch_size=m - 2, shuffle="none")
    trained = train(params, X, Y, spec, training)
    assert trained.batch_sizes == [m - 2, 2]
    # the last step's cost is the mean loss of its two examples, taken after the first update
    first_grads = cost_and_gradients(params, X[:, :m - 2], Y[:, :m - 2], spec)[1]
    updated = {name: params[name] - 0.1 * first_grads[name] for name in params}
    per_example = [cost_and_gradients(updated, X[:, [i]], Y[:, [i]], spec)[0] for i in (m - 2, m - 1)]
    assert trained.costs[1] == pytest.approx(np.mean(per_example), rel=1e-14)
    assert epoch_means(trained.costs, trained.batch_sizes, 1) == pytest.approx(
        [(trained.costs[0] * (m - 2) + trained.costs[1] * 2) / m], rel=1e-14)


def test_the_two_adam_forms_meet_when_epsilon_vanishes_and_part_when_it_matters():
    rng = np.random.default_rng(3)
    spec, X, Y, params = random_network(rng, "mse")
    ends = {}
    for epsilon in (1e-300, 1e-2):
        for form in ("adam", "adam-hat"):
            ends[form, epsilon] = train(params, X, Y, spec, Training(form, 0.01, epochs=5, epsilon=epsilon)).params
    gap = lambda epsilon: max(np.max(np.abs(ends["adam", epsilon][n] - ends["adam-hat", epsilon][n]))  # noqa: E731
                              for n in params)
    assert gap(1e-300) < 1e-15 and gap(1e-2) > 1e-6


def test_float32_training_stays_float32():
    rng = np.random.default_rng(5)
    spec, X, Y, params = random_network(rng, "bce")
    cast = {name: value.astype(np.float32) for name, value in params.items()}
    for optimizer in OPTIMIZERS:
        trained = train(cast, X.astype(np.float32), Y.astype(np.float32), spec, Training(optimizer, 0.01, epochs=2))
        assert all(value.dtype == np.float32 for value in trained.params.values()), optimizer


@pytest.mark.parametrize("fields, message", [
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; choose one of sgd, momentum, adam, adam-hat"),
    ({"shuffle": "random"}, "unknown shuffle 'random'"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"batch_size": 0}, "batch size must be a positive integer, got 0"),
    ({"beta1": 1.0}, r"beta1 must lie in \[0, 1\), got 1.0"),
    ({"beta2": -0.1}, r"beta2 must lie in \[0, 1\), got -0.1"),
    ({"momentum": 1.5}, r"momentum must lie in \[0, 1\), got 1.5"),
    ({"epsilon": 0.0}, "epsilon must be a positive number, got 0.0"),
    ({"learning_rate": -1.0}, "learning rate must be a positive number"),
])
def test_bad_training_settings_name_the_problem(fields, message):
    with pytest.raises(GradparityError, match=message):
        Training(**fields)


def test_a_batch_larger_than_the_data_is_refused():
    with pytest.raises(GradparityError, match="batch size 500 is larger than the 400 examples"):
        Training(batch_size=500).batches(400)
