"""The hand-derived reference: the document's formulas, its init, dtypes, numerical safety,
and agreement with central finite differences on generated architectures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradparity.core.errors import GradparityError, ParamsError, SpecError
from gradparity.core.gradcheck import gradcheck
from gradparity.core.network import NetworkSpec, spec_from_params
from gradparity.core.optimizers import OptimizerState, Training, sgd
from gradparity.core.reference import (
    cost, cost_and_gradients, evaluate, forward, initial_params, model, predict, sigmoid,
)


def document_two_layer(X, Y, W1, b1, W2, b2):
    """The document's cached 2-layer backprop, line for line."""
    m = Y.shape[1]
    A1 = 1 / (1 + np.exp(-(np.dot(W1, X) + b1)))
    A2 = 1 / (1 + np.exp(-(np.dot(W2, A1) + b2)))
    J = -1.0 / m * np.sum(np.multiply(np.log(A2), Y) + np.multiply(1 - Y, np.log(1 - A2)))
    dZ2 = (1.0 / m) * (A2 - Y)
    db2 = np.sum(dZ2, axis=1, keepdims=True)
    dW2 = np.dot(dZ2, A1.T)
    dZ1 = np.dot(W2.T, dZ2) * (A1 * (1 - A1))
    db1 = np.sum(dZ1, axis=1, keepdims=True)
    dW1 = np.dot(dZ1, X.T)
    return J, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def document_inital_params(X, Y, hidden_layer_units):
    """The document's inital_params, with the global state restored afterwards."""
    state = np.random.get_state()
    try:
        np.random.seed(2)
        params, n_last = {}, X.shape[0]
        for layer, units in enumerate([*hidden_layer_units, Y.shape[0]], 1):
            params[f"b{layer}"] = np.zeros((units, 1))
            params[f"W{layer}"] = np.random.randn(units, n_last) * 0.01
            n_last = units
        return params
    finally:
        np.random.set_state(state)


def test_l_layer_code_equals_the_documents_two_layer_formulas(flower_case):
    c = flower_case
    params = initial_params(c.spec, "xavier", seed=7)
    J, grads, _ = cost_and_gradients(params, c.X, c.Y, c.spec)
    J_doc, grads_doc = document_two_layer(c.X, c.Y, params["W1"], params["b1"], params["W2"], params["b2"])
    assert J == pytest.approx(J_doc, rel=1e-14)
    for name in grads_doc:
        np.testing.assert_allclose(grads[name], grads_doc[name], rtol=1e-12, atol=1e-17)


def test_seed_init_reproduces_the_documents_inital_params_bit_for_bit(flower_case):
    c = flower_case
    for hidden in ([4], [16, 8, 4], [3, 1]):
        spec = NetworkSpec((c.X.shape[0], *hidden, c.Y.shape[0]))
        ours = initial_params(spec, "seed")
        theirs = document_inital_params(c.X, c.Y, hidden)
        assert list(ours) == [f"{kind}{layer}" for layer in range(1, len(hidden) + 2) for kind in "Wb"]
        for name, value in theirs.items():
            assert np.array_equal(ours[name], value), name


def test_seed_init_leaves_the_global_random_state_alone():
    before = np.random.get_state()[1].copy()
    initial_params(NetworkSpec((2, 4, 1)), "seed")
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("init", ["xavier", "he"])
def test_scaled_inits_have_the_documented_variance_and_are_seeded(init):
    spec = NetworkSpec((400, 300, 1))
    W = initial_params(spec, init, seed=3)["W1"]
    gain = 1.0 if init == "xavier" else 2.0
    assert W.std() == pytest.approx(np.sqrt(gain / 400), rel=0.02)
    assert np.array_equal(W, initial_params(spec, init, seed=3)["W1"])
    assert not np.array_equal(W, initial_params(spec, init, seed=4)["W1"])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["bce", "softmax-ce", "mse"])
