"""The hand-derived second order (``core.second_order``): the R-operator's tangents and H V
against complex-step differentiation of a backpropagation written here independently (an
independent route to the same numbers, exact to rounding: f'(x) V = Im f(x + i h V) / h with
h = 1e-30, no cancellation), against central differences, and the direction's checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradparity.core.cases import build_case
from gradparity.core.errors import ParamsError
from gradparity.core.network import NetworkSpec
from gradparity.core.reference import activate, activation_derivative, initial_params
from gradparity.core.second_order import (activation_second_derivative, check_direction, default_direction,
                                          hessian_vector_product, numerical_second_order)

COMPLEX_STEP = 1e-30


def relative(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - b| / max |b| (0 when both are 0)."""
    scale = float(np.max(np.abs(expected)))
    difference = float(np.max(np.abs(actual - expected)))
    return difference / scale if scale else difference


def independent_gradients(params, X, Y, spec):
    """A backpropagation of this test's own, written on complex numbers: ReLU and its derivative
    read the sign of the real part (g'(0) = 0, as the reference has it), the costs are the
    document's on probabilities (bce -1/m sum(y log a + (1 - y) log(1 - a)), softmax-ce
    -1/m sum(y log a), mse 1/(nL m) sum((a - y)^2)). Returns J, [A1, ..., AL] and the gradients."""
    g = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.where(z.real > 0, z, 0),
         "softmax": lambda z: np.exp(z - z.real.max(axis=0)) / np.exp(z - z.real.max(axis=0)).sum(axis=0)}
    g_prime = {"sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a * a, "relu": lambda a: (a.real > 0) * 1.0}
    L, m, A = spec.depth, Y.shape[1], [X]
    for layer in range(1, L + 1):
        A.append(g[spec.activation(layer)](params[f"W{layer}"] @ A[-1] + params[f"b{layer}"]))
    AL = A[-1]
    if spec.loss == "mse":
        J, dZ = np.sum((AL - Y) ** 2) / Y.size, 2 * (AL - Y) * AL * (1 - AL) / Y.size
    else:
        J = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m if spec.loss == "bce" else -np.sum(Y * np.log(AL)) / m
        dZ = (AL - Y) / m
    gradients = {}
    for layer in range(L, 0, -1):
        gradients[f"W{layer}"], gradients[f"b{layer}"] = dZ @ A[layer - 1].T, dZ.sum(axis=1, keepdims=True)
        if layer > 1:
            dZ = (params[f"W{layer}"].T @ dZ) * g_prime[spec.hidden_activation](A[layer - 1])
    return J, A[1:], gradients


def complex_step(params, X, Y, spec, direction):
    """J̇, [Ȧ1, ..., ȦL] and H V as the imaginary parts of the cost, the activations and the
    gradients (``independent_gradients``) at params + i h V, divided by h."""
    shifted = {name: params[name] + 1j * COMPLEX_STEP * direction[name] for name in params}
    J, activations, gradients = independent_gradients(shifted, X.astype(complex), Y, spec)
    return (J.imag / COMPLEX_STEP, [A.imag / COMPLEX_STEP for A in activations],
            {name: gradients[name].imag / COMPLEX_STEP for name in params})


@st.composite
def networks(draw):
    """Depth 1-4, widths 1-12, m 1-32, every activation and loss, data and a direction to match."""
    loss = draw(st.sampled_from(["bce", "softmax-ce", "mse"]))
    activation = draw(st.sampled_from(["sigmoid", "tanh", "relu"]))
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=5))
    if loss == "softmax-ce":
        sizes[-1] = max(sizes[-1], 2)
    spec = NetworkSpec(tuple(sizes), activation, loss)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    m = int(rng.integers(1, 33))
    X = rng.standard_normal((sizes[0], m))
    Y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], m)] if loss == "softmax-ce" else rng.integers(0, 2, (sizes[-1], m)) * 1.0
    params = initial_params(spec, "xavier", seed=int(rng.integers(2**31)))
    return spec, X, Y, params, default_direction(spec, seed=int(rng.integers(2**31)))


