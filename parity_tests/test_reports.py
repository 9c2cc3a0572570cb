"""The report renderer on a synthetic, well-formed result document: every section and plot is
written, the HTML is self-contained, the writer is atomic and the output deterministic."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import replace
from html import escape as html_escape
from itertools import takewhile
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from gradparity import reports
from gradparity.backends import REGISTRY
from gradparity.core.cases import CATALOGUE
from gradparity.core.optimizers import Training
from gradparity.core.results import BackendResult, Check, Document, TrainingRecord
from gradparity.reports import (DocumentError, OutputError, read_document, render, validate_bench, validate_document,
                                write_report)
from gradparity.reports.digest import margin, speed_text
from gradparity.reports.terminal import WIDTH, print_summary
from rendered import indents, paragraphs, rows_of, table_rows, tally

ROOT = Path(__file__).resolve().parents[1]
EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23}
STATUSES = {"numpy": "pass", "jax": "pass", "torch": "fail", "keras-torch": "known_deviation",
            "keras-tensorflow": "stale", "tensorflow": "error", "keras-jax": "skipped"}
FAILURE_MESSAGE = ("Tensor-likes are not close!\n\nMismatched elements: 2 / 8 (25.0%)\n"
                   "Greatest absolute difference: 3.2e-03 at index (1, 0) (up to 1e-12 allowed)\n"
                   "Greatest relative difference: 4.1e-02 at index (1, 0) (up to 1e-10 allowed)")
ERROR_REASON = ('Traceback (most recent call last):\n  File "<worker>", line 1, in <module>\n'
                "RuntimeError: tensorflow worker exited with signal 11 (SIGSEGV)")
STDERR = "I0000 cudart_stub.cc:31] Could not find cuda drivers\nFatal Python error: Segmentation fault"
SKIP_REASON = "keras is not installed (pip install 'gradparity[keras]')"
CAUSE = "Keras clips probabilities to [1e-7, 1 - 1e-7] in binary cross-entropy."
STALE = ("registered deviation 'keras-tensorflow-tanh' no longer occurs: its operations (tanh) now agree "
         "with NumPy; remove it from core/deviations.py")
PATTERN = "errors start at A1: look at layer 1's operations; the probes single out matmul"
REPRODUCER = ("import torch\nimport numpy as np\n\nx = np.array([[0.1, 0.2]])\ny = np.array([[0.3], [0.4]])\n"
              "got = (torch.tensor(x) @ torch.tensor(y)).numpy()\nexpected = x @ y\n"
              "error = float(np.max(np.abs(got - expected))) / float(np.max(np.abs(x) @ np.abs(y)))\n"
              "assert error <= 3.55e-15, f\"relative error {error:.3g} (up to 3.55e-15 allowed in float64)\"\n")
SECTIONS = ("How to read this report", "Summary", "Known deviations", "Failures and errors", "Cases",
            "Run time", "Performance", "Environment")
CASES = {"seed-2layer": ([2, 4, 1], True), "deep-tanh": ([3, 5, 4, 1], False)}
# each synthetic case's training, six steps like the reference's costs: seed-2layer (and any case
# not named) full-batch gradient descent, deep-tanh Adam (Algorithm 1) on batches of 150 of m = 400
# in data order, keras-document Adam's efficient form on shuffled batches of 200
TRAININGS = {"seed-2layer": Training(learning_rate=1.2, epochs=6),
             "deep-tanh": Training("adam", learning_rate=0.01, epochs=2, batch_size=150, shuffle="none"),
             "keras-document": Training("adam-hat", learning_rate=1e-3, epochs=3, batch_size=200, epsilon=1e-7)}
# the Adam form each framework runs, whichever the case asks; the others run the case's own
ADAM_FORM = {"torch": "adam", "jax": "adam", "keras-torch": "adam-hat", "keras-tensorflow": "adam-hat",
             "keras-jax": "adam-hat", "tensorflow": "adam-hat"}
PARAMS_APART = {"float64": 2.5e-4, "float32": 3e-6}  # deep-tanh's adam and adam-hat params, relative
# the registry's eight backends, each in one status on every run of the catalogue
CATALOGUE_STATUSES = dict(zip(REGISTRY, ("pass", "pass", "pass", "pass", "error", "stale", "known_deviation",
                                         "fail")))


def make_check(quantity: str, kind: str, dtype: str, rel: float, verdict: str = "pass",
               message: str | None = None, deviation: dict | None = None) -> dict:
    """One comparison record, its numbers consistent with ``rel``."""
    rtol = 64 * EPS[dtype]
    return {"quantity": quantity, "kind": kind, "max_abs_error": rel * 0.5, "max_rel_error": rel * 3,
            "rel_error": rel, "ulps": rel / EPS[dtype], "cosine": 1 - rel ** 2, "worst_index": [1, 0],
            "mismatched": 0 if verdict == "pass" else 2, "total": 8, "rtol": rtol, "atol": rtol / 10, "excess": rel / rtol,
            "tolerance_reason": f"{kind}: 64 eps({dtype}) for fan-in up to 5", "verdict": verdict,
            "message": message, "deviation": deviation, "first_index": None if verdict == "pass" else [1, 0]}


def make_backend(status: str, case: str, dtype: str, layers: list[int], reference: list[float],
                 optimizer: str | None = None) -> dict:
    """A backend result of ``status``; its trajectory run with ``optimizer``. A failing one
    drifts from the second step on: its first divergent step is 2."""
    if status in ("error", "skipped"):
        return {"status": status, "reason": ERROR_REASON if status == "error" else SKIP_REASON,
                "dtype_used": None, "cost": None, "costs": None, "checks": [], "optimizer": None,
                "first_divergent_layer": None, "first_divergent_step": None, "worst": None, "diagnosis": None,
                "stderr": STDERR if status == "error" else None, "gradients": None}
    eps = EPS[dtype]
    checks = [make_check("cost", "cost", dtype, 2 * eps)]
    for layer in range(1, len(layers)):
        for grad in (f"dW{layer}", f"db{layer}"):
            rel = (layer + 1) * eps
            if status == "fail" and grad == "dW1":
                checks.append(make_check(grad, "gradients", dtype, 4.1e-2, "fail", FAILURE_MESSAGE))
            elif status == "known_deviation" and layer == len(layers) - 1:
                deviation = {"name": "keras-clipping", "cause": CAUSE, "ops": ["bce_probabilities"],
                             "measured": "0.63 relative with gradparity run (bound 0.67)"}
                checks.append(make_check(grad, "gradients", dtype, 3.1e-7, "known_deviation",
                                         deviation=deviation))
            else:
                checks.append(make_check(grad, "gradients", dtype, rel))
    checks += [make_check(f"A{l}", "activations", dtype, eps) for l in range(1, len(layers))]
    drift = 1e-3 if status == "fail" else eps
    costs = [c + drift * k for k, c in enumerate(reference)]
    costs[0] = reference[0]  # an exact zero difference, drawn at the floor
    checks.append(make_check("trajectory cost", "trajectory", dtype, drift,
                             "fail" if status == "fail" else "pass",
                             FAILURE_MESSAGE if status == "fail" else None))
    checks[-1]["first_index"] = [1] if status == "fail" else None
    worst = max(checks, key=lambda c: c["rel_error"])
    reason = {"fail": "dW1 is not close", "stale": STALE}.get(status, "")
    return {"status": status, "reason": reason, "dtype_used": dtype, "cost": reference[0], "costs": costs,
            "checks": checks, "optimizer": optimizer, "first_divergent_layer": 1 if status == "fail" else None,
            "first_divergent_step": 2 if status == "fail" else None,
            "worst": {"quantity": worst["quantity"], "rel_error": worst["rel_error"], "ulps": worst["ulps"]},
            "diagnosis": make_diagnosis(dtype) if status in ("fail", "known_deviation") else None,
            "stderr": None, "gradients": None}


def make_diagnosis(dtype: str) -> dict:
    """The diagnosis of a torch run whose matmul deviates (a product computed in float32)."""
    op = {"op": "matmul", "source": "got = tx @ ty", "input_dtype": dtype, "output_dtype": "float32",
          "rel_error": 2.9e-8, "tolerance": 16 * EPS[dtype]}
    return {"ops": [op], "probed": ["matmul", "tanh"], "pattern": PATTERN, "reproducer": REPRODUCER}


def make_boundary() -> dict:
    xs, ys = [-1.0, -0.5, 0.0, 0.5, 1.0], [-1.0, 0.0, 0.5, 1.0]
    probability = [[1 / (1 + math.exp(-4 * (x + y))) for x in xs] for y in ys]
    points = [[-0.8, -0.3, 0.2, 0.7, 0.9, -0.6], [-0.7, -0.2, 0.4, 0.6, -0.1, 0.8]]
    labels = [[0, 0, 1, 1, 1, 1]]  # the reference's (1, m) row
    return {"x": xs, "y": ys, "probability": probability, "points": points, "labels": labels,
            "accuracy": 83.3, "iterations": 5000}


def make_formulations(reference: list[float], dtype: str) -> dict:
    """How far an Adam case's two forms end apart: last costs 4e-7 apart, the final parameters
    ``PARAMS_APART``, worst for W2, next to a trajectory rtol of 64 eps x 6 steps."""
    last = {"adam": reference[-1], "adam-hat": reference[-1] * (1 + 4e-7)}
    return {"costs": {form: [*reference[:-1], cost] for form, cost in last.items()}, "last_costs": last,
            "last_cost": abs(last["adam"] - last["adam-hat"]) / last["adam-hat"],
            "params": PARAMS_APART[dtype], "worst_param": "W2", "rtol": 64 * EPS[dtype] * 6}


def make_document(cases: tuple[str, ...] = tuple(CASES), statuses: dict[str, str] = STATUSES) -> dict:
    """``cases`` × 2 dtypes × the backends of ``statuses`` (by default 7, one of each status),
    following "gradparity/2"; each case trains as ``TRAININGS`` says (else like seed-2layer),
    on an Adam case every framework in the form ``ADAM_FORM`` gives it."""
    results = []
    for case in cases:
        layers, two_d = CASES.get(case, ([2, 4, 1], False))
        training = TRAININGS.get(case, TRAININGS["seed-2layer"])
        for dtype in ("float64", "float32"):
            reference = [0.693 * math.exp(-0.1 * k) for k in range(6)]
            adam = training.optimizer in ("adam", "adam-hat")
            results.append({
                "case": case, "description": f"{case}: a synthetic case for the renderer tests.",
                "dtype": dtype, "data": f"{case}-{dtype}", "layers": layers, "hidden_activation": "tanh" if "tanh" in case else "sigmoid",
                "loss": "bce", "m": 400, "learning_rate": training.learning_rate, "steps": training.steps(400),
                "training": training.to_dict(400),
                "reference": {"cost": reference[0], "costs": reference, "optimizer": training.optimizer,
                              "formulations": make_formulations(reference, dtype) if adam else None,
                              "decision_boundary": make_boundary() if two_d else None, "gradients": None},
                "backends": {name: make_backend(status, case, dtype, layers, reference,
                                                ADAM_FORM.get(name, training.optimizer) if adam else training.optimizer)
                             for name, status in statuses.items()}})
    per_status = {s: len(results) * list(statuses.values()).count(s) for s in ("pass", "fail", "known_deviation",
                                                                               "skipped", "error", "stale")}
    return {
        "schema": "gradparity/2",
        "environment": {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "cpu": "Synthetic CPU @ 3 GHz",
                        "cores": 2, "numpy": "2.4.6", "blas": "openblas 0.3.27", "device": "cpu",
                        "frameworks": {"torch": "torch 2.13.0", "jax": "jax 0.10.2"},
                        "flags": {"torch": {"tf32": "off"}, "jax": {"jax_enable_x64": "on"}},
                        "allow_tf32": False, "git_commit": "abc123", "environments": {}},
        "options": {"cases": list(cases), "backends": list(statuses), "dtypes": ["float64", "float32"],
                    "steps": sorted({r["steps"] for r in results}), "strict": False, "trajectories": True,
                    "optimizers": list(dict.fromkeys(r["training"]["optimizer"] for r in results)), "shard": None,
                    "roles": {name: "control" if name == "numpy" else "framework" for name in statuses},
                    "merged_from": []},
        "results": results,
        "summary": {"passed": per_status["pass"], "failed": per_status["fail"],
                    "known_deviations": per_status["known_deviation"], "skipped": per_status["skipped"],
                    "errors": per_status["error"], "stale": per_status["stale"]},
        "run": {"date": "2026-01-02T03:04:05+00:00", "duration_s": 12.5, "threads_per_worker": 1,
                "workers_at_a_time": 2, "backend_seconds": {"numpy": 0.4, "jax": 3.2, "torch": 2.1, "keras-torch": 4.0,
                                                            "tensorflow": 1.5},
                "import_seconds": {}, "case_seconds": {}, "timing": {}},
    }


def as_version_1(document: dict) -> dict:
    """``document`` as the last ``gradparity/1`` runs wrote it: controls instead of roles, steps
    as one number, no data fingerprint, array or probed fields, no run timing nor the Adam
    forms' costs (``core.results.upgrade`` reads it)."""
    options, run = document["options"], document["run"]
    document["schema"] = "gradparity/1"
    del document["environment"]["environments"], options["merged_from"], options["shard"], options["trajectories"]
    options["controls"] = [name for name, role in options.pop("roles").items() if role == "control"]
    options["steps"] = options["steps"][0]
    for key in ("threads_per_worker", "workers_at_a_time", "import_seconds", "case_seconds", "timing"):
        del run[key]
    for result in document["results"]:
        del result["data"], result["reference"]["gradients"]
        if result["reference"]["formulations"]:
            del result["reference"]["formulations"]["costs"]
        for backend in result["backends"].values():
            del backend["gradients"]
            if backend["diagnosis"]:
                del backend["diagnosis"]["probed"]
    return document


