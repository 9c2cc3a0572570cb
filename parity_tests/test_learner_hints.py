"""Hints that hold on learners' real code (issue 23): the cost's hint first whatever else is
wrong, a constant inside the log named with its fitted size, a NaN traced to the array and the
line of the learner's code where it first appears, a shape-only difference said as shapes, and
a swapped return order named. The learners' functions are in ``learner_slips.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import gradparity
from gradparity.cli import main
from gradparity.learner import BackpropError

import learner_slips
from backprop_mutants import network

SLIPS = Path(learner_slips.__file__)


def check(backprop, X, Y, params, dtype="float64"):
    return gradparity.check(backprop, X, Y, params, activation="sigmoid", loss="bce", dtype=dtype, backends=())


def row(printed: str, quantity: str) -> list[str]:
    """The cells of the terminal table's row for ``quantity``."""
    return next(line.split() for line in printed.splitlines() if line.split()[:1] == [quantity])


def traced_line(hint: str) -> str:
    """The learner's line a hint traces a value to (``at learner_slips.py:N: <line>``), checked to
    be line N of that file, quoted."""
    file, number, quoted = re.search(r"at (\S+\.py):(\d+): (.*)$", hint).groups()
    assert file == SLIPS.name and quoted == SLIPS.read_text().splitlines()[int(number) - 1].strip()
    return quoted


def test_the_course_style_learner_passes():
    X, Y, params = network((3, 5, 4, 1), "sigmoid", "bce")
    result = check(learner_slips.backprop, X, Y, params)
    assert result.verdict == "pass" and result.hint is None
    assert result.notes == ["ignored keys of grads: dA0, dA1, dA2"]


def test_the_costs_hint_comes_first_when_a_gradient_is_wrong_too(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check", f"{SLIPS}:cost_without_mean_and_dAL_sign_lost", "--backends", "none",
                 "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["wrong"][:2] == ["cost", "dW2"] and document["first_wrong"] == "dW2"
    assert document["pattern"] == "missing-1/m" and document["hint"].startswith("cost is m = 400 times")
    hints = document["networks"][0]["hints"]
    assert list(hints) == ["cost", "dW2"] and hints["dW2"].startswith("dW2 has the opposite")
    cost_hint = printed.index("hint: cost is m = 400 times the reference")
    gradient_hint = printed.index("hint: dW2 has the opposite sign")
    assert cost_hint < gradient_hint


@pytest.mark.parametrize("slip, epsilon", [("epsilon_in_both_logs", "1e-08"), ("epsilon_in_the_second_log", "1e-12")])
def test_a_constant_inside_the_log_is_named_with_its_fitted_size(slip, epsilon):
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    result = check(getattr(learner_slips, slip), X, Y, params)
    assert result.wrong == ["cost"]
    assert result.mistake.pattern == "epsilon-in-log"
    assert f"ε = {epsilon}" in result.hint and "float32" not in result.hint


def test_the_same_constant_in_dAL_is_named_where_finite_differences_cannot_see_it():
    """The gradients are 1e-8 off: wrong for the reference, within what central differences
    resolve; the hint says both."""
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    result = check(learner_slips.epsilon_in_the_cost_and_dAL, X, Y, params)
    assert result.wrong[:2] == ["cost", "dW2"]
    assert [mistake.pattern for mistake in result.mistakes.values()] == ["epsilon-in-log", "epsilon-in-dA"]
    gradient = result.mistakes["dW2"].hint
    assert "ε = 1e-08" in gradient and "finite differences" in gradient and "float32" not in gradient
    assert result.corroboration["finite-diff"]["quantities"]["dW2"]["verdict"] == "agrees"


def test_a_clipped_log_on_saturated_outputs_is_named_with_its_bound():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    params["W2"] = params["W2"] * 100  # outputs below 1e-7 where y = 1: there the clip bites
    result = check(learner_slips.clipped_log, X, Y, params)
    assert result.wrong[0] == "cost"
    assert result.mistake.pattern == "epsilon-in-log"
    assert "clip" in result.hint and "ε = 1e-07" in result.hint


def test_a_small_cost_difference_no_constant_explains_stays_a_precision_hint():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    result = check(learner_slips.cost_off_by_a_rounding, X, Y, params)
    assert result.wrong == ["cost"] and result.mistake.pattern == "precision"


def test_a_division_by_y_is_traced_to_its_line_and_first_array():
    X, Y, params = network((3, 5, 4, 1), "sigmoid", "bce")
    result = check(learner_slips.dAL_divided_by_Y, X, Y, params)
    assert result.first_wrong == "dW3" and "cost" not in result.wrong
    assert result.mistake.pattern == "division-by-zero"
    assert "first appear in dA2" in result.hint
    assert "np.divide(AL, Y)" in traced_line(result.hint)  # the division by Y
    assert "log" not in result.hint and "exp" not in result.hint


def test_a_log_of_0_on_saturated_outputs_is_named_in_the_cost_and_the_division_in_the_gradients():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    params["b2"] = params["b2"] + 50.0  # every output rounds to exactly 1
    result = check(learner_slips.backprop, X, Y, params)
    assert result.wrong[0] == "cost" and result.first_wrong == "dW2"
    assert result.mistake.pattern == "log-of-0"
    assert "np.log(1 - AL)" in result.hint
    gradient = result.mistakes["dW2"]
    assert gradient.pattern in ("division-by-zero", "division-0/0") and "first appear in dA1" in gradient.hint
    assert "np.divide(Y, AL)" in traced_line(gradient.hint)  # the division by AL, 0 where AL rounds to 0


def test_an_overflow_with_finite_results_gives_no_hint_and_the_error_state_is_restored():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    params["b1"][0] = -1000.0  # exp(1000) overflows in the sigmoid; 1 / (1 + inf) = 0 is right
    before = (np.geterr(), np.geterrcall())
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            learner_slips.backprop(X, Y, params)
    result = check(learner_slips.backprop, X, Y, params)
    assert result.verdict == "pass" and result.hint is None
    assert (np.geterr(), np.geterrcall()) == before


def test_a_shape_only_difference_says_the_shapes(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check", f"{SLIPS}:db_without_keepdims", "--backends", "none", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["wrong"] == ["db2"] and document["pattern"] == "keepdims"
    assert document["hint"].startswith("db2 has shape (1,), the reference (1, 1): keepdims")
    assert document["networks"][0]["shapes"] == {"db2": {"got": [1], "reference": [1, 1]}}
    cells = row(printed, "db2")
    assert "inf" not in cells and "inf×" not in cells
    assert cells[3:5] == ["shape", "(1,)"]
    [said] = [line for line in printed.splitlines() if line.startswith("  db2 ")]  # the line under the hint
    assert re.findall(r"\([\d, ]*\)", said) == ["(1,)", "(1, 1)"]  # yours, the reference's


def test_a_swapped_return_order_is_named():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")
    with pytest.raises(BackpropError, match=r"^grads_then_cost returned \(grads, cost\): return cost, grads$"):
        check(learner_slips.grads_then_cost, X, Y, params)