def test_float32_stays_float32_end_to_end(activation, loss):
    rng = np.random.default_rng(0)
    spec = NetworkSpec((3, 5, 2), activation, loss)
    X = rng.standard_normal((3, 7)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[:, rng.integers(0, 2, 7)]
    params = initial_params(spec, "xavier", dtype="float32")
    J, grads, cache = cost_and_gradients(params, X, Y, spec)
    assert all(A.dtype == np.float32 for A in cache.A)
    assert all(g.dtype == np.float32 for g in grads.values())
    trained = model(params, X, Y, spec, 0.1, 3)
    assert all(p.dtype == np.float32 for p in trained.params.values())
    assert isinstance(J, float) and np.isfinite(J)


def test_stable_bce_equals_the_documents_log_formula_where_that_is_finite(flower_case):
    c = flower_case
    params = initial_params(c.spec, "xavier", seed=1)
    cache = forward(params, c.X, c.spec)
    A = cache.A[-1]
    plain = -np.sum(np.log(A) * c.Y + (1 - c.Y) * np.log(1 - A)) / c.m
    assert cost(cache.ZL, A, c.Y, "bce") == pytest.approx(plain, rel=4e-15)


def test_saturated_outputs_give_finite_cost_and_gradients_without_warnings():
    spec = NetworkSpec((1, 1), "sigmoid", "bce")
    X = np.array([[1.0, 1.0, 1.0, 1.0]])
    Y = np.array([[0.0, 1.0, 0.0, 1.0]])
    for weight in (40.0, 800.0, -800.0):
        params = {"W1": np.array([[weight]]), "b1": np.zeros((1, 1))}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            J, grads, cache = cost_and_gradients(params, X, Y, spec)
        assert np.isfinite(J) and J == pytest.approx(abs(weight) / 2, rel=1e-12)
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        assert grads["b1"][0, 0] == pytest.approx(np.sign(weight) * 0.5, rel=1e-12)


def test_sigmoid_is_stable_and_exact_at_both_ends():
    Z = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = sigmoid(Z)
    assert A[0] == 0.0 and A[-1] == 1.0 and A[2] == 0.5
    assert A[1] == pytest.approx(np.exp(-40.0), rel=1e-15)


def test_softmax_ce_gradient_is_A_minus_Y_over_m():
    rng = np.random.default_rng(1)
    spec = NetworkSpec((4, 3), "sigmoid", "softmax-ce")
    X, Y = rng.standard_normal((4, 5)), np.eye(3)[:, [0, 2, 1, 1, 0]]
    params = initial_params(spec, "xavier")
    _, grads, cache = cost_and_gradients(params, X, Y, spec)
    np.testing.assert_allclose(grads["b1"], ((cache.A[-1] - Y) / 5).sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(cache.A[-1].sum(axis=0), 1.0, rtol=1e-15)


def test_sgd_steps_against_the_gradient_in_place(flower_case):
    params = {name: value.copy() for name, value in flower_case.params.items()}
    before = {name: value.copy() for name, value in params.items()}
    _, grads, _ = cost_and_gradients(params, flower_case.X, flower_case.Y, flower_case.spec)
    sgd(params, grads, OptimizerState(), Training(learning_rate=0.5))
    for name in params:
        np.testing.assert_array_equal(params[name], before[name] - 0.5 * grads[name])


def test_training_on_flower_reduces_cost_and_classifies_well(flower_case):
    c = flower_case
    trained = model(c.params, c.X, c.Y, c.spec, 1.2, 4000)
    costs = trained.costs[::1000]  # as the document's model() prints them
    assert len(costs) == 4 and costs[0] == pytest.approx(np.log(2), rel=1e-3)
    assert costs[-1] < 0.5 * costs[0]
    assert evaluate(trained.params, c.X, c.Y, c.spec) > 85.0
    assert np.array_equal(c.params["W1"], initial_params(c.spec, "seed")["W1"]), "model must not modify its input"


def test_predict_thresholds_one_output_and_takes_argmax_of_many():
    spec = NetworkSpec((1, 2), "sigmoid", "softmax-ce")
    params = {"W1": np.array([[1.0], [-1.0]]), "b1": np.zeros((2, 1))}
    assert predict(params, np.array([[2.0, -2.0]]), spec).tolist() == [[1, 0], [0, 1]]
    binary = NetworkSpec((1, 1))
    assert predict({"W1": np.array([[1.0]]), "b1": np.zeros((1, 1))}, np.array([[0.3, -0.3]]), binary).tolist() == [[1, 0]]


def test_evaluate_reports_percent_without_truncation():
    spec = NetworkSpec((1, 1))
    params = {"W1": np.array([[1.0]]), "b1": np.zeros((1, 1))}
    X = np.array([[1.0, 1.0, -1.0]])
    assert evaluate(params, X, np.array([[1.0, 0.0, 0.0]]), spec) == pytest.approx(200 / 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"layer_sizes": (2,)}, "input and an output"),
    ({"layer_sizes": (2, 0, 1)}, "layer 1 has 0 units"),
    ({"layer_sizes": (2, 1), "hidden_activation": "swish"}, "unknown activation 'swish'"),
    ({"layer_sizes": (2, 1), "loss": "hinge"}, "unknown loss 'hinge'"),
    ({"layer_sizes": (2, 1), "loss": "softmax-ce"}, "at least 2 output units"),
])
def test_bad_network_specs_name_the_problem(kwargs, match):
    with pytest.raises(SpecError, match=match):
        NetworkSpec(**kwargs)


