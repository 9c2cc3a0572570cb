"""Plots of one ``gradparity train`` run: the cost of every step and the decision boundary.

matplotlib is imported inside the functions that draw, and figures are drawn on a bare
``Figure`` (Agg canvas, no pyplot state), so importing this module imports no plotting library."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradparity.core.boundary import decision_grid
from gradparity.core.network import NetworkSpec
from gradparity.reports.formatting import plural

BOUNDARY_LABEL = "decision boundary p = 0.5"
CLASS_MARKERS = "o^"  # class 0 circles, class 1 triangles: readable without colour
CMAP = "RdBu_r"  # P(class 1) from blue (class 0) to red (class 1)
LOG_SPAN = 100.0  # a log-scale y axis when the costs span more than two decades


def plot_training(step_costs: list[float], params: dict, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  out_dir: Path) -> tuple[list[Path], list[str]]:
    """Write ``cost.png`` (:func:`cost_figure`) and, where a boundary can be drawn,
    ``decision_boundary.png`` (:func:`boundary_figure`) into ``out_dir``. Returns the paths
    written and one line for each plot, or part of one, left out and why."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_save(cost_figure(step_costs, spec), out_dir / "cost.png")]
    notes = []
    infinite = np.flatnonzero(~np.isfinite(step_costs))
    if infinite.size:
        notes.append(f"cost curve stops before step {infinite[0]}: the cost there is {step_costs[infinite[0]]}")
    reason = boundary_unavailable(X, spec)
    if reason:
        return written, [*notes, f"decision boundary not drawn: {reason}"]
    grid = decision_grid(params, X, Y, spec)
    written.append(_save(boundary_figure(grid, spec), out_dir / "decision_boundary.png"))
    probability = np.asarray(grid["probability"])
    if not _crosses_half(probability):
        notes.append(f"{BOUNDARY_LABEL} not drawn: P(class 1) does not cross 0.5 in the plotted area "
                     f"(it lies in [{probability.min():.3g}, {probability.max():.3g}])")
    return written, notes


def boundary_unavailable(X: np.ndarray, spec: NetworkSpec) -> str | None:
    """Why no decision boundary can be drawn for data ``X`` (n_features, m) and ``spec``; None if
    it can. ``decision_grid`` gives P(class 1), whose 0.5 contour is the boundary of the
    predictions only for one sigmoid output or a two-class softmax."""
    if X.shape[0] != 2:
        return f"the data has {X.shape[0]} features; it is drawn for 2 features only"
    if X.shape[1] < 2:
        return "a single example (m = 1) has no boundary to show"
    outputs = spec.layer_sizes[-1]
    if outputs > 1 and not (outputs == 2 and spec.loss == "softmax-ce"):
        return (f"the network has {outputs} outputs ({spec.loss}); it is drawn for one sigmoid output "
                f"or a two-class softmax only")
    return None


def cost_figure(step_costs: list[float], spec: NetworkSpec):
    """The cost J after every number of updates as one line (``step_costs[k]``: after k updates,
    before update k, as the document's model() prints it; with mini-batches, on that step's
    batch; ``gradparity train`` appends the cost after the last update), the first and final
    costs marked and annotated with their values; log-scale y when the costs span more than
    two decades."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    costs = np.asarray(step_costs, dtype=float)
    last = len(costs) - 1
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.plot(np.arange(len(costs)), costs, color="C0", linewidth=1.2)
    marks = {0: ("first", "C0", (12, 8), "left"), last: ("final", "C3", (-12, 22), "right")}  # one step: final
    for step, (name, colour, offset, align) in marks.items():
        axes.plot(step, costs[step], marker="o", color=colour, linestyle="")
        axes.annotate(f"{name} {costs[step]:.4g} at step {step}", (step, costs[step]), xytext=offset,
                      textcoords="offset points", ha=align, fontsize=9, arrowprops={"arrowstyle": "-", "color": "0.4"},
                      bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.9})
    if np.nanmin(costs) > 0 and np.nanmax(costs) > LOG_SPAN * np.nanmin(costs):
        axes.set_yscale("log")
    axes.set(xlabel="updates done (steps)", ylabel="cost J after k updates",
             title=f"Training cost, {spec.describe()}, {plural(last, 'update')}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1, steps=[1, 2, 2.5, 5, 10]))
    axes.margins(x=0.02, y=0.15)
    axes.grid(alpha=0.3)
    return figure


def boundary_figure(grid: dict, spec: NetworkSpec):
    """The predicted P(class 1) over the 2-D plane (filled contours, ``decision_grid``'s grid),
    the 0.5 contour line (the decision boundary, where P crosses 0.5), and the examples with one
    marker shape and colour per true class; a legend names the classes and the boundary."""
    import matplotlib
    from matplotlib.figure import Figure

    x, y, probability = (np.asarray(grid[key], dtype=float) for key in ("x", "y", "probability"))
    points, labels = np.asarray(grid["points"]), np.asarray(grid["labels"])
    cmap = matplotlib.colormaps[CMAP]
    figure = Figure(figsize=(6.4, 5))
    axes = figure.subplots()
    filled = axes.contourf(x, y, probability, levels=np.linspace(0, 1, 11), cmap=cmap, vmin=0, vmax=1, alpha=0.4)
    figure.colorbar(filled, label="predicted P(class 1)")
    handles = [axes.scatter(*points[:, labels == k], marker=CLASS_MARKERS[k], color=cmap(0.15 + 0.7 * k), s=28,
                            edgecolors="black", linewidths=0.6, label=f"class {k}")
               for k in np.unique(labels)]
    if _crosses_half(probability):
        line = axes.contour(x, y, probability, levels=[0.5], colors="black", linewidths=1.5).legend_elements()[0][0]
        line.set_label(BOUNDARY_LABEL)
        handles.append(line)
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(handles), frameon=False)
    axes.set(xlabel="$x_1$", ylabel="$x_2$",
             title=f"Decision boundary, {spec.describe()}\ntraining accuracy {grid['accuracy']:g}%")
    return figure


def _crosses_half(probability: np.ndarray) -> bool:
    return bool(probability.min() < 0.5 < probability.max())


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    return path
