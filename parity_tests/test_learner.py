"""Checking a learner's own backprop: the mutation catalogue caught and recognised, the correct
example passing in both dtypes, ``assert_backprop_matches`` for a learner's pytest, and the
command line's exit statuses and messages for wrong answers and broken functions."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradparity
from gradparity.backends import REGISTRY, missing_requirement
from gradparity.cli import main
from gradparity.learner import BackpropError

from backprop_mutants import EXAMPLE, MUTANTS, network
from rendered import networks

sys.path.insert(0, str(EXAMPLE.parent))
from backprop import backprop as example_backprop  # noqa: E402  (examples/ is not a package)
GRADIENT = re.compile(r"\bd[Wb]\d+\b")  # a gradient's name in a line of output

NETWORKS = [((3, 5, 4, 1), "sigmoid", "bce"), ((3, 5, 4, 2), "tanh", "mse"), ((4, 6, 3), "relu", "softmax-ce"),
            ((2, 1), "sigmoid", "bce"), ((5, 8, 8, 8, 3), "relu", "mse"), ((2, 3, 4), "tanh", "softmax-ce")]
HINT_SHARE = 0.8  # the share of the catalogue that must also get its matching hint


def example(hidden: str, loss: str):
    return functools.partial(example_backprop, hidden=hidden, loss=loss)


@pytest.fixture(scope="module", params=["float64", "float32"])
def mutant_results(request) -> dict[str, gradparity.learner.BackpropCheck]:
    """Every mutant of the catalogue checked once per dtype against the reference and finite
    differences."""
    results = {}
    for mutant in MUTANTS:
        X, Y, params = mutant.network()
        results[mutant.name] = gradparity.check(mutant.backprop(), X, Y, params, activation=mutant.hidden,
                                                loss=mutant.loss, dtype=request.param)
    return results


def test_the_catalogue_holds_at_least_twelve_distinct_mistakes():
    assert len(MUTANTS) >= 12
    sources = {mutant.source() for mutant in MUTANTS}  # every edit applies to exactly one place
    assert len(sources) == len(MUTANTS) and EXAMPLE.read_text() not in sources


@pytest.mark.parametrize("mutant", MUTANTS, ids=[mutant.name for mutant in MUTANTS])
def test_every_mutant_is_caught_with_its_first_wrong_gradient(mutant, mutant_results):
    result = mutant_results[mutant.name]
    assert result.verdict == "fail"
    assert result.first_wrong == mutant.first_wrong
    assert result.wrong != [] and (mutant.first_wrong is not None or result.wrong == ["cost"])


def test_most_mutants_get_their_matching_hint(mutant_results):
    """The hint names the mistake the mutant made (its pattern), counted over the catalogue."""
    matched = [mutant.name for mutant in MUTANTS if mutant_results[mutant.name].mistake is not None
               and mutant_results[mutant.name].mistake.pattern == mutant.pattern]
    missed = {mutant.name: mutant_results[mutant.name].hint for mutant in MUTANTS if mutant.name not in matched}
    dtype = next(iter(mutant_results.values())).dtype
    print(f"\nhints in {dtype}: {len(matched)} of {len(MUTANTS)} mutants got the matching hint "
          f"({len(matched) / len(MUTANTS):.0%}); missed: {missed or 'none'}")
    assert len(matched) >= HINT_SHARE * len(MUTANTS), missed


def test_finite_differences_corroborate_the_verdict_of_every_mutant(mutant_results):
    """Where the mutant's cost is right, central differences of it see the same wrong
    gradients as the reference, except where they cannot measure (every entry's step crosses
    a ReLU kink, as where a dead example makes Z = b = 0 exactly). Where its cost is wrong,
    they difference that wrong cost, and the output explains it."""
    for name, result in mutant_results.items():
        cells = result.corroboration["finite-diff"]["quantities"]
        if "cost" in result.wrong:
            assert result.focus.explanation, name
            continue
        verdicts = {verdict: {q for q, cell in cells.items() if cell["verdict"] == verdict} for verdict in
                    ("agrees", "differs", "unmeasured")}
        assert verdicts["differs"] | verdicts["unmeasured"] >= set(result.wrong) - {"cost"} >= verdicts["differs"], name
        assert not verdicts["agrees"] & set(result.wrong), name
    assert sum(len(result.wrong) for result in mutant_results.values()) > 10 * sum(
        cell["verdict"] == "unmeasured" for result in mutant_results.values()
        for cell in result.corroboration["finite-diff"]["quantities"].values())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, hidden, loss", NETWORKS)
def test_the_correct_example_passes(sizes, hidden, loss, dtype):
    X, Y, params = network(sizes, hidden, loss)
    result = gradparity.check(example(hidden, loss), X, Y, params, activation=hidden, loss=loss, dtype=dtype)
    assert result.verdict == "pass", result.message()
    assert result.wrong == [] and result.first_wrong is None and result.hint is None
    assert all(cell["verdict"] == "agrees" for cell in result.corroboration["finite-diff"]["quantities"].values())
    assert gradparity.assert_backprop_matches(example(hidden, loss), X, Y, params, activation=hidden, loss=loss,
                                             dtype=dtype) is None


def test_assert_backprop_matches_names_the_first_wrong_gradient():
    mutant = next(mutant for mutant in MUTANTS if mutant.name == "tanh' = 1 - A")
    X, Y, params = mutant.network()
    with pytest.raises(AssertionError) as raised:
        gradparity.assert_backprop_matches(mutant.backprop(), X, Y, params, activation="tanh")
    message = str(raised.value)
    assert message.startswith("dW2 of your backprop is not close to the reference (float64).\nMismatched elements:")
    wrong = next(line for line in message.splitlines() if line.startswith("Wrong: "))
    assert GRADIENT.findall(wrong) == ["dW2", "db2", "dW1", "db1", "dW2"]  # every wrong one, then the first
    hint = next(line for line in message.splitlines() if line.startswith("Hint: "))
    assert "tanh'" in hint and "layer 2" in hint


def test_a_float32_slip_in_float64_is_named_a_precision_problem():
    X, Y, params = network((3, 5, 1), "sigmoid", "bce")

    def float32_inside(X, Y, parameters):
        cost, grads = example_backprop(X.astype(np.float32), Y, parameters)
        return cost, grads

    result = gradparity.check(float32_inside, X, Y, params)
    assert result.verdict == "fail" and result.first_wrong == "dW2"
    assert result.mistake.pattern == "precision"


@pytest.mark.parametrize("computes, checked", [(("sigmoid", "bce"), ("relu", "bce")),
                                               (("tanh", "mse"), ("tanh", "bce"))])
def test_a_function_computing_another_network_is_told_which(computes, checked):
    """The cost gives it away: it is the cost of the same parameters under the function's own
    activation and loss; that hint comes first, whatever the first wrong gradient."""
    X, Y, params = network((3, 5, 4, 1), *checked)
    result = gradparity.check(example(*computes), X, Y, params, activation=checked[0], loss=checked[1])
    assert result.verdict == "fail" and "cost" in result.wrong
    assert result.mistake.pattern == "other-network"
    assert re.search(r"--activation (\w+) --loss (\w+)", result.hint).groups() == computes  # the options to use


def test_changing_an_input_in_place_is_noted_and_harmless():
    X, Y, params = network((3, 4, 1), "sigmoid", "bce")

    def scribbles(X, Y, parameters):
        answer = example_backprop(X, Y, parameters)
        X *= 0
        return answer

    result = gradparity.check(scribbles, X, Y, params)
    assert result.verdict == "pass"
    assert result.notes == ["scribbles changed its input X in place (it was given a copy)"]
    assert np.any(X != 0)


def broken(kind: str):
    """A backprop with one way of breaking the contract."""
    def backprop(X, Y, parameters):
        cost, grads = example_backprop(X, Y, parameters)
        if kind == "raises":
            return np.dot(X, X)
        if kind == "dict only":
            return grads
        if kind == "no db2":
            del grads["db2"]
        if kind == "text":
            grads["db1"] = "zeros"
        if kind == "cost array":
            cost = np.ones(3)
        return cost, grads
    return backprop


@pytest.mark.parametrize("kind, message", [
    ("raises", r"^backprop raised ValueError: shapes \(2,7\) and \(2,7\) not aligned"),
    ("dict only", r"^backprop returned a dict; it must return \(cost, grads\)$"),
    ("no db2", r"^backprop returned grads without db2 \(its keys: dW2, dW1, db1\)$"),
    ("text", r"^grads\['db1'\] is a str of dtype <U5, not an array of numbers$"),
    ("cost array", r"^the cost backprop returned has shape \(3,\); it must be one number$"),
])
def test_a_function_that_breaks_the_contract_is_a_clear_error(kind, message):
    X, Y, params = network((2, 3, 1), "sigmoid", "bce")
    with pytest.raises(BackpropError, match=message) as raised:
        gradparity.check(broken(kind), X, Y, params)
    assert (raised.value.traceback is not None) == (kind == "raises")


LEARNER_FILE = '''
import numpy as np
from backprop import backprop as right


def raises(X, Y, parameters):
    return helper(X)


def helper(X):
    return np.dot(X, X)


def nan(X, Y, parameters):
    cost, grads = right(X, Y, parameters)
    grads["dW1"][0, 0] = np.nan
    return cost, grads


def no_db2(X, Y, parameters):
    cost, grads = right(X, Y, parameters)
    del grads["db2"]
    return cost, grads


def wrong_shape(X, Y, parameters):
    cost, grads = right(X, Y, parameters)
    grads["db1"] = grads["db1"].ravel()
    return cost, grads
'''


@pytest.fixture
def learner_file(tmp_path, monkeypatch):
    """A learner's file of broken functions beside a copy of the example it imports from."""
    (tmp_path / "backprop.py").write_text(EXAMPLE.read_text())
    path = tmp_path / "mine.py"
    path.write_text(LEARNER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_passes_the_correct_example_and_writes_json(dtype, tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check", f"{EXAMPLE}:backprop", "--backends", "none", "--dtype", dtype, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    verdict = next(line for line in printed.splitlines() if line.startswith(("PASS", "FAIL")))
    assert verdict.startswith("PASS:") and "4 gradients" in verdict and f"({dtype})" in verdict, verdict
    assert max(map(len, printed.splitlines())) <= 100
    document = json.loads(out.read_text())
    assert (document["verdict"], document["wrong"], document["first_wrong"], document["hint"]) == ("pass", [], None, None)
    assert document["dtype"] == dtype and document["convention"] == "backprop" and document["called"] == ["backprop"]
    assert [(record["network"], record["m"]) for record in document["networks"]] == \
        [("2-4-1 sigmoid/bce", 400), ("2-5-3-1 sigmoid/bce", 400), ("2-6-4-3-1 sigmoid/bce", 400)]
    # in float32 the deeper networks' candidate costs lie within the tolerance of each other:
    # read from the output and gradients there
    assert dtype == "float32" or {record["read_from"] for record in document["networks"]} == {"cost"}


def test_cli_names_a_mutants_first_wrong_gradient_and_hint(tmp_path, capsys):
    mutant = next(mutant for mutant in MUTANTS if mutant.name == "sigmoid' = A(1 + A)")
    path = tmp_path / "mutant.py"
    path.write_text(mutant.source())
    out = tmp_path / "check.json"
    assert main(["check", str(path), "--hidden", "5,4", "--init", "xavier", "--backends", "none",
                 "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    verdict = next(line for line in printed.splitlines() if line.startswith(("PASS", "FAIL")))
    assert verdict.startswith("FAIL:") and GRADIENT.findall(verdict) == ["dW2", "db2", "dW1", "db1", "dW2"], verdict
    hints = [line.strip() for line in printed.splitlines() if line.strip().startswith("hint: ")]
    assert len(hints) == 1 and "sigmoid'" in hints[0] and "layer 2" in hints[0], hints
    document = json.loads(out.read_text())
    assert document["first_wrong"] == "dW2" and document["wrong"] == ["dW2", "db2", "dW1", "db1"]
    assert document["pattern"] == "derivative-form" and document["hint"].startswith("sigmoid' of layer 2")


def test_cli_nan_and_wrong_shapes_are_failed_checks(learner_file, capsys):
    assert main(["check", f"{learner_file}:nan", "--backends", "none"]) == 1
    hint = next(line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("hint: "))
    assert GRADIENT.findall(hint)[:1] == ["dW1"] and "NaN" in hint and re.findall(r"\d+ of \d+", hint) == ["1 of 8"]
    assert main(["check", f"{learner_file}:wrong_shape", "--backends", "none"]) == 1
    printed = capsys.readouterr().out
    verdict = next(line for line in printed.splitlines() if line.startswith("FAIL"))
    assert GRADIENT.findall(verdict)[-1] == "db1", verdict  # the first wrong gradient, said last
    assert printed.count("(4,)") >= 2 and printed.count("(4, 1)") >= 2  # the shapes, in the check and the hint
    hint = next(line.strip() for line in printed.splitlines() if line.strip().startswith("hint: "))
    assert "db1" in hint and "keepdims" in hint


def test_cli_a_raising_function_is_one_line_and_the_learners_traceback(learner_file):
    process = subprocess.run([sys.executable, "-m", "gradparity", "check", f"{learner_file}:raises", "--backends",
                              "none"], capture_output=True, text=True, cwd=learner_file.parent, timeout=120)
    assert process.returncode == 2 and process.stdout == ""
    lines = process.stderr.splitlines()
    assert lines[0] == ("gradparity: error: raises raised ValueError: shapes (2,400) and (2,400) not aligned: "
                        "400 (dim 1) != 2 (dim 0) (at mine.py:11)")
    assert lines[1] == "Traceback (most recent call last):"
    assert f'  File "{learner_file}", line 7, in raises' in lines
    assert "gradparity" not in "\n".join(lines[1:])  # the learner's frames only


HEADLINE = re.compile(r"gradparity check: (?P<function>\w+) on (?P<network>\S+ \S+), (?P<data>.+?) "
                      r"\(m = (?P<m>\d+)\), (?P<dtype>float\d+)")


def headline(out: str) -> dict[str, str]:
    """The parts of the headline of ``gradparity check``'s table: function, network, data, m
    and dtype (a wrapped headline joined)."""
    return HEADLINE.search(" ".join(out.split())).groupdict()


def test_cli_missing_key_is_exit_2(learner_file, capsys):
    assert main(["check", f"{learner_file}:no_db2", "--backends", "none"]) == 2
    assert capsys.readouterr().err == "gradparity: error: no_db2 returned grads without db2 (its keys: dW2, dW1, db1)\n"


def test_cli_checks_a_catalogue_case_and_a_package_function(tmp_path, monkeypatch, capsys):
    package = tmp_path / "course"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nn.py").write_text(EXAMPLE.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "course.nn:backprop", "--case", "seed-2layer", "--backends", "none"]) == 0
    said = headline(capsys.readouterr().out)
    assert (said["function"], networks(said["network"]), said["data"]) == (
        "backprop", [("2-4-1", "sigmoid", "bce")], "case seed-2layer")
    assert (said["m"], said["dtype"]) == ("400", "float64")


@pytest.mark.torch
@pytest.mark.skipif(missing_requirement(REGISTRY["torch"]) is not None, reason="torch is not installed")
def test_a_framework_corroborates_right_and_wrong_gradients(tmp_path):
    """torch's autodiff, in its own worker, agrees with the right quantities of a mutant and
    differs on the wrong ones, as the reference says."""
    mutant = next(mutant for mutant in MUTANTS if mutant.name == "db over the wrong axis")
    X, Y, params = mutant.network()
    result = gradparity.check(mutant.backprop(), X, Y, params, activation=mutant.hidden, loss=mutant.loss,
                              backends=["torch"])
    torch = result.corroboration["torch"]
    assert torch["status"] == "pass"
    verdicts = {quantity: cell["verdict"] for quantity, cell in torch["quantities"].items()}
    assert result.wrong == ["db3", "db2", "db1"]
    assert verdicts == {"cost": "agrees", "dW3": "agrees", "db3": "differs", "dW2": "agrees", "db2": "differs",
                        "dW1": "agrees", "db1": "differs"}


def test_cli_checks_your_own_parameters(tmp_path, capsys):
    params = network((2, 3, 1), "sigmoid", "bce")[2]
    np.savez(tmp_path / "mine.npz", **params)
    assert main(["check", str(EXAMPLE), "--params", str(tmp_path / "mine.npz"), "--backends", "none"]) == 0
    said = headline(capsys.readouterr().out)
    assert (said["function"], networks(said["network"])) == ("backprop", [("2-3-1", "sigmoid", "bce")])
    assert said["data"].split(", ") == ["flower", str(tmp_path / "mine.npz")]  # the data, with the parameters


def test_a_deviating_framework_sides_with_the_reference_or_differs():
    """Against a framework that is itself off the reference on a quantity (by 1e-8 here), a
    value as close to it as the reference is ≈ (deviates); a wrong one is ✗ (differs)."""
    from gradparity.core.compare import ComparisonContext, Tolerance, compare
    from gradparity.learner import cell

    framework = np.array([1.0 + 1e-8, 2.0])
    terms = ComparisonContext("float64", Tolerance(1e-15, "test"))
    own = compare("dW1", "gradients", framework, np.array([1.0, 2.0]), terms)
    assert own.verdict == "fail"
    for learner_value, verdict in (([1.0, 2.0], "deviates"), ([1.0 + 1e-8, 2.0], "agrees"), ([1.5, 2.0], "differs")):
        check = compare("dW1", "gradients", np.array(learner_value), framework, terms)
        assert cell(check, own)["verdict"] == verdict
        assert cell(check)["verdict"] == ("agrees" if verdict == "agrees" else "differs")
