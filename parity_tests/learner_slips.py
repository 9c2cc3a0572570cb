"""A learner's backprop in the course's style (L_model_forward, compute_cost, L_model_backward
from dA[L], grads holding dA[l-1] beside dW[l] and db[l]) and the slips real learners' code
showed (issue 23), one function each; ``test_learner_hints`` checks the hint each one gets.
Sigmoid in every layer, binary cross-entropy."""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def L_model_forward(X, parameters):
    """A[l] = sigmoid(W[l] A[l-1] + b[l]); each layer caches (A[l-1], W[l], A[l])."""
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L + 1):
        A_prev = A
        W = parameters["W" + str(l)]
        A = sigmoid(np.dot(W, A_prev) + parameters["b" + str(l)])
        caches.append((A_prev, W, A))
    return A, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m


def L_model_backward(dAL, caches):
    """From dA[L] down: dZ = dA A(1 - A), dA[l-1] = W^T dZ, dW = dZ A[l-1]^T / m, db the mean
    of dZ over the examples."""
    grads = {}
    dA = dAL
    for l in reversed(range(1, len(caches) + 1)):
        A_prev, W, A = caches[l - 1]
        m = A_prev.shape[1]
        dZ = dA * A * (1 - A)
        grads["dA" + str(l - 1)] = np.dot(W.T, dZ)
        grads["dW" + str(l)] = np.dot(dZ, A_prev.T) / m
        grads["db" + str(l)] = np.sum(dZ, axis=1, keepdims=True) / m
        dA = grads["dA" + str(l - 1)]
    return grads


def backprop(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    cost = compute_cost(AL, Y)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    return cost, L_model_backward(dAL, caches)


def cost_without_mean_and_dAL_sign_lost(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    dAL = np.divide(Y, AL) - np.divide(1 - Y, 1 - AL)
    return cost, L_model_backward(dAL, caches)


def epsilon_in_both_logs(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL + 1e-8) + (1 - Y) * np.log(1 - AL + 1e-8)) / m
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    return cost, L_model_backward(dAL, caches)


def epsilon_in_the_second_log(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL + 1e-12)) / m
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    return cost, L_model_backward(dAL, caches)


def epsilon_in_the_cost_and_dAL(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL + 1e-8) + (1 - Y) * np.log(1 - AL + 1e-8)) / m
    dAL = -(np.divide(Y, AL + 1e-8) - np.divide(1 - Y, 1 - AL + 1e-8))
    return cost, L_model_backward(dAL, caches)


def clipped_log(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    m = Y.shape[1]
    clipped = np.clip(AL, 1e-7, 1 - 1e-7)
    cost = -np.sum(Y * np.log(clipped) + (1 - Y) * np.log(1 - clipped)) / m
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    return cost, L_model_backward(dAL, caches)


def cost_off_by_a_rounding(X, Y, parameters):
    cost, grads = backprop(X, Y, parameters)
    return cost * (1 - 3.7e-9), grads


def dAL_divided_by_Y(X, Y, parameters):
    AL, caches = L_model_forward(X, parameters)
    cost = compute_cost(AL, Y)
    dAL = -(np.divide(AL, Y) - np.divide(1 - AL, 1 - Y))
    return cost, L_model_backward(dAL, caches)


def db_without_keepdims(X, Y, parameters):
    cost, grads = backprop(X, Y, parameters)
    L = len(parameters) // 2
    grads["db" + str(L)] = grads["db" + str(L)].reshape(-1)  # what np.sum(dZ, axis=1) gives
    return cost, grads


def grads_then_cost(X, Y, parameters):
    cost, grads = backprop(X, Y, parameters)
    return grads, cost
