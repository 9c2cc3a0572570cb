"""A learner's code as they wrote it: the conventions found by names and signatures, the
network read from the learner's own cost, several depths, what the code lacks said as such,
and a JSON document written whatever happens.

The learners' files are in ``learners/``: the course's deep ReLU network (``course_deep``),
its one-hidden-layer tanh network (``course_shallow``) and the document's own functions
(``document_code``); the variants below are one-line edits of them, made in a temporary folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradparity
from gradparity import learner
from gradparity.conventions import ConventionError
from gradparity.reports import validate_check
from shipped import assert_follows_its_shipped_schema

LEARNERS = Path(__file__).parent / "learners"
EXAMPLE = Path(__file__).parents[1] / "examples" / "backprop.py"
GRADPARITY = Path(sys.executable).with_name("gradparity")


def run_check(tmp_path: Path, target: Path | str, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    """``gradparity check TARGET --backends none --json`` through the installed command, from
    another folder; its result and the JSON document it wrote."""
    json_path = tmp_path / "check.json"
    result = subprocess.run([str(GRADPARITY), "check", str(target), "--backends", "none", "--json", str(json_path),
                             *options], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    return result, json.loads(json_path.read_text())


def variant(tmp_path: Path, source: str, edits: dict[str, str], appended: str = "") -> Path:
    """A copy of ``learners/SOURCE.py`` with each edit applied once (the edit must apply)."""
    text = (LEARNERS / f"{source}.py").read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / f"{source}_variant.py"
    path.write_text(text + appended)
    return path


@pytest.mark.parametrize("source, convention, called, network, depths", [
    ("course_deep", "course", ["L_model_forward", "compute_cost", "L_model_backward"], "relu/bce", 3),
    ("course_shallow", "course", ["forward_propagation", "compute_cost", "backward_propagation"], "tanh/bce", 1),
    ("document_code", "document", ["forward", "cal_cost", "backward"], "sigmoid/bce", 3)])
def test_a_learners_file_passes_as_written_with_the_network_read_from_its_cost(tmp_path, source, convention, called,
                                                                               network, depths):
    result, document = run_check(tmp_path, LEARNERS / f"{source}.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (document["verdict"], document["convention"], document["called"]) == ("pass", convention, called)
    assert [record["network"].split()[1] for record in document["networks"]] == [network] * depths
    assert all(record["read_from"] == "cost" for record in document["networks"])
    assert f"{convention} form; called {', '.join(called)}" in " ".join(result.stdout.split())
    finite = [cell["verdict"] for record in document["networks"]
              for cell in record["corroboration"]["finite-diff"]["quantities"].values()]
    assert set(finite) <= {"agrees", "unmeasured"} and finite.count("agrees") > len(finite) / 2  # unmeasured: kinks


def test_a_fixed_depth_function_is_checked_at_its_depth_and_told_so(tmp_path):
    result, document = run_check(tmp_path, LEARNERS / "course_shallow.py")
    assert [record["network"].split()[0] for record in document["networks"]] == ["2-4-1"]
    said = " ".join(document["notes"])
    assert "handles 2 layers only" in said and "2-5-3-1" in said and "2-6-4-3-1" in said


def test_a_correct_relu_network_passed_by_default_at_the_documents_initialisation():
    """At ×0.01 the candidates' costs differ by about 4e-5, far beyond float64's tolerance:
    the cost singles out relu/bce, where the document's sigmoid default failed every gradient."""
    module = learner.import_file(LEARNERS / "course_deep.py")
    result = gradparity.check(module)
    assert result.verdict == "pass", result.message()
    assert {network.network.split()[1] for network in result.networks} == {"relu/bce"}
    sigmoid_cost = learner.judge.reference_result(result_case(result, "sigmoid")).evaluation.cost
    relu_cost = learner.judge.reference_result(result_case(result, "relu")).evaluation.cost
    assert 1e-6 < abs(sigmoid_cost - relu_cost) < 1e-3


def result_case(result: learner.BackpropCheck, activation: str) -> gradparity.Case:
    """The first network of ``result`` under another hidden activation (relu/bce -> activation/bce)."""
    X, Y = gradparity.core.datasets.load_dataset("flower")
    return learner.own_networks((X, Y), "flower", (activation, "bce"), "float64",
                                learner.Initialisation(learner.OWN_HIDDEN[:1]))[0]


@pytest.mark.parametrize("edits, appended, note", [
    ({"    L = len(parameters) // 2": "    L = len(layers_dims) - 1"}, "\nlayers_dims = [12288, 20, 7, 5, 1]\n",
     "global layers_dims"),
    ({"    L = len(parameters) // 2": "    L = len(layers_dims) - 1"}, "", "global layers_dims (not defined)"),
    ({"def L_model_backward(AL, Y, caches):": "def L_model_backward(AL, Y, caches, learning_rate):"}, "",
     "L_model_backward's learning_rate was given 0.0")], ids=["global sizes", "undefined global", "extra argument"])
