"""Plots of one ``gradparity train`` run: the cost curve and the decision boundary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradparity.core.boundary import decision_grid
from gradparity.core.network import NetworkSpec


def plot_training(history: list[dict], params: dict, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  out_dir: Path) -> list[Path]:
    """Write ``cost.png`` and, for 2-D inputs, ``decision_boundary.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([h["iteration"] for h in history], [h["cost"] for h in history], marker="o", markersize=3)
    axes.set(xlabel="iteration", ylabel="cost J (before the update)", title=f"Training cost, {spec.describe()}")
    axes.grid(alpha=0.3)
    written = [_save(figure, out_dir / "cost.png")]
    if X.shape[0] == 2 and X.shape[1] > 1:
        grid = decision_grid(params, X, Y, spec)
        figure, axes = plt.subplots(figsize=(6, 5))
        contour = axes.contourf(grid["x"], grid["y"], grid["probability"], levels=20, cmap="RdBu_r", alpha=0.7)
        figure.colorbar(contour, label="predicted probability of class 1")
        axes.scatter(*grid["points"], c=grid["labels"], cmap="RdBu_r", edgecolors="k", s=14)
        axes.set(xlabel="x1", ylabel="x2", title=f"Decision boundary, accuracy {grid['accuracy']:g}%")
        written.append(_save(figure, out_dir / "decision_boundary.png"))
    return written


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path