def before_optimizers(document: dict) -> dict:
    """``document`` as a run before optimizers and mini-batches wrote it (``gradparity/1``): no
    training, no optimizer forms, no first divergent step or first index."""
    as_version_1(document)
    del document["options"]["optimizers"]
    for result in document["results"]:
        del result["training"], result["reference"]["optimizer"], result["reference"]["formulations"]
        for backend in result["backends"].values():
            del backend["optimizer"], backend["first_divergent_step"]
            for check in backend["checks"]:
                del check["first_index"]
    return document


def make_bench() -> dict:
    rows = [("numpy", "eager", 1e-4, None), ("torch", "eager", 2e-4, None),
            ("torch", "compiled", None, "torch.compile is unavailable here"), ("jax", "eager", 2e-3, None),
            ("jax", "compiled", 5e-5, None)]
    return {"schema": "gradparity-bench/1", "environment": {"python": "3.11.7", "threads": 2},
            "bandwidth": None,
            "results": [{"shape": "seed", "dtype": "float64", "backend": b, "mode": mode, "median_s": t,
                         "min_s": t and t * 0.9, "max_s": t and t * 1.3, "compile_s": 0.8 if mode == "compiled" and t else None,
                         "ratio_to_reference": t and t / 1e-4, "note": note} for b, mode, t, note in rows]}


@pytest.fixture
def document() -> dict:
    return make_document()


@pytest.fixture
def small() -> dict:
    """One case (two dtypes): enough for the writer's tests, and quick to render."""
    return make_document(("seed-2layer",))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[dict[str, Path], str, str]:
    """The fixture document rendered once with a benchmark: (paths, html, markdown)."""
    paths = write_report(make_document(), tmp_path_factory.mktemp("report") / "out", make_bench())
    return paths, paths["report.html"].read_text("utf-8"), paths["report.md"].read_text("utf-8")


def test_fixture_is_valid():
    assert validate_document(make_document()) == []
    assert validate_bench(make_bench()) == []


def _delete_schema(d): del d["schema"]
def _bad_status(d): d["results"][0]["backends"]["numpy"]["status"] = "passed"
def _bad_verdict(d): d["results"][1]["backends"]["jax"]["checks"][0]["verdict"] = "ok"
def _string_cost(d): d["results"][0]["backends"]["jax"]["cost"] = "0.69"
def _nan_error(d): d["results"][0]["backends"]["jax"]["checks"][2]["rel_error"] = float("nan")
def _wrong_count(d): d["summary"]["passed"] += 1
def _ragged_grid(d): d["results"][0]["reference"]["decision_boundary"]["probability"][0].pop()
def _bool_for_int(d): d["results"][2]["m"] = True
def _results_dict(d): d["results"] = {}
def _missing_reason(d): del d["results"][3]["backends"]["keras-jax"]["reason"]
def _bad_deviation(d): d["results"][0]["backends"]["keras-torch"]["checks"][-2]["deviation"] = {"cause": "x"}
def _string_op_error(d): d["results"][0]["backends"]["torch"]["diagnosis"]["ops"][0]["rel_error"] = "2.9e-8"
def _no_pattern(d): del d["results"][1]["backends"]["torch"]["diagnosis"]["pattern"]
def _roles_list(d): d["options"]["roles"] = ["numpy"]
def _role_word(d): d["options"]["roles"]["numpy"] = "witness"
def _strict_word(d): d["options"]["strict"] = "yes"
def _stale_uncounted(d): d["summary"]["stale"] = 0
def _stale_absent(d): del d["summary"]["stale"]
def _stderr_number(d): d["results"][0]["backends"]["tensorflow"]["stderr"] = 139
def _unknown_optimizer(d): d["results"][2]["training"]["optimizer"] = "rmsprop"
def _batch_size_text(d): d["results"][2]["training"]["batch_size"] = "150"
def _no_steps(d): del d["results"][0]["training"]["steps"]
def _rate_text(d): d["results"][0]["training"]["hyperparameters"]["learning_rate"] = "1.2"
def _no_rtol(d): del d["results"][2]["reference"]["formulations"]["rtol"]
def _infinite_gap(d): d["results"][3]["reference"]["formulations"]["params"] = math.inf
def _unknown_form(d): d["results"][2]["reference"]["formulations"]["last_costs"]["adamw"] = 0.4
def _backend_form(d): d["results"][2]["backends"]["keras-torch"]["optimizer"] = "adamw"
def _fractional_step(d): d["results"][0]["backends"]["torch"]["first_divergent_step"] = 2.5
def _first_index_text(d): d["results"][0]["backends"]["torch"]["checks"][-1]["first_index"] = ["1"]
def _optimizers_word(d): d["options"]["optimizers"] = "sgd"