def test_what_a_learners_code_reads_or_takes_beyond_the_convention_is_supplied_and_said(tmp_path, edits, appended,
                                                                                         note):
    result, document = run_check(tmp_path, variant(tmp_path, "course_deep", edits, appended))
    assert result.returncode == 0, result.stdout + result.stderr
    assert document["verdict"] == "pass" and len(document["networks"]) == 3
    assert any(note in line for line in document["notes"]), document["notes"]


def test_code_without_a_cost_function_is_checked_on_its_gradients_and_the_network_read_from_them(tmp_path):
    text = (LEARNERS / "course_deep.py").read_text()
    start, end = text.index("def compute_cost"), text.index("def sigmoid_backward")
    path = tmp_path / "no_cost.py"
    path.write_text(text[:start] + text[end:])
    result, document = run_check(tmp_path, path)
    assert result.returncode == 0 and document["verdict"] == "pass"
    records = document["networks"]
    assert {record["read_from"] for record in records} == {"forward pass and gradients"}
    assert {record["network"].split()[1] for record in records} == {"relu/bce"}
    assert all(record["checks"][0]["total"] == 0 for record in records)  # the cost: nothing to compare
    assert any("no cost function" in note for note in document["notes"])


def test_a_slip_in_the_cost_fails_the_cost_alone_with_its_hint(tmp_path):
    result, document = run_check(tmp_path, variant(tmp_path, "course_deep", {"(1 - AL)) / m": "(1 - AL))"}))
    assert result.returncode == 1
    assert (document["verdict"], document["wrong"], document["first_wrong"], document["pattern"]) == \
        ("fail", ["cost"], None, "missing-1/m")
    assert {record["network"].split()[1] for record in document["networks"]} == {"relu/bce"}


@pytest.mark.parametrize("edits, first_wrong, pattern", [
    ({"db = np.sum(dZ, axis=1, keepdims=True) / m": "db = np.sum(dZ, axis=1, keepdims=True) / m * 2"}, "db", None),
    ({"    return dA * s * (1 - s)": "    return dA * s * (1 + s)"}, "dW", "derivative-form")],
    ids=["db doubled", "sigmoid' as A(1 + A) in sigmoid_backward"])
def test_a_slip_in_a_gradient_names_the_first_wrong_one_on_every_depth(tmp_path, edits, first_wrong, pattern):
    result, document = run_check(tmp_path, variant(tmp_path, "course_deep", edits))
    assert result.returncode == 1 and document["first_wrong"] == f"{first_wrong}2"
    assert [record["first_wrong"] for record in document["networks"]] == [f"{first_wrong}{n}" for n in (2, 3, 4)]
    assert pattern is None or {record["pattern"] for record in document["networks"]} == {pattern}


@pytest.mark.parametrize("edits, appended, said", [
    ({"    L = len(caches)\n": "    L = DEPTH\n"}, "\nDEPTH = 2\n", "returned grads without dW3, db3"),
    ({'caches[l], "relu")': 'caches[min(l + 1, L - 2)], "relu")'}, "", "raised IndexError")],
    ids=["global depth", "wrong cache index"])
def test_a_bug_that_shows_at_some_depth_is_an_error_naming_the_network_with_a_document(tmp_path, edits, appended,
                                                                                        said):
    """Both pass on 2-4-1; on 2-5-3-1 a global depth of 2 leaves layer 3 out of the gradients
    (while its numbers depend on W3: not code written for two layers), and a cache index one
    off raises."""
    result, document = run_check(tmp_path, variant(tmp_path, "course_deep", edits, appended))
    assert result.returncode == 2
    assert result.stderr.startswith(f"gradparity: error: on the 2-5-3-1 network: L_model_backward {said}")
    assert document["verdict"] == "error" and document["message"] == result.stderr.splitlines()[0].split(": ", 2)[2]
    if "raised" in said:
        frames = re.findall(r'File "([^"]+)", line \d+', document["traceback"])
        assert frames and Path(frames[-1]).name == "course_deep_variant.py"  # raised in the learner's code
        assert document["traceback"].rstrip().splitlines()[-1].startswith("IndexError")


