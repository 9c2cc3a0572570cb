"""The plots of ``gradparity train --plot``: every step's cost with the first and final marked, the
decision boundary with one marker shape per class and a legend, and one note for each plot that
cannot be drawn."""

from __future__ import annotations

import numpy as np
import pytest

from gradparity.core.boundary import decision_grid
from gradparity.core.datasets import load_dataset
from gradparity.core.network import NetworkSpec
from gradparity.core.optimizers import Training
from gradparity.core.reference import initial_params, train

pytest.importorskip("matplotlib", reason="the training plots need matplotlib (gradparity[plots])")
from gradparity.reports.training import boundary_figure, cost_figure, plot_training  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def trained_on(X: np.ndarray, Y: np.ndarray, loss: str = "bce", steps: int = 300):
    """The reference, one hidden layer of 4 tanh units, after ``steps`` full-batch SGD steps."""
    spec = NetworkSpec((X.shape[0], 4, Y.shape[0]), "tanh", loss)
    return train(initial_params(spec), X, Y, spec, Training(learning_rate=1.2, epochs=steps)), spec


@pytest.fixture(scope="module")
def flower():
    X, Y = load_dataset("flower")
    trained, spec = trained_on(X, Y)
    return trained, X, Y, spec


def test_both_plots_are_written_as_png(tmp_path, flower):
    trained, X, Y, spec = flower
    written, notes = plot_training(trained.costs, trained.params, X, Y, spec, tmp_path / "plots")
    assert [p.name for p in written] == ["cost.png", "decision_boundary.png"] and notes == []
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["cost.png", "decision_boundary.png"]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) and p.stat().st_size > 5000 for p in written)


def test_the_cost_line_holds_every_step_and_marks_the_first_and_final(flower):
    trained, _X, _Y, spec = flower
    axes = cost_figure(trained.costs, spec).axes[0]
    curve, *marks = axes.lines
    assert len(trained.costs) == 300
    np.testing.assert_array_equal(curve.get_xdata(), np.arange(300))
    np.testing.assert_array_equal(curve.get_ydata(), trained.costs)
    assert [(m.get_xdata()[0], m.get_ydata()[0]) for m in marks] == [(0, trained.costs[0]), (299, trained.costs[-1])]
    assert [a.get_text() for a in axes.texts] == [f"first {trained.costs[0]:.4g} at step 0",
                                                  f"final {trained.costs[-1]:.4g} at step 299"]
    assert 0.2 < trained.costs[-1] < trained.costs[0] < 0.7
    assert axes.get_ylabel() == "cost J after k updates" and axes.get_yscale() == "linear"


def test_one_step_is_marked_once_as_final():
    axes = cost_figure([0.69], NetworkSpec((2, 4, 1))).axes[0]
    assert [a.get_text() for a in axes.texts] == ["final 0.69 at step 0"]


def test_costs_over_more_than_two_decades_get_a_log_axis():
    spec = NetworkSpec((2, 4, 1))
    assert cost_figure([0.69, 0.1, 0.0069], spec).axes[0].get_yscale() == "linear"
    assert cost_figure([0.69, 0.1, 0.0068], spec).axes[0].get_yscale() == "log"


def test_a_diverged_cost_is_noted(tmp_path):
    X, Y = load_dataset("flower")
    trained, spec = trained_on(X, Y, steps=2)
    costs = [*trained.costs, float("inf")]
    _written, notes = plot_training(costs, trained.params, X, Y, spec, tmp_path)
    assert notes == ["cost curve stops before step 2: the cost there is inf"]


@pytest.mark.parametrize("dataset, loss", [("flower", "bce"), ("moons", "softmax-ce")])
def test_the_boundary_has_a_marker_shape_per_class_and_a_legend(dataset, loss):
    X, Y = load_dataset(dataset, loss)
    trained, spec = trained_on(X, Y, loss)
    grid = decision_grid(trained.params, X, Y, spec)
    axes = boundary_figure(grid, spec).axes[0]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["class 0", "class 1", "decision boundary p = 0.5"]
    filled, *classes, line = axes.collections
    assert list(filled.levels) == pytest.approx(np.linspace(0, 1, 11)) and list(line.levels) == [0.5]
    assert [len(c.get_offsets()) for c in classes] == np.bincount(grid["labels"]).tolist()
    assert sum(len(c.get_offsets()) for c in classes) == X.shape[1]
    assert len({c.get_paths()[0].vertices.round(6).tobytes() for c in classes}) == 2  # two marker shapes
    assert len({tuple(c.get_facecolor()[0]) for c in classes}) == 2


@pytest.mark.parametrize("X, Y, loss, note", [
    (np.random.default_rng(0).normal(size=(5, 40)), np.tile([0.0, 1.0], 20)[None], "bce",
     "decision boundary not drawn: the data has 5 features; it is drawn for 2 features only"),
    (np.array([[0.5], [-1.0]]), np.array([[1.0]]), "bce",
     "decision boundary not drawn: a single example (m = 1) has no boundary to show"),
    (*load_dataset("blobs", "softmax-ce"), "softmax-ce",
     "decision boundary not drawn: the network has 3 outputs (softmax-ce); "
     "it is drawn for one sigmoid output or a two-class softmax only"),
])
def test_data_without_a_boundary_writes_the_cost_and_one_note(tmp_path, X, Y, loss, note):
    trained, spec = trained_on(X, Y, loss, steps=20)
    written, notes = plot_training(trained.costs, trained.params, X, Y, spec, tmp_path)
    assert notes == [note]
    assert written == [tmp_path / "cost.png"] and [p.name for p in tmp_path.iterdir()] == ["cost.png"]


def test_a_boundary_outside_the_plot_is_noted_and_left_out_of_the_legend(tmp_path):
    X, Y = load_dataset("flower")
    spec = NetworkSpec((2, 4, 1), "tanh")
    params = {**initial_params(spec), "b2": np.array([[3.0]])}  # P(class 1) ~ sigmoid(3) everywhere
    written, notes = plot_training([0.69], params, X, Y, spec, tmp_path)
    assert [p.name for p in written] == ["cost.png", "decision_boundary.png"]
    assert notes == ["decision boundary p = 0.5 not drawn: P(class 1) does not cross 0.5 in the plotted area "
                     "(it lies in [0.952, 0.953])"]
    axes = boundary_figure(decision_grid(params, X, Y, spec), spec).axes[0]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["class 0", "class 1"]
