"""A learner's L-layer network in the course's style: ReLU hidden layers under a sigmoid
output, helpers returning caches, L_model_backward returning dA keys beside dW and db."""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z


def relu(Z):
    return np.maximum(0, Z), Z


def linear_forward(A, W, b):
    return W @ A + b, (A, W, b)


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = sigmoid(Z) if activation == "sigmoid" else relu(Z)
    return A, (linear_cache, activation_cache)


def L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    return np.squeeze(cost)


def sigmoid_backward(dA, Z):
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def relu_backward(dA, Z):
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = dZ @ A_prev.T / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)
    else:
        dZ = sigmoid_backward(dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = linear_activation_backward(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)] = dA_prev
        grads["dW" + str(l + 1)] = dW
        grads["db" + str(l + 1)] = db
    return grads


def update_parameters(parameters, grads, learning_rate):
    for key in parameters:
        parameters[key] = parameters[key] - learning_rate * grads["d" + key]
    return parameters


def L_layer_model(X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000):
    rng = np.random.default_rng(1)
    parameters = {}
    for l in range(1, len(layers_dims)):
        parameters["W" + str(l)] = rng.standard_normal((layers_dims[l], layers_dims[l - 1])) * 0.01
        parameters["b" + str(l)] = np.zeros((layers_dims[l], 1))
    for i in range(num_iterations):
        AL, caches = L_model_forward(X, parameters)
        grads = L_model_backward(AL, Y, caches)
        parameters = update_parameters(parameters, grads, learning_rate)
    return parameters