def test_bad_init_learning_rate_and_iterations_are_rejected(flower_case):
    c = flower_case
    with pytest.raises(SpecError, match="unknown init 'glorot'"):
        initial_params(c.spec, "glorot")
    for lr in (0.0, -1.0, float("nan")):
        with pytest.raises(GradparityError, match="learning rate must be a positive number"):
            model(c.params, c.X, c.Y, c.spec, lr, 10)
    with pytest.raises(GradparityError, match="iterations must be a positive integer"):
        model(c.params, c.X, c.Y, c.spec, 0.1, 0)


def test_parameters_are_checked_against_the_network(flower_case):
    params = dict(flower_case.params)
    params["W2"] = np.zeros((1, 5))
    with pytest.raises(ParamsError, match=r"W2 has shape \(1, 5\), expected \(1, 4\)"):
        model(params, flower_case.X, flower_case.Y, flower_case.spec, 0.1, 1)
    assert spec_from_params(flower_case.params, "sigmoid", "bce").layer_sizes == (2, 4, 1)
    with pytest.raises(ParamsError, match="lack W2"):
        spec_from_params({"W1": np.zeros((4, 2)), "b1": np.zeros((4, 1)), "W3": np.zeros((1, 4))}, "sigmoid", "bce")


@st.composite
def architectures(draw):
    """Depth 1-5, widths 1-16, m 1-64, any activation and loss, with data to match."""
    loss = draw(st.sampled_from(["bce", "softmax-ce", "mse"]))
    activation = draw(st.sampled_from(["sigmoid", "tanh", "relu"]))
    depth = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(1, 16), min_size=depth + 1, max_size=depth + 1))
    if loss == "softmax-ce":
        sizes[-1] = max(sizes[-1], 2)
    m = draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**31))
    return NetworkSpec(tuple(sizes), activation, loss), m, seed


@settings(max_examples=60)
@given(architectures())
def test_reference_agrees_with_finite_differences_on_generated_architectures(architecture):
    spec, m, seed = architecture
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((spec.layer_sizes[0], m))
    n_out = spec.layer_sizes[-1]
    Y = np.eye(n_out)[:, rng.integers(0, n_out, m)] if spec.loss == "softmax-ce" else rng.integers(0, 2, (n_out, m)) * 1.0
    params = initial_params(spec, "xavier", seed=seed)
    result = gradcheck(params, X, Y, spec)
    assert result.checked > 0
    assert result.relative_difference < 1e-7, result.worst
