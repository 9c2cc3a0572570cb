"""The decision boundary of a trained network on 2-D data, as plain data for plotting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradparity.core.cases import Case
from gradparity.core.network import NetworkSpec
from gradparity.core.reference import Params, evaluate, forward, train

BOUNDARY_ITERATIONS = 5000
RESOLUTION = 60


def decision_grid(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  resolution: int = RESOLUTION) -> dict:
    """Output probability of class 1 (A[L] row 0 for one output, else row 1) on a
    ``resolution`` x ``resolution`` grid spanning the data with a margin of 1, with the points."""
    if X.shape[0] != 2:
        raise ValueError("a decision boundary needs 2-D inputs")
    x = np.linspace(X[0].min() - 1, X[0].max() + 1, resolution)
    y = np.linspace(X[1].min() - 1, X[1].max() + 1, resolution)
    grid = np.stack([g.ravel() for g in np.meshgrid(x, y)]).astype(X.dtype)
    AL = forward(params, grid, spec).A[-1]
    probability = AL[0] if AL.shape[0] == 1 else AL[1]
    labels = Y[0] if Y.shape[0] == 1 else Y.argmax(axis=0)
    return {
        "x": np.round(x, 6).tolist(), "y": np.round(y, 6).tolist(),
        "probability": np.round(probability.reshape(resolution, resolution).astype(float), 4).tolist(),
        "points": np.round(X.astype(float), 5).tolist(), "labels": labels.astype(int).tolist(),
        "accuracy": evaluate(params, X, Y, spec),
    }


def trained_boundary(case: Case, iterations: int = BOUNDARY_ITERATIONS) -> dict | None:
    """Train the reference on ``case`` for ``iterations`` full-batch steps of its own optimizer
    from its starting parameters and return its decision grid; None for data that is not 2-D
    or has a single example."""
    if case.X.shape[0] != 2 or case.m < 2:
        return None
    training = replace(case.training, epochs=iterations, batch_size=None)
    trained = train(case.params, case.X, case.Y, case.spec, training)
    return {**decision_grid(trained.params, case.X, case.Y, case.spec), "iterations": iterations}