@pytest.mark.parametrize("breaks, expected", [
    (_delete_schema, "document.schema: missing"),
    (_bad_status, "results[0].backends.numpy.status: 'passed' is not one of"),
    (_bad_verdict, "results[1].backends.jax.checks[0].verdict: 'ok' is not one of"),
    (_string_cost, "results[0].backends.jax.cost: expected number or null, got str"),
    (_nan_error, "results[0].backends.jax.checks[2].rel_error: nan is not valid JSON"),
    (_wrong_count, "summary.passed: 9 but 8 backend results"),
    (_ragged_grid, "decision_boundary.probability: expected 4 rows of 5 values"),
    (_bool_for_int, "results[2].m: expected int, got bool"),
    (_results_dict, "document.results: expected list, got dict"),
    (_missing_reason, "results[3].backends.keras-jax.reason: missing"),
    (_bad_deviation, "deviation.name: missing"),
    (_string_op_error, "results[0].backends.torch.diagnosis.ops[0].rel_error: expected number or null, got str"),
    (_no_pattern, "results[1].backends.torch.diagnosis.pattern: missing"),
    (_roles_list, "options.roles: expected an object, got list"),
    (_role_word, "options.roles.numpy: 'witness' is not one of framework, control, ground truth"),
    (_strict_word, "options.strict: expected bool, got str"),
    (_stale_uncounted, "summary.stale: 0 but 4 backend results have status 'stale'"),
    (_stale_absent, "summary.stale: missing"),
    (_stderr_number, "results[0].backends.tensorflow.stderr: expected string or null, got int"),
    (_unknown_optimizer, "results[2].training.optimizer: 'rmsprop' is not one of sgd, momentum, adam, adam-hat"),
    (_batch_size_text, "results[2].training.batch_size: expected int or null, got str"),
    (_no_steps, "results[0].training.steps: missing"),
    (_rate_text, "results[0].training.hyperparameters.learning_rate: expected number, got str"),
    (_no_rtol, "results[2].reference.formulations.rtol: missing"),
    (_infinite_gap, "results[3].reference.formulations.params: inf is not valid JSON"),
    (_unknown_form, "results[2].reference.formulations.last_costs: 'adamw' is not one of"),
    (_backend_form, "results[2].backends.keras-torch.optimizer: 'adamw' is not one of"),
    (_fractional_step, "results[0].backends.torch.first_divergent_step: expected int or null, got float"),
    (_first_index_text, "results[0].backends.torch.checks[7].first_index[0]: expected int, got str"),
    (_optimizers_word, "options.optimizers: expected list, got str"),
])
def test_validate_document_names_the_problem(document, breaks, expected):
    breaks(document)
    problems = validate_document(document)
    assert any(expected in p for p in problems), problems


def test_older_documents_without_the_new_fields_validate(tmp_path, small):
    """A ``gradparity/1`` document from before diagnosis, stderr, stale, controls and strict: those
    fields absent, a deviation with the fields it had then."""
    as_version_1(small)
    del small["options"]["controls"], small["options"]["strict"], small["summary"]["stale"]
    for result in small["results"]:
        result["backends"].pop("keras-tensorflow")
        for backend in result["backends"].values():
            del backend["diagnosis"], backend["stderr"]
            for check in backend["checks"]:
                if check["deviation"]:
                    check["deviation"] = {"cause": CAUSE, "measured": "3.1e-07 relative", "backend": "keras-torch",
                                          "case": result["case"], "quantity": check["quantity"]}
    assert validate_document(small) == []
    markdown = write_report(small, tmp_path / "out")["report.md"].read_text()
    assert rows_of(markdown, "Case")[0][:4] == ["Case", "dtype", "numpy", "jax"]
    assert "control" not in markdown.split("## Failures")[0]


def test_a_document_before_optimizers_validates_and_renders(tmp_path, document):
    """Without training, optimizer forms, first divergent step and first index (as ``report
    --merge`` may load it): valid, and rendered as the full-batch gradient descent every run was
    then, at each case's learning rate; no Adam forms, a dash for the first divergent step."""
    before_optimizers(document)
    assert validate_document(document) == []
    markdown = write_report(document, tmp_path / "out")["report.md"].read_text()
    rows = {cells[0]: cells[1] for cells in table_rows(markdown) if len(cells) == 2}
    assert rows["Optimizer"] in ("sgd: learning rate 1.2", "sgd: learning rate 0.01") and rows["Batches"] == "full batch"
    for new in ("adam vs adam-hat", "compared with the reference's", "Compared with the reference's",
                "\nFirst divergent step:"):
        assert new not in markdown, new
    torch = [row for row in rows_of(markdown, "torch") if row[1] == "✗ fail"]
    assert any(row[2:9] == ["0.693", "dW1", "4.1e-02", "1.8e+14", "1", "—", "float64"]
               and row[9].startswith("dW1") for row in torch), torch


def test_the_training_is_said_in_words(written):
    """Each case's section says its optimizer with its hyper-parameters, its batches, epochs and
    steps; its network table has them as rows."""
    _, html, markdown = written
    sections = markdown.split("\n### ")
    seed = next(s for s in sections if s.startswith("seed-2layer\n\nseed-2layer: a synthetic"))
    deep = next(s for s in sections if s.startswith("deep-tanh\n\ndeep-tanh: a synthetic"))
    said = {case: f"Training: {reports.content.training_text(TrainingRecord.from_dict(TRAININGS[case].to_dict(400)), 400)}."
            for case in ("seed-2layer", "deep-tanh")}
    assert said["seed-2layer"] in paragraphs(seed) and said["deep-tanh"] in paragraphs(deep)
    assert f"<p>{said['deep-tanh']}</p>" in html
    for section, optimizer, batches in ((seed, "sgd", "full batch"), (deep, "adam", "150 examples")):
        network = {row[0]: row[1] for row in table_rows(section) if len(row) == 2}
        assert network["Optimizer"].split(":")[0] == optimizer and "learning rate" in network["Optimizer"]
        assert network["Batches"].startswith(batches) and network["Training steps"] == "6"
    assert "Learning rate" not in markdown


@pytest.mark.parametrize("training, said", [
    (Training("momentum", learning_rate=0.05, epochs=3, batch_size=64),
     "momentum (learning rate 0.05, momentum 0.9), batches of 64 (the last of each epoch 16), reshuffled every "
     "epoch (seed 0), 3 epochs: 21 steps"),
    (Training("adam-hat", learning_rate=1e-3, epochs=10, batch_size=100, seed=7, epsilon=1e-7),
     "adam-hat (learning rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-07), batches of 100, reshuffled every "
     "epoch (seed 7), 10 epochs: 40 steps"),
    (Training(learning_rate=0.5, epochs=3, batch_size=400), "sgd (learning rate 0.5), full batch, 3 steps"),
])
def test_training_text(training, said):
    assert reports.content.training_text(TrainingRecord.from_dict(training.to_dict(400)), 400) == said


def test_adam_cases_show_what_the_choice_of_form_costs(written):
    """For the Adam case only: both forms' last costs, how far apart they end (the final
    parameters relative, the worst named) and that as a multiple of the trajectory rtol."""
    _, html, markdown = written
    assert markdown.count("\nadam vs adam-hat: the reference trained in each form of Adam") == 1
    deep = markdown[markdown.index("\n### deep-tanh\n"):]
    assert "adam vs adam-hat" in deep[:deep.index("\n*")]  # shown, not folded
    assert ("| dtype | Last cost, adam | Last cost, adam-hat | Costs apart | Final parameters apart "
            "| Worst parameter | Trajectory rtol | Apart, in rtols |") in deep
    multiples = {"float64": "2.9e+09×", "float32": "0.066×"}  # 2.5e-4 / 8.5e-14 and 3e-6 / 4.6e-5
    rows = {row[0]: row for row in table_rows(deep) if len(row) == 8 and row[0] in multiples}
    for result in make_document()["results"][2:]:
        gap, row = result["reference"]["formulations"], rows[result["dtype"]]
        assert f"{gap['params'] / gap['rtol']:.2g}" == {"float64": "2.9e+09", "float32": "0.066"}[result["dtype"]]
        numbers = [gap["last_costs"]["adam"], gap["last_costs"]["adam-hat"], gap["last_cost"], gap["params"]]
        assert [float(cell) for cell in row[1:5]] == pytest.approx(numbers, rel=0.06), row
        assert row[5] == "W2" and float(row[6]) == pytest.approx(gap["rtol"], rel=0.06)
        assert row[7] == multiples[result["dtype"]]
    assert [float(cell) for cell in rows["float64"][1:5]] == [0.4203257472, 0.4203259153, 4.0e-07, 2.5e-04]
    assert '<td class="r">2.9e+09×</td>' in html