def test_the_json_document_is_written_for_a_function_that_raises(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("def backprop(X, Y, parameters):\n    return 1 / 0\n")
    result, document = run_check(tmp_path, path)
    assert result.returncode == 2 and document["verdict"] == "error"
    assert document["message"].startswith("backprop raised ZeroDivisionError")
    assert document["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")


@pytest.mark.parametrize("text, said", [
    ("def helper(x):\n    return x\n", ["defines helper", "none of the forms", "course: L_model_forward"]),
    ("def L_model_forward(X, parameters):\n    return X, []\n", ["L_model_forward of the course form but no "
                                                                   "L_model_backward"]),
    ("from course_deep import L_model_forward, L_model_backward, compute_cost\n"
     "def backprop(X, Y, parameters):\n    return 0.0, {}\n", ["two conventions at once", "--convention"])],
    ids=["none", "part of one", "two"])
def test_code_that_fits_no_convention_or_two_gets_one_line(tmp_path, text, said):
    path = tmp_path / "mine.py"
    path.write_text(text)
    result = subprocess.run([str(GRADPARITY), "check", str(path), "--backends", "none"], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(LEARNERS), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert all(part in result.stderr for part in said), result.stderr


def test_convention_forces_one_form():
    module = learner.import_file(LEARNERS / "course_deep.py")
    with pytest.raises(ConventionError, match="none of the forms gradparity check knows: document: forward"):
        learner.learner_calls(module, "document")
    assert learner.learner_calls(module, "course").convention.name == "course"


def test_an_explicit_network_is_checked_as_given_and_central_differences_of_the_own_cost_say_why(tmp_path):
    """Checked as sigmoid, the relu code is wrong; central differences of its own cost agree
    with its gradients, and the output says so instead of contradicting the verdict."""
    result, document = run_check(tmp_path, LEARNERS / "course_deep.py", "--hidden", "4", "--activation", "sigmoid",
                                 "--loss", "bce")
    assert result.returncode == 1
    [record] = document["networks"]
    assert record["read_from"] == "options" and record["network"] == "2-4-1 sigmoid/bce"
    assert "cost" in record["wrong"] and record["explanation"].startswith("central differences of your own cost agree")
    cells = record["corroboration"]["finite-diff"]["quantities"]
    assert {cells[name]["verdict"] for name in record["wrong"] if name != "cost"} == {"agrees"}
    assert record["pattern"] == "other-network"
    assert re.search(r"--activation (\w+) --loss (\w+)", record["hint"]).groups() == ("relu", "bce")  # what it is


def test_a_file_whose_top_level_training_cannot_run_is_checked_on_its_definitions(tmp_path):
    """A course script trains at import on a data file that is not here: its definitions
    alone are checked, and the note says why."""
    path = tmp_path / "script.py"
    path.write_text((LEARNERS / "course_deep.py").read_text() + "\ntrain_x = np.load('train_catvnoncat.npy')\n"
                    "parameters = L_layer_model(train_x, None, [12288, 20, 7, 5, 1])\n")
    result, document = run_check(tmp_path, path)
    assert result.returncode == 0 and document["verdict"] == "pass"
    assert any(note.startswith("importing script.py ran its top-level code, which raised FileNotFoundError")
               for note in document["notes"]), document["notes"]


def test_imports_that_are_not_here_are_left_out_and_a_name_they_would_give_is_said(tmp_path):
    """A notebook exported as a script imports the course's test helpers and calls IPython
    at its top: its definitions are checked without them; where a function needs a name from
    them, the error says where it may come from."""
    head = ("from testCases_v4a import *\nfrom dnn_utils_v2 import sigmoid_backward\n"
            "get_ipython().run_line_magic('matplotlib', 'inline')\n")
    text = (LEARNERS / "course_deep.py").read_text()
    (tmp_path / "exported.py").write_text(head + text)
    result, document = run_check(tmp_path, tmp_path / "exported.py")
    assert result.returncode == 0 and document["verdict"] == "pass"
    left_out = [re.search(r"imports ([\w, ]+), which", note) for note in document["notes"]]
    assert [found.group(1).split(", ") for found in left_out if found] == [["testCases_v4a", "dnn_utils_v2"]]
    helper = text.index("def sigmoid_backward")
    (tmp_path / "needs.py").write_text(head + text[:helper] + text[text.index("def relu_backward"):])
    result, document = run_check(tmp_path, tmp_path / "needs.py")
    assert result.returncode == 2 and document["verdict"] == "error"
    assert document["message"].endswith("perhaps it comes from testCases_v4a or dnn_utils_v2, which cannot be "
                                         "imported here")


def test_every_check_document_follows_its_schema_and_a_broken_one_is_told(tmp_path):
    """A pass (three networks), a fail and an error document, as the command wrote them."""
    slip = variant(tmp_path, "course_deep", {"(1 - AL)) / m": "(1 - AL))"})
    raises = tmp_path / "raises.py"
    raises.write_text("def backprop(X, Y, parameters):\n    return 1 / 0\n")
    documents = [run_check(tmp_path, target)[1] for target in (LEARNERS / "course_deep.py", slip, raises)]
    assert [document["verdict"] for document in documents] == ["pass", "fail", "error"]
    assert [validate_check(document) for document in documents] == [[], [], []]
    for document in documents:
        assert_follows_its_shipped_schema(document)
    broken = json.loads(json.dumps(documents[1]))
    broken["networks"][0]["read_from"] = "guessed"
    del broken["networks"][1]["checks"]
    broken["verdict"] = "pass"
    assert validate_check(broken) == ["document.networks[0].read_from: 'guessed' is not one of cost, forward pass and "
                                      "gradients, default, options", "document.networks[1].checks: missing",
                                      "document.verdict: pass, but a network failed"]


def test_a_forms_names_are_found_in_any_case(tmp_path):
    text = (LEARNERS / "course_deep.py").read_text().replace("L_model_", "l_model_").replace("compute_cost", "calc_cost")
    (tmp_path / "lower.py").write_text(text)
    result, document = run_check(tmp_path, tmp_path / "lower.py")
    assert result.returncode == 0 and document["called"] == ["l_model_forward", "calc_cost", "l_model_backward"]