@settings(max_examples=80, deadline=None)
@given(networks())
def test_the_r_operator_agrees_with_complex_step_differentiation_to_1e12(network):
    spec, X, Y, params, direction = network
    tangents, hvp = hessian_vector_product(params, X, Y, spec, direction)
    cost_tangent, activation_tangents, expected = complex_step(params, X, Y, spec, direction)
    assert abs(tangents.cost - cost_tangent) <= 1e-12 * max(abs(cost_tangent), 1e-300) + 1e-15
    for actual, wanted in zip(tangents.Adot[1:], activation_tangents, strict=True):
        assert relative(actual, wanted) < 1e-12
    assert list(hvp) == list(expected)
    for name in hvp:
        assert relative(hvp[name], expected[name]) < 1e-12, name


@pytest.mark.parametrize("case", ["seed-2layer", "deep-sigmoid", "keras-mse", "breast-cancer"])
def test_the_r_operator_agrees_with_central_differences_along_v(case):
    built = build_case(case)
    direction = default_direction(built.spec)
    differenced = numerical_second_order(built.params, built.X, built.Y, built.spec, direction)
    keep = differenced.examples
    tangents, hvp = hessian_vector_product(built.params, built.X[:, keep], built.Y[:, keep], built.spec, direction)
    assert abs(tangents.cost - differenced.cost) < 1e-7 * abs(tangents.cost)
    assert max(relative(a, b) for a, b in zip(differenced.Adot, tangents.Adot[1:])) < 1e-7
    assert max(relative(differenced.hvp[name], hvp[name]) for name in hvp) < 1e-7


def test_central_differences_leave_out_the_examples_whose_relu_inputs_cross_zero():
    case = build_case("signs-shape")  # 1080 examples: some ReLU inputs sit within the step of 0
    differenced = numerical_second_order(case.params, case.X, case.Y, case.spec, default_direction(case.spec))
    assert 0 < case.m - differenced.examples.sum() < case.m / 10
    assert differenced.hvp["W1"].shape == case.params["W1"].shape
    assert differenced.Adot[0].shape == (25, differenced.examples.sum())


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_g_second_derivative_in_terms_of_a_is_the_derivative_of_g_prime(name):
    Z = np.linspace(-4, 4, 41)
    Z = Z[Z != 0]  # ReLU's kink
    shifted = activation_derivative(activate(Z + 1j * COMPLEX_STEP, name), name).imag / COMPLEX_STEP
    np.testing.assert_allclose(activation_second_derivative(activate(Z, name), name), shifted, rtol=1e-13, atol=1e-300)


def test_at_a_relu_kink_both_r_passes_stop_as_the_first_order_code_does():
    spec = NetworkSpec((1, 1, 1), "relu", "bce")
    params = {"W1": np.array([[1.0]]), "b1": np.array([[-1.0]]), "W2": np.array([[2.0]]), "b2": np.array([[0.0]])}
    tangents, hvp = hessian_vector_product(params, np.array([[1.0]]), np.array([[1.0]]), spec, default_direction(spec))
    assert tangents.Adot[1][0, 0] == 0.0  # Z1 = 0: g'(0) = 0, as dZ1 = 0 there
    assert hvp["W1"][0, 0] == 0.0 and hvp["b1"][0, 0] == 0.0


def test_the_default_direction_is_seeded_normal_in_the_dtype_asked():
    spec = NetworkSpec((3, 4, 2), "tanh", "softmax-ce")
    first, again = default_direction(spec, "float32"), default_direction(spec, "float32")
    assert list(first) == ["W1", "b1", "W2", "b2"] and all(value.dtype == np.float32 for value in first.values())
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(default_direction(spec, seed=1)["W1"], default_direction(spec)["W1"].astype(np.float64))


@pytest.mark.parametrize("change, named", [
    (lambda v: v.pop("b2"), "lacks b2"),
    (lambda v: v.update(W1=np.ones((2, 3))), "W1 of the direction has shape (2, 3), expected (4, 3)"),
    (lambda v: v["W2"].__setitem__((0, 0), np.nan), "W2 of the direction holds NaN"),
    (lambda v: v.update(W3=np.ones((1, 1))), "has W3"),
    (lambda v: [value.fill(0) for value in v.values()], "zero everywhere"),
])
def test_a_direction_that_does_not_fit_is_refused_naming_the_entry(change, named):
    spec = NetworkSpec((3, 4, 2))
    direction = default_direction(spec)
    change(direction)
    with pytest.raises(ParamsError, match=named.replace("(", r"\(").replace(")", r"\)")):
        check_direction(spec, direction)
