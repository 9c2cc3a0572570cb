"""A learner's backprop for an L-layer network, written from the derivation in the course's
convention. Check it with

    gradparity check examples/backprop.py:backprop

X is (n0, m), Y is (nL, m); parameters holds W1 (n1, n0), b1 (n1, 1), ..., WL, bL. The hidden
layers use ``hidden`` (sigmoid, tanh or relu); the output and cost follow ``loss``: bce
(sigmoid output), softmax-ce (softmax output) or mse (sigmoid output, mean over all entries).
"""

import numpy as np


def activate(Z, name):
    """A = g(Z)."""
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(0, Z)
    E = np.exp(Z - Z.max(axis=0, keepdims=True))  # softmax, one column per example
    return E / E.sum(axis=0, keepdims=True)


def derivative(Z, A, name):
    """g'(Z), written with A = g(Z) where that is shorter."""
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A ** 2
    return (Z > 0).astype(Z.dtype)  # relu


def forward(X, parameters, hidden, loss):
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]); keeps (A[l-1], Z[l], A[l]) of every layer."""
    L = len(parameters) // 2
    caches = []
    A = X
    for l in range(1, L + 1):
        A_prev = A
        Z = np.dot(parameters["W" + str(l)], A_prev) + parameters["b" + str(l)]
        output = "softmax" if loss == "softmax-ce" else "sigmoid"
        A = activate(Z, hidden if l < L else output)
        caches.append((A_prev, Z, A))
    return A, caches


def compute_cost(AL, Y, loss):
    """bce: -1/m sum(y log a + (1 - y) log(1 - a)); softmax-ce: -1/m sum(y log a);
    mse: 1/(nL m) sum((a - y)^2)."""
    m = Y.shape[1]
    if loss == "bce":
        return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    if loss == "softmax-ce":
        return -np.sum(Y * np.log(AL)) / m
    return np.sum((AL - Y) ** 2) / Y.size


def output_delta(AL, Y, loss):
    """dZ[L] = dJ/dZ[L]: (A - Y)/m for cross-entropy, 2 (A - Y) A (1 - A) / (nL m) for mse."""
    m = Y.shape[1]
    if loss == "mse":
        return 2 * (AL - Y) * AL * (1 - AL) / Y.size
    return (AL - Y) / m


def backprop(X, Y, parameters, hidden="sigmoid", loss="bce"):
    """The cost and its gradients: dW[l] = dZ[l] A[l-1]^T, db[l] = sum of dZ[l] over the
    examples, dZ[l-1] = W[l]^T dZ[l] * g'(Z[l-1])."""
    AL, caches = forward(X, parameters, hidden, loss)
    cost = compute_cost(AL, Y, loss)
    grads = {}
    dZ = output_delta(AL, Y, loss)
    for l in reversed(range(1, len(caches) + 1)):
        A_prev, Z, A = caches[l - 1]
        grads["dW" + str(l)] = np.dot(dZ, A_prev.T)
        grads["db" + str(l)] = np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            _, Z_prev, _ = caches[l - 2]
            dA_prev = np.dot(parameters["W" + str(l)].T, dZ)
            dZ = dA_prev * derivative(Z_prev, A_prev, hidden)
    return cost, grads