def test_a_backend_in_another_form_says_so(written):
    """Keras's Adam is the efficient form: on the case that asks Algorithm 1 its rows, the
    case's section and its finding say it was compared with the reference's adam-hat; not on
    the sgd case, and not for the backends whose Adam is Algorithm 1."""
    _, html, markdown = written
    note = "compared with the reference's adam-hat: keras-torch's Adam is the efficient form"
    seed, deep = markdown[:markdown.index("\n### deep-tanh\n")], markdown[markdown.index("\n### deep-tanh\n"):]
    rows = [line for line in deep.splitlines() if line.startswith("| keras-torch | ≈ known deviation |")]
    assert len(rows) == 2 and all(row.endswith(f"| {note} |") for row in rows), rows
    assert all("compared with" not in line for line in deep.splitlines() if line.startswith(("| torch |", "| jax |")))
    compared = [block for block in paragraphs(deep) if block.startswith("Compared with the reference's adam-hat")]
    assert len(compared) == 1 and re.findall(r"keras-\w+", compared[0]) == ["keras-torch", "keras-tensorflow"]
    divergence = next(line for line in deep.splitlines() if line.startswith("![deep-tanh: |backend cost"))
    assert "adam-hat" in divergence.split("](")[0]  # its caption names the form those backends ran
    cases = seed[seed.index("\n## Cases\n"):]
    assert "compared with the reference" not in cases.lower() and "labelled" not in cases
    findings = markdown[markdown.index("\n## Known deviations\n"):markdown.index("\n## How to read")]
    assert findings.count(f"\nC{note[1:]} on deep-tanh × float64, float32.\n") == 1
    assert re.findall(r"<td>([^<]*)</td>", html).count(html_escape(note)) == len(rows)  # a cell of each row


def test_the_first_divergent_step_is_shown(written):
    """Next to the first divergent layer in each run's table, and in the failure's finding."""
    _, _, markdown = written
    assert markdown.count("| First divergent layer | First divergent step |") == 4
    assert markdown.count("| torch | ✗ fail | 0.693 | dW1 | 4.1e-02 | 1.8e+14 | 1 | 2 | float64 |") == 2
    failure = markdown[markdown.index("\n### torch — fail"):markdown.index("\n### tensorflow — error")]
    steps = [block for block in paragraphs(failure) if block.startswith("First divergent step:")]
    assert len(steps) == 1 and re.findall(r"\d+", steps[0]) == ["2", "4"], steps  # step 2, on each of the 4 runs
    assert "First divergent step:" not in markdown.replace(failure, "").split("## How to read")[0]


def test_first_divergent_step_over_the_runs(small):
    """One run: its step of its steps; several: the range, over those that have one."""
    from gradparity.reports.digest import backend_order, findings

    def said(steps):
        for result, step in zip(small["results"], steps):
            result["backends"]["torch"]["first_divergent_step"] = step
        document = Document.from_dict(small)
        failure = next(f for f in findings(document, backend_order(document)) if f.backend == "torch")
        return failure.first_steps()

    assert said([3, 5]) == "First divergent step: 3 to 5 over the 2 runs"
    assert said([None, 4]) == "First divergent step: 4 on 1 of the 2 runs"
    assert said([None, None]) == ""
    small["results"].pop()
    assert said([3]) == "First divergent step: 3 of 6"


def test_validate_rejects_non_objects():
    assert validate_document([]) == ["document: expected an object, got list"]
    bench = make_bench()
    bench["results"][0]["mode"] = "jit"
    assert validate_bench(bench) == ["document.results[0].mode: 'jit' is not one of eager, compiled"]


def test_every_file_is_written(written):
    paths, _, _ = written
    stems = ("seed-2layer", "deep-tanh")
    expected = {"report.html", "report.md", "report.json", "plots/backend-time.png", "plots/performance.png",
                "plots/boundary-seed-2layer.png",
                *(f"plots/{kind}-{stem}.png" for kind in ("cost", "divergence", "errors") for stem in stems)}
    assert set(paths) == expected
    for name, path in paths.items():
        assert path.is_absolute() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["report.json"].read_text()) == Document.from_dict(make_document()).to_dict()


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_is_present(written, section):
    _, html, markdown = written
    assert re.search(rf'<h2 id="[a-z-]+">{re.escape(section)}</h2>', html)
    assert f"\n## {section}\n" in markdown


def test_performance_says_slower_or_faster_than_the_reference(written):
    """The bench fixture's ratios (backend / reference) in words, in both renderings:
    twice the reference's time is 2× slower, half of it 2× faster."""
    _, html, markdown = written
    expected = {("numpy", "eager"): "≈ same", ("torch", "eager"): "2× slower", ("torch", "compiled"): "—",
                ("jax", "eager"): "20× slower", ("jax", "compiled"): "2× faster"}
    rows = re.findall(r"^\| seed \| float64 \| ([\w-]+) \| (\w+) \|(?: [^|]* \|){4} ([^|]*) \|", markdown, re.M)
    assert {(backend, mode): said for backend, mode, said in rows} == expected
    assert "| vs reference |" in markdown and "≈ same: within 3%" in markdown and "× reference" not in markdown
    cells = re.findall(r"<tr><td>seed</td><td>float64</td><td>([\w-]+)</td><td>(\w+)</td>(?:<td[^>]*>[^<]*</td>){4}"
                       r"<td[^>]*>([^<]*)</td>", html)
    assert {(backend, mode): said for backend, mode, said in cells} == expected
    assert '<th class="r">vs reference</th>' in html and "× reference" not in html


@pytest.mark.parametrize("ratio, said", [
    (2.0, "2× slower"), (0.5, "2× faster"), (8.64, "8.6× slower"), (1 / 2.1, "2.1× faster"),
    (1.0, "≈ same"), (1.03, "≈ same"), (1 / 1.03, "≈ same"), (1.031, "1.03× slower"), (0.96, "1.04× faster"),
    (240.4, "240× slower"), (15000.0, "15,000× slower"), (None, "—"),
])
def test_speed_text_says_the_direction_in_words(ratio, said):
    assert speed_text(ratio) == said


def test_html_is_self_contained(written):
    _, html, _ = written
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 9 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', html))
    assert "@media print" in html


def test_markdown_links_the_plot_files(written):
    paths, _, markdown = written
    links = re.findall(r"\]\((plots/[^)]+\.png)\)", markdown)
    assert sorted(links) == sorted(name for name in paths if name.startswith("plots/"))


def test_findings_are_grouped_by_backend_and_cause(written):
    """One block per (backend, cause) whatever the number of runs it hit: its sentence once,
    the diagnosis's ops and reproducer, an error's traceback and stderr folded, one table of
    quantities per group."""
    _, html, markdown = written
    both = "all 2 cases × float64, float32"
    for heading in (f"torch — fail on {both}", f"tensorflow — error on {both}",
                    f"keras-torch — known deviation on {both}", f"keras-tensorflow — stale on {both}"):
        assert markdown.count(f"\n### {heading}\n") == 1, heading
        assert html.count(f">{heading}</h3>") == 1, heading
    findings = markdown[markdown.index("\n## Failures and errors\n"):markdown.index("\n## How to read")]
    for sentence in (PATTERN, STALE, CAUSE):
        assert findings.count(reports.render._md(sentence)) == 1, sentence
    assert findings.count(f"```text\n{REPRODUCER.rstrip()}\n```") == 1
    assert findings.count("**RuntimeError: tensorflow worker exited with signal 11 (SIGSEGV)**") == 1
    matmul = rows_of(markdown, "matmul")
    assert any(row[1] == "got = tx @ ty" and row[2].startswith("float64 → float32, 2.9e-08") for row in matmul), matmul
    assert markdown.count("| Run | Quantity | Rel error |") == 2  # torch's failures, keras-torch's deviations
    assert ["seed-2layer/float64", "dW1", "4.1e-02"] in [row[:3] for row in rows_of(markdown, "seed-2layer/float64")]
    folded = re.findall(r"<details><summary>([^<]*)</summary>\n<pre>([^<]*)</pre>", html)
    assert ("Captured stderr of the worker", reports.render._esc(STDERR)) in folded
    assert ("Full message", reports.render._esc(ERROR_REASON)) in folded
    assert "in &lt;module&gt;" in html and "<module>" not in html  # escaped
    assert SKIP_REASON.replace("'", "&#x27;") in html


def test_summary_matrix_and_status_colours(written):
    _, html, markdown = written
    verdict = ("2 of 6 backends disagree with the reference: torch failed 4 of 4 runs; tensorflow errored "
               "on 4 of 4 runs; 4 known deviations; 4 stale deviation entries; 4 skipped")
    assert f'<p class="verdict st-fail">{verdict}</p>' in html
    assert f"**{verdict}**" in markdown
    matrix = html[html.index('<table class="matrix">'):html.index("</table>", html.index('class="matrix"'))]
    for status in ("pass", "known_deviation", "stale", "fail", "error", "skipped"):
        assert f'<td class="st-{status}">' in matrix
    assert "<th>numpy (control)</th>" in matrix
    linked = re.findall(r'<td class="st-([\w_]+)"><a href="#([^"]+)">(\S+) (\S+)×</a><small>(\w+)</small></td>',
                        matrix)  # status, the finding linked to, symbol, share of the tolerance, quantity
    torch = [(status, symbol, float(share), quantity) for status, target, symbol, share, quantity in linked
             if target == "fail-torch"]
    assert {cell[:2] for cell in torch} == {("fail", "✗")} and max(cell[2:] for cell in torch) == (3e12, "dW1")
    assert '<td><a href="#case-deep-tanh">deep-tanh</a></td>' in matrix
    header = rows_of(markdown, "Case")[0]
    assert header == ["Case", "dtype", "numpy (control)", "jax", "torch", "keras-torch", "keras-tensorflow",
                      "tensorflow", "keras-jax"]
    seed = rows_of(markdown, "seed-2layer")[0]
    assert seed == ["seed-2layer", "float64", "✓ 0.047× dW2", "✓ 0.047× dW2", "**✗ 3e12× dW1**", "**≈ 2e7× dW2**",
                    "**○ 0.047× dW2**", "**!**", "**–**"]
    following = table_rows(markdown)[table_rows(markdown).index(seed) + 1]
    assert following[:3] == ["", "float32", "✓ 0.047× dW2"]


def test_every_link_has_its_target(written):
    _, html, _ = written
    targets = set(re.findall(r' id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert len(links) > 20 and set(links) <= targets


def test_case_detail_is_folded(written):
    """Only the description, the training and (for Adam) its two forms' gap show; the rest is folded."""
    _, html, _ = written
    for case in CASES:
        start = html.index(f'<h3 id="case-{case}">')
        shown = html[start:html.index("<details>", start)].split("\n")[1:-1]
        assert shown[0].startswith("<p>") and shown[1].startswith("<p>Training: "), case
        assert not re.search("<h4|<figure|Backend</th>", "".join(shown)), case  # no run, plot or quantity
    assert html.count("<details>") == len(CASES) + 4  # the cases, two folded tables, a traceback, stderr


def test_all_agree_verdict(tmp_path, small):
    for result in small["results"]:
        result["backends"] = {n: b for n, b in result["backends"].items() if n in ("numpy", "jax")}
    small["summary"] = {"passed": 4, "failed": 0, "known_deviations": 0, "skipped": 0, "errors": 0, "stale": 0}
    html = write_report(small, tmp_path / "out")["report.html"].read_text()
    verdict = re.findall(r'<p class="verdict st-(\w+)">([^<]*)</p>', html)
    assert len(verdict) == 1 and verdict[0][0] == "pass" and re.findall(r"\d+", verdict[0][1]) == ["2", "2"], verdict


def test_a_strict_run_says_so(tmp_path, small):
    small["options"]["strict"] = True
    markdown = write_report(small, tmp_path / "out")["report.md"].read_text()
    run_line = next(line for line in markdown.splitlines() if line.startswith("Run "))
    assert [part.split(":")[0] for part in run_line.split(" · ")][-2:] == ["schema gradparity/2", "strict"]
    small["options"]["strict"] = False
    run_line = next(line for line in reports.render.render(read_document(small)).markdown.splitlines() if line.startswith("Run "))
    assert run_line.split(" · ")[-1] == "schema gradparity/2"


def test_plots_without_data_are_left_out(tmp_path, document):
    for result in document["results"]:
        result["backends"] = {"tensorflow": result["backends"]["tensorflow"]}
    document["summary"] = {"passed": 0, "failed": 0, "known_deviations": 0, "skipped": 0, "errors": 4, "stale": 0}
    paths = write_report(document, tmp_path / "out")
    assert {name for name in paths if name.startswith("plots/")} == {"plots/backend-time.png",
                                                                      "plots/boundary-seed-2layer.png"}
    markdown = paths["report.md"].read_text()
    heading = next(line for line in markdown.splitlines() if line.startswith("### tensorflow — error"))
    assert "all 2 cases" in heading and heading.endswith("float64, float32"), heading
    assert markdown.count(ERROR_REASON) == 1


def test_same_document_gives_identical_files(tmp_path, small, monkeypatch):
    """Byte for byte, the plots drawn here or in two spawned processes (``render.draw_all``)."""
    first = write_report(small, tmp_path / "a", make_bench())
    pools = []

    class CountedPool(render.ProcessPoolExecutor):
        def __init__(self, processes, **options):
            pools.append(processes)
            super().__init__(processes, **options)

    monkeypatch.setattr(render, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setattr(render, "FIGURES_PER_PROCESS", 1)
    second = write_report(copy.deepcopy(small), tmp_path / "b", make_bench(), processes=2)
    assert pools == [2]
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name


def test_saved_json_renders_the_same_report(tmp_path, small):
    first = write_report(small, tmp_path / "a")
    saved = json.loads(first["report.json"].read_text())
    second = write_report(saved, tmp_path / "b")
    assert first["report.md"].read_bytes() == second["report.md"].read_bytes()


def test_failed_render_keeps_the_previous_report(tmp_path, small, monkeypatch):
    out = tmp_path / "out"
    before = {n: p.read_bytes() for n, p in write_report(small, out).items()}
    small["run"]["date"] = "2030-01-01T00:00:00+00:00"

    def broken(**_):
        raise RuntimeError("plot exploded")

    monkeypatch.setattr("gradparity.reports.plots.cost_curves", broken)
    with pytest.raises(RuntimeError, match="plot exploded"):
        write_report(small, out)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left behind

    monkeypatch.undo()
    after = write_report(small, out)
    assert "2030-01-01" in after["report.md"].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replaced_report_drops_stale_plots(tmp_path, document):
    out = tmp_path / "out"
    write_report(document, out)
    document["results"] = [r for r in document["results"] if r["case"] == "deep-tanh"]
    document["summary"] = {k: v // 2 for k, v in document["summary"].items()}
    write_report(document, out)
    assert not (out / "plots" / "boundary-seed-2layer.png").exists()


def test_invalid_document_writes_nothing(tmp_path, small):
    small["results"][0]["backends"]["numpy"]["status"] = "passed"
    with pytest.raises(DocumentError, match="is not one of"):
        write_report(small, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_directory_that_is_not_a_report(tmp_path, small):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="notes.txt"):
        write_report(small, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_import_does_not_load_matplotlib():
    code = "import sys, reports; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_public_api():
    assert reports.__all__ == ["DocumentError", "OutputError", "read_document", "validate_bench", "validate_check",
                               "validate_document", "write_report"]


def test_interrupted_first_render_leaves_nothing(tmp_path, small, monkeypatch):
    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr("gradparity.reports.plots.gradient_errors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(small, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_terminal_findings_say_the_first_divergent_step_and_the_form(capsys):
    """A finding line gives the first divergent step; a backend compared in another Adam form
    says so, on the runs it was."""
    print_summary(read_document(make_document()))
    lines = capsys.readouterr().out.splitlines()
    assert max(cell_len(line) for line in lines) <= WIDTH
    steps = [line for line in lines if line.startswith("  First divergent step:")]
    assert len(steps) == 1 and re.findall(r"\d+", steps[0]) == ["2", "4"], steps  # step 2, on each of the 4 runs
    text = " ".join(" ".join(lines).split())
    assert ("Compared with the reference's adam-hat: keras-torch's Adam is the efficient form on deep-tanh × "
            "float64, float32") in text
    assert "torch's Adam is Algorithm 1" not in text


def test_accepts_the_engine_variants(tmp_path, small):
    """Per-case steps, no decision boundary, a dtype check without metrics."""
    small["options"]["steps"] = [3, 10]
    for result in small["results"]:
        result["reference"]["decision_boundary"] = None
    dtype_check = make_check("dtype", "dtype", "float32", 0.0, "fail", "jax computed in float32 although float64 was asked")
    dtype_check.update(dict.fromkeys(("max_abs_error", "max_rel_error", "rel_error", "ulps", "cosine")))
    small["results"][0]["backends"]["torch"]["checks"].insert(0, dtype_check)
    assert validate_document(small) == []
    paths = write_report(small, tmp_path / "out")
    assert "plots/boundary-seed-2layer.png" not in paths
    assert dtype_check["message"] in paths["report.md"].read_text()  # the check's own message, shown as given


@pytest.fixture(scope="module")
def terminal_summary() -> tuple[dict, list[str]]:
    """The catalogue's thirteen cases × two dtypes on the registry's eight backends, every status on
    every case, printed as ``gradparity run`` prints it; finite differences worst at a relative
    error of 1.8e-5 (8.1e10 float64 ulps), 0.38 of the tolerance of db1: (document, lines)."""
    document = make_document(tuple(CATALOGUE), CATALOGUE_STATUSES)
    for result in document["results"]:
        finite_diff = result["backends"]["finite-diff"]
        finite_diff["worst"] = {"quantity": "db1", "rel_error": 1.8e-5, "ulps": 8.1e10}
        next(check for check in finite_diff["checks"] if check["quantity"] == "db1").update(rel_error=1.8e-5,
                                                                                             excess=0.38)
    assert validate_document(document) == []
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(read_document(document))
    return document, out.getvalue().splitlines()


def test_terminal_summary_fits_100_columns(terminal_summary):
    document, lines = terminal_summary
    assert len(document["results"]) == 2 * len(CATALOGUE) == 26 and len(document["options"]["backends"]) == 8
    assert max(cell_len(line) for line in lines) <= WIDTH == 100
    header = "\n".join(lines[1:5])
    assert all(part in header for name in REGISTRY for part in name.split("-")), header
    assert "control" in header and any(line.startswith("control (numpy): ") for line in lines)


def test_terminal_cell_is_a_symbol_the_share_of_tolerance_and_the_closest_quantity(terminal_summary):
    """Each cell: status, the largest share of its tolerance a quantity used and, on the line
    below, which quantity; an erroring backend has the symbol only."""
    _, lines = terminal_summary
    at = next(i for i, line in enumerate(lines) if line.startswith("seed-2layer"))
    assert lines[at].split() == ["seed-2layer", "float64", "✓", "0.047×", "✓", "0.38×", "✓", "0.047×", "✓", "0.047×",
                                 "!", "○", "0.047×", "≈", "2e7×", "✗", "3e12×"]
    assert lines[at + 1].split() == ["dW2", "db1", "dW2", "dW2", "dW2", "dW2", "dW1"]
    assert not any("8e10" in line or "8.1e+10" in line for line in lines), "finite differences in ulps"
    assert sum(line.startswith("each cell: ") for line in lines) == 1
    legend = next(line for line in lines if line.startswith("✓ pass"))
    assert [item.split(" ", 1) for item in legend.split("  ")] == [
        ["✓", "pass"], ["≈", "known deviation"], ["○", "stale"], ["✗", "fail"], ["!", "error"], ["–", "skipped"]]


def test_terminal_findings_are_one_block_per_backend_and_cause(terminal_summary):
    """Four findings, each naming the runs it hit in one phrase; no line said twice."""
    _, lines = terminal_summary
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{8 * len(CATALOGUE)} pass · "))
    findings = [line for line in lines[start + 1:] if line.strip()]
    hit = f"on all {len(CATALOGUE)} cases × float64, float32"
    heads = [i for i, line in enumerate(findings) if not line.startswith(" ")]
    assert [findings[i] for i in heads] == [
        f"✗ fail: keras-torch {hit}", f"! error: tensorflow {hit}",
        f"≈ known deviation: keras-jax {hit}", f"○ stale: keras-tensorflow {hit}"]
    assert len(findings) == len(set(findings)), [l for l in findings if findings.count(l) > 1]
    for start, end in zip(heads, heads[1:] + [len(findings)]):
        block = "\n".join(findings[start:end])
        assert all(block.count(f"{case}/") <= 1 for case in CATALOGUE), block  # the worst run, if any
    text = "\n".join(findings)
    assert f"  {PATTERN}" in findings
    assert ("matmul: float64 → float32, 2.9e-08 relative (tolerance 3.6e-15); float32 → float32, 2.9e-08 "
            "relative (tolerance 1.9e-06): got = tx @ ty") in " ".join(text.split())  # one line per op
    assert "\n".join(f"    {line}".rstrip() for line in REPRODUCER.rstrip().splitlines() if line) in text
    depth = indents(findings)
    assert depth[ERROR_REASON.splitlines()[-1]] == 2  # the error's last line, under its finding
    assert depth[STDERR.splitlines()[-1]] == 4  # the tail of the worker's stderr, under the error
    assert f"  {STALE[:60]}" in text


def test_the_divergence_plot_measures_a_backend_against_the_reference_in_its_own_form():
    from gradparity.reports.plots import _reference_costs

    result = read_document(make_document()).results[2]  # deep-tanh, an Adam case
    result.reference.costs = [1.0, 0.9]
    assert result.reference.formulations is not None
    result.reference.formulations.costs = {"adam": [1.0, 0.8], "adam-hat": [1.0, 0.9]}
    assert list(_reference_costs(result, "adam")) == [1.0, 0.8]
    assert list(_reference_costs(result, "adam-hat")) == [1.0, 0.9]
    result.reference.formulations.costs = {}  # a gradparity/1 document: its own form's costs alone
    assert list(_reference_costs(result, "adam")) == [1.0, 0.9]


def test_margin_of_exact_failed_and_older_results():
    """Bit for bit is ``0`` with no quantity; a failed check with nothing measured (NaN, a wrong
    shape) is infinitely far past its tolerance whatever the others say; a check from a
    document older than ``excess`` counts rel_error / rtol."""
    def backend(status: str, *checks: dict) -> BackendResult:
        return replace(BackendResult.unanswered(status, ""), checks=[Check.from_dict(check) for check in checks])

    exact = make_check("dW1", "gradients", "float64", 0.0) | {"excess": 0.0}
    assert margin(backend("pass", exact)) == ("0", "")
    nan = make_check("trajectory b1", "trajectory", "float64", 0.0, "fail") | {"excess": None, "rel_error": None}
    assert margin(backend("fail", exact, nan)) == ("inf×", "traj b1")
    older = as_version_1(make_document(("seed-2layer",)))  # its checks recorded no excess then
    for check in older["results"][0]["backends"]["numpy"]["checks"]:
        del check["excess"]
    a1 = next(c for c in read_document(older).results[0].backends["numpy"].checks if c.quantity == "A1")
    assert a1.excess == EPS["float64"] / (64 * EPS["float64"])  # make_check's rel_error / rtol
    assert margin(backend("error")) == ("", "")


SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "sample-report.md"
UPDATE_SNAPSHOTS = "GRADPARITY_UPDATE_SNAPSHOTS"


def test_the_sample_reports_markdown_matches_its_snapshot(tmp_path, monkeypatch):
    """The one place the report's exact wording is pinned (the other tests assert its structure
    and numbers): the Markdown of a small result document — one case, two dtypes, the numpy
    control passing and torch failing, made by ``make_document`` and saved as JSON — equals
    ``snapshots/sample-report.md``. After an intended change of wording or layout, regenerate it
    with ``GRADPARITY_UPDATE_SNAPSHOTS=1 python -m pytest parity_tests/test_reports.py -k snapshot``
    and review the diff before committing it."""
    saved = tmp_path / "sample.json"
    saved.write_text(json.dumps(make_document(("seed-2layer",), {"numpy": "pass", "torch": "fail"})))
    document = json.loads(saved.read_text())
    assert validate_document(document) == []
    markdown = reports.render.render(read_document(document)).markdown
    if os.environ.get(UPDATE_SNAPSHOTS) == "1":
        SNAPSHOT.write_text(markdown, "utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_SNAPSHOTS}=1 to write {SNAPSHOT}"
    expected = SNAPSHOT.read_text("utf-8")
    assert markdown == expected, (
        f"the sample report's Markdown differs from {SNAPSHOT.name}; if the change is intended, regenerate it with "
        f"{UPDATE_SNAPSHOTS}=1 python -m pytest parity_tests/test_reports.py -k snapshot and review the diff")


# second order (``gradparity run --order 2``): each backend's modes, as the engine names them
MODES = {"numpy": ("r-operator",), "finite-diff": ("central-differences",),
         "jax": ("jvp", "fwd-over-rev", "rev-over-rev"),
         "torch": ("func.jvp", "forward-ad", "fwd-over-rev", "double-backward"),
         "tensorflow": ("forward-accumulator", "fwd-over-rev", "rev-over-rev"),
         "keras-jax": ("jvp", "fwd-over-rev", "rev-over-rev"),
         "keras-torch": ("func.jvp", "forward-ad", "fwd-over-rev", "double-backward"),
         "keras-tensorflow": ("forward-accumulator", "fwd-over-rev", "rev-over-rev")}
TANGENT_MODES = {"jvp", "func.jvp", "forward-ad", "forward-accumulator"}  # the others compute H V (both: the two references)
MODE_SKIP = "torch.func cannot differentiate this backend's custom autograd function on purpose"
COST_TANGENT = -1.3185440651726221e-3  # the reference's J̇ on every synthetic run
FAILING_SHARE = 40.0  # how much of its tolerance a failing mode's worst H V block uses


def computes(mode: str) -> list[str]:
    """What a mode computes, as its ``ModeResult.computes`` says."""
    if mode in TANGENT_MODES:
        return ["tangents"]
    if mode in ("r-operator", "central-differences"):
        return ["tangents", "hvp"]
    return ["hvp"]


def make_mode_checks(mode: str, dtype: str, layers: list[int], status: str) -> list[dict]:
    """One mode's checks (J̇ and each Ȧ[l] for tangents, each H V block for hvp), each using 0.1
    of its tolerance; a failing mode's HV W1 uses ``FAILING_SHARE`` of it."""
    eps, depth = EPS[dtype], len(layers) - 1
    checks = []
    if "tangents" in computes(mode):
        checks += [make_check("Jdot", "tangents", dtype, 6.4 * eps)]
        checks += [make_check(f"Adot{l}", "tangents", dtype, 6.4 * eps) for l in range(1, depth + 1)]
    if "hvp" in computes(mode):
        for l in range(1, depth + 1):
            for block in (f"HV W{l}", f"HV b{l}"):
                failing = status == "fail" and block == "HV W1"
                checks.append(make_check(block, "hvp", dtype, FAILING_SHARE * 64 * eps if failing else 6.4 * eps,
                                         "fail" if failing else "pass", FAILURE_MESSAGE if failing else None))
    for check in checks:
        check["mode"] = mode
    return checks


def with_second_order(document: dict, statuses: dict[tuple[str, str, str], str] | None = None) -> dict:
    """``document`` as ``gradparity run --order 2`` writes it: the reference's direction and J̇
    on every run, and on every backend that answered, each of its ``MODES`` passing unless
    ``statuses`` gives (backend, mode, dtype) another status (``fail``: its HV W1; ``skipped``:
    ``MODE_SKIP``); a backend that passed and has a failing mode fails; its worst check is taken
    over both orders."""
    statuses = statuses or {}
    document["options"]["order"] = 2
    for result in document["results"]:
        dtype, layers = result["dtype"], result["layers"]
        result["reference"]["second_order"] = {
            "direction": {"source": "seeded", "seed": 0, "fingerprint": f"{result['case']}-{dtype}"[:16],
                          "max_abs": 2.3250307746388343, "arrays": None},
            "cost_tangent": COST_TANGENT, "hvp_norms": {f"{p}{l}": 0.5 for l in range(1, len(layers)) for p in "Wb"},
            "hvp": None}
        for name, backend in result["backends"].items():
            if backend["status"] in ("error", "skipped"):
                continue
            backend["modes"] = {}
            for mode in MODES.get(name, ()):  # an injected backend has none
                status = statuses.get((name, mode, dtype), "pass")
                if status == "skipped":
                    backend["modes"][mode] = {"computes": computes(mode), "status": "skipped", "reason": MODE_SKIP,
                                              "worst": None}
                    continue
                checks = make_mode_checks(mode, dtype, layers, status)
                worst = max(checks, key=lambda c: c["rel_error"])
                backend["checks"] += checks
                backend["modes"][mode] = {"computes": computes(mode), "status": status,
                                          "reason": FAILURE_MESSAGE if status == "fail" else "",
                                          "worst": {key: worst[key] for key in ("quantity", "rel_error", "ulps")}}
                if status == "fail" and backend["status"] in ("pass", "known_deviation", "stale"):
                    backend["status"], backend["reason"] = "fail", FAILURE_MESSAGE
            worst = max(backend["checks"], key=lambda c: c["rel_error"])  # over both orders, as the engine's
            backend["worst"] = {key: worst[key] for key in ("quantity", "rel_error", "ulps")}
    tally = [backend["status"] for result in document["results"] for backend in result["backends"].values()]
    document["summary"] = {key: tally.count(status) for status, key in
                           {"pass": "passed", "fail": "failed", "known_deviation": "known_deviations", "stale": "stale",
                            "skipped": "skipped", "error": "errors"}.items()}
    return document


def second_order_document() -> dict:
    """seed-2layer in both dtypes on numpy, finite-diff, jax and torch, every first-order check
    passing; jax's fwd-over-rev fails (HV W1 at ``FAILING_SHARE`` of its tolerance) in float64,
    torch's double-backward is skipped in both dtypes."""
    statuses = {("jax", "fwd-over-rev", "float64"): "fail"}
    statuses |= {("torch", "double-backward", dtype): "skipped" for dtype in EPS}
    return with_second_order(make_document(("seed-2layer",), dict.fromkeys(("numpy", "finite-diff", "jax", "torch"),
                                                                           "pass")), statuses)


SECOND_COLUMNS = [("numpy", "r-operator"), ("finite-diff", "central-differences"), *(("jax", mode) for mode in MODES["jax"]),
                  *(("torch", mode) for mode in MODES["torch"])]


@pytest.fixture(scope="module")
def second_order_summary() -> list[str]:
    """``second_order_document`` as ``gradparity run`` prints it, line by line."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(read_document(second_order_document()))
    return out.getvalue().splitlines()


def test_the_second_order_matrix_has_a_column_per_backend_and_mode(second_order_summary):
    """Under the first matrix, its title, then one table: case and dtype, then each backend's
    name over its first mode and every mode broken at its hyphens, in the run's order."""
    from gradparity.reports.digest import backend_order, mode_columns
    from gradparity.reports.terminal import SECOND_TITLE, mode_matrices

    document = read_document(second_order_document())
    assert mode_columns(document, backend_order(document)) == SECOND_COLUMNS
    tables = mode_matrices(document, SECOND_COLUMNS)
    assert len(tables) == 1
    heads = [[line for line in column.header.split("\n") if line] for column in tables[0].columns]
    assert heads[:2] == [["case"], ["dtype"]]
    assert heads[2:] == [["numpy", "r-", "operator"], ["finite-", "diff", "central-", "differences"],
                         ["jax", "jvp"], ["fwd-", "over-", "rev"], ["rev-", "over-", "rev"],
                         ["torch", "func.jvp"], ["forward-", "ad"], ["fwd-", "over-", "rev"], ["double-", "backward"]]
    lines = second_order_summary
    assert max(cell_len(line) for line in lines) <= WIDTH
    assert tally("\n".join(lines)) == {"pass": 7, "known deviation": 0, "stale": 0, "fail": 1, "error": 0, "skipped": 0}
    counted = next(i for i, line in enumerate(lines) if line.startswith("7 pass · "))
    assert lines.index(SECOND_TITLE) > counted


def test_a_failing_mode_has_its_own_cell_and_its_first_order_cell_points_at_it(second_order_summary):
    """jax on float64: its first-order checks pass (0.047 of their tolerance) but fwd-over-rev
    fails, so its first-matrix cell is ✗ at that mode's 40× and reads ``2nd order``; in the second
    matrix only the fwd-over-rev cell fails; torch's skipped double-backward is – with its reason
    below the matrix; the first matrix reads the first-order checks alone (dW2, not Jdot)."""
    from gradparity.reports.terminal import SECOND_TITLE

    lines = second_order_summary
    first = lines.index(next(line for line in lines if line.startswith("seed-2layer")))
    assert lines[first].split() == ["seed-2layer", "float64", "✓", "0.047×", "✓", "0.047×", "✗", "40×", "✓", "0.047×"]
    assert lines[first + 1].split() == ["dW2", "dW2", "2nd", "order", "dW2"]
    assert lines[first + 2].split() == ["float32", *["✓", "0.047×"] * 4]
    second = lines.index(next(line for line in lines[lines.index(SECOND_TITLE):] if line.startswith("seed-2layer")))
    assert lines[second].split() == ["seed-2layer", "float64", *["✓", "0.1×"] * 3, "✗", "40×", *["✓", "0.1×"] * 4, "–"]
    assert lines[second + 1].split() == ["Jdot", "Jdot", "Jdot", "HV", "W1", "HV", "W1", "Jdot", "Jdot", "HV", "W1"]
    assert lines[second + 2].split() == ["float32", *["✓", "0.1×"] * 8, "–"]
    skipped = next(i for i, line in enumerate(lines) if line.startswith("– torch double-backward skipped on "))
    said = [lines[skipped], *takewhile(lambda line: line.startswith("  "), lines[skipped + 1:])]
    assert " ".join(" ".join(said).split()) == f"– torch double-backward skipped on seed-2layer × float64, float32: {MODE_SKIP}"
    assert sum("skipped on" in line for line in lines) == 1


def test_every_mode_of_every_backend_fits_100_columns_in_whole_backends():
    """Two cases (one with the catalogue's longest name) on the registry's eight backends with all their 22 modes: the
    second matrix is cut into tables within ``WIDTH``, each column in exactly one table, no
    backend's modes split (each backend's fit in one table), its name over its first mode only."""
    from gradparity.reports.digest import backend_order, mode_columns
    from gradparity.reports.terminal import mode_matrices

    longest = max(CATALOGUE, key=len)
    data = with_second_order(make_document(("seed-2layer", longest), dict.fromkeys(REGISTRY, "pass")),
                             {("torch", "fwd-over-rev", "float32"): "fail"})
    assert validate_document(data) == []
    document = read_document(data)
    columns = mode_columns(document, backend_order(document))
    assert len(columns) == sum(map(len, MODES.values())) == 22
    tables = mode_matrices(document, columns)
    assert 1 < len(tables) <= 4
    sizes = [len(table.columns) - 2 for table in tables]
    assert sum(sizes) == 22
    for table, start in zip(tables, [sum(sizes[:i]) for i in range(len(sizes))]):
        taken = columns[start:start + len(table.columns) - 2]
        assert start == 0 or columns[start - 1][0] != taken[0][0], "a backend's modes split across two tables"
        for column, (name, mode) in zip(table.columns[2:], taken):
            lines = [line for line in column.header.split("\n") if line]
            named = name != columns[columns.index((name, mode)) - 1][0] or (name, mode) == columns[0]
            assert lines == [*name.replace("-", "-\n").split("\n")] * named + mode.replace("-", "-\n").split("\n")
    console = Console(width=WIDTH, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert max(cell_len(line) for line in text.splitlines()) <= WIDTH
    assert len(text.splitlines()) == len(tables) * (5 + 1 + 2 * 4)  # heading, rule, two lines a run


@pytest.fixture(scope="module")
def second_order_report() -> tuple[str, str]:
    """``second_order_document`` rendered: (html, markdown)."""
    rendered = reports.render.render(read_document(second_order_document()))
    return rendered.html, rendered.markdown


def test_the_report_has_a_second_order_section(second_order_report):
    """After the summary: what the modes are and what they are compared with (Pearlmutter's
    R-operator, the tolerance's depths), the matrix with a column per backend and mode, the
    skipped mode and why, and per run the direction and the reference's J̇."""
    html, markdown = second_order_report
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Summary", "## Second order", "## Failures and errors"]
    section = markdown[markdown.index("## Second order"):markdown.index("## Failures and errors")]
    said = " ".join(paragraphs(section))
    for part in ("R-operator", "Pearlmutter 1994", "4 eps · depth · √n", "2l", "4L", "J̇", "H V"):
        assert part in said, part
    header = rows_of(section, "Case")[0]
    assert header == ["Case", "dtype", *(f"{name} {mode}" for name, mode in SECOND_COLUMNS)]
    float64 = rows_of(section, "seed-2layer")[0]
    assert float64[2:] == [*["✓ 0.1× Jdot"] * 3, "**✗ 40× HV W1**", "✓ 0.1× HV W1", "✓ 0.1× Jdot", "✓ 0.1× Jdot",
                           "✓ 0.1× HV W1", "**–**"]
    float32 = next(row for row in table_rows(section) if row[1] == "float32" and len(row) == len(header))
    assert float32[2:] == [*(f"✓ 0.1× {'Jdot' if 'tangents' in computes(mode) else 'HV W1'}"
                             for _, mode in SECOND_COLUMNS[:-1]), "**–**"]
    skipped = [item for item in section.splitlines() if item.startswith("- torch double-backward skipped on ")]
    assert len(skipped) == 1 and skipped[0].endswith(MODE_SKIP)
    directions = [row for row in table_rows(section) if len(row) == 7 and row[0] == "seed-2layer"]
    assert [row[1] for row in directions] == ["float64", "float32"]
    for row in directions:
        assert row[2] == "seeded (seed 0)" and row[3] == f"seed-2layer-{row[1]}"[:16]
        assert float(row[4]) == pytest.approx(2.3250307746388343) and float(row[5]) == pytest.approx(COST_TANGENT)
        assert float(row[6]) == pytest.approx(math.sqrt(4 * 0.5 ** 2), rel=0.01)  # four blocks of norm 0.5
    assert '<h2 id="second-order">Second order</h2>' in html
    assert "<th>jax<br><small>fwd-over-rev</small></th>" in html
    failing = re.findall(r'<td class="st-fail"><a href="#([\w-]+)">✗ 40×</a><small>([^<]*)</small></td>', html)
    assert failing == [("fail-jax", "2nd order"), ("fail-jax", "HV W1")]  # the summary's cell, then the mode's
    assert f'id="{failing[0][0]}">jax — fail on seed-2layer × float64</h3>' in html


def test_a_failing_mode_is_named_in_its_finding(second_order_report):
    """The finding of jax's failing fwd-over-rev names the mode, its worst quantity with the
    mode and every quantity behind it with its mode; the summary's cell points at the second order."""
    _, markdown = second_order_report
    finding = markdown[markdown.index("### jax — fail"):markdown.index("## Known deviations")]
    assert "Second-order mode fwd-over-rev fails: HV W1." in paragraphs(finding)
    worst = next(block for block in paragraphs(finding) if block.startswith("Worst "))
    assert worst.startswith("Worst HV W1 (fwd-over-rev): 5.7e-13 relative")  # 40 x 64 eps(float64)
    behind = [row for row in table_rows(finding) if row[0] == "seed-2layer/float64"]
    assert [row[1] for row in behind] == ["HV W1 (fwd-over-rev)"]
    assert rows_of(markdown, "seed-2layer")[0][4] == "**✗ 40× 2nd order**"
    summary = markdown[markdown.index("## Summary"):markdown.index("## Second order")]
    assert "2nd order:" in " ".join(paragraphs(summary))
    case = markdown[markdown.index("#### seed-2layer/float64"):]
    jax = next(row for row in rows_of(case, "jax") if row[1] == "✗ fail")
    assert jax[3] == "HV W1 (fwd-over-rev)"  # its worst check, with the mode
    quantities = [row[1] for row in table_rows(case[:case.index("#### seed-2layer/float32")]) if len(row) == 8]
    assert "HV W1 (fwd-over-rev)" in quantities and "Jdot (r-operator)" in quantities and "dW1" in quantities


def test_explain_names_each_mode_and_what_fails_in_it():
    """``gradparity explain``: one line per second-order mode, its status, and for the failing one
    the quantity, its relative error and the share of its tolerance used."""
    from gradparity.reports.terminal import explanation

    document = read_document(second_order_document())
    lines = explanation("jax", document.results[0]).splitlines()
    modes = [line for line in lines if line.startswith("  second-order mode ")]
    assert [line.split(":")[0].split()[2] for line in modes] == list(MODES["jax"])
    assert [line.split(": ")[1] for line in modes] == ["pass", "fail", "pass"]
    assert re.findall(r"HV W1 ([\d.e+-]+) relative, ([\d.]+)× its tolerance", modes[1]) == [("5.7e-13", "40")]
    torch = explanation("torch", document.results[0]).splitlines()
    skipped = next(line for line in torch if "double-backward" in line)
    assert skipped.split(": ")[1] == "skipped" and MODE_SKIP.startswith(skipped.split(": ")[2])


def test_a_first_order_document_has_no_second_order():
    """No section, no second matrix, no pointer, no mode line in any of the outputs."""
    from gradparity.reports.terminal import SECOND_TITLE, explanation

    document = read_document(make_document(("seed-2layer",), {"numpy": "pass", "torch": "fail"}))
    rendered = reports.render.render(document)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(document)
    explained = "".join(explanation(name, result) for result in document.results for name in result.backends)
    for text in (rendered.markdown, rendered.html, out.getvalue(), explained):
        for part in ("Second order", "second-order", SECOND_TITLE, "2nd order", "HV W", "Jdot"):
            assert part not in text, part


def test_a_mode_that_fails_on_top_of_a_known_deviation_points_at_the_second_order():
    """A first-order known deviation with a failing mode is a fail that only the mode brings: its
    cell reads the mode's share and ``2nd order``; with a first-order failure too, the first
    order's own figure and quantity."""
    from gradparity.reports.digest import SECOND_ORDER

    def backend(*checks: dict) -> BackendResult:
        return replace(BackendResult.unanswered("fail", ""), checks=[Check.from_dict(check) for check in checks])

    deviating = make_check("dW2", "gradients", "float64", 3.1e-7, "known_deviation")
    hvp = make_check("HV W1", "hvp", "float64", 40 * 64 * EPS["float64"], "fail") | {"mode": "fwd-over-rev"}
    assert margin(backend(deviating, hvp)) == ("40×", SECOND_ORDER)
    failing = make_check("dW1", "gradients", "float64", 4.1e-2, "fail")
    assert margin(backend(deviating, failing, hvp)) == ("3e12×", "dW1")
    assert margin(replace(backend(deviating, hvp), status="known_deviation")) == ("2e7×", "dW2")
