"""Structural validation of the result document ("gradparity/1"), the benchmark document
("gradparity-bench/1") and the learner's check document ("gradparity-check/2") before anything
is rendered or graded.

Each field is declared as a type word: ``string``, ``int``, ``number``, ``bool``, ``list``,
``dict``, or alternatives such as ``int|list``; a trailing ``?`` allows null. Fields that older
documents lack are declared apart, as optional: checked when present. A problem is one line,
``path: what is wrong``.
"""

from __future__ import annotations

import math
from typing import Any

from gradparity.core.errors import GradparityError
from gradparity.core.optimizers import OPTIMIZERS, SHUFFLES

SCHEMA = "gradparity/1"
BENCH_SCHEMA = "gradparity-bench/1"
STATUSES = ("pass", "known_deviation", "stale", "fail", "error", "skipped")
VERDICTS = ("pass", "fail", "known_deviation")
KINDS = ("cost", "gradients", "activations", "trajectory", "dtype")
MODES = ("eager", "compiled")
SUMMARY_KEYS = {"passed": "pass", "failed": "fail", "known_deviations": "known_deviation",
                "skipped": "skipped", "errors": "error", "stale": "stale"}
OPTIONAL_SUMMARY = ("stale",)  # absent from older documents

TOP = {"schema": "string", "environment": "dict", "options": "dict", "results": "list",
       "summary": "dict", "run": "dict"}
ENVIRONMENT = {"python": "string", "platform": "string", "cpu": "string?", "cores": "int?",
               "numpy": "string", "blas": "string?", "frameworks": "dict", "flags": "dict",
               "device": "string", "allow_tf32": "bool", "git_commit": "string?"}
OPTIONS = {"cases": "list", "backends": "list", "dtypes": "list", "steps": "int|list?"}
OPTIONS_OPTIONAL = {"controls": "list", "strict": "bool", "optimizers": "list", "trajectories": "bool"}
RESULT = {"case": "string", "description": "string", "dtype": "string", "layers": "list",
          "hidden_activation": "string", "loss": "string", "m": "int", "learning_rate": "number",
          "steps": "int", "reference": "dict", "backends": "dict"}
RESULT_OPTIONAL = {"training": "dict"}  # absent from documents before optimizers and mini-batches
TRAINING = {"optimizer": "string", "learning_rate": "number", "epochs": "int", "batch_size": "int?",
            "shuffle": "string", "seed": "int", "momentum": "number", "beta1": "number", "beta2": "number",
            "epsilon": "number", "hyperparameters": "dict", "steps": "int"}
REFERENCE = {"cost": "number?", "costs": "list"}  # and "decision_boundary": dict, null or absent
REFERENCE_OPTIONAL = {"optimizer": "string", "formulations": "dict?"}
FORMULATIONS = {"last_costs": "dict", "last_cost": "number?", "params": "number?", "worst_param": "string",
                "rtol": "number"}  # for an Adam case: how far its two forms end apart
FORMULATIONS_OPTIONAL = {"costs": "dict"}  # each form's cost at every step
BOUNDARY = {"x": "list", "y": "list", "probability": "list", "points": "list", "labels": "list",
            "accuracy": "number?", "iterations": "int?"}
BACKEND = {"status": "string", "reason": "string", "dtype_used": "string?", "cost": "number?",
           "costs": "list?", "checks": "list", "first_divergent_layer": "int?", "worst": "dict?"}
BACKEND_OPTIONAL = {"diagnosis": "dict?", "stderr": "string?", "optimizer": "string?",
                    "first_divergent_step": "int?"}
DIAGNOSIS = {"ops": "list", "pattern": "string", "reproducer": "string?"}
OP = {"op": "string", "source": "string", "input_dtype": "string", "output_dtype": "string?",
      "rel_error": "number?", "tolerance": "number"}
CHECK = {"quantity": "string", "kind": "string", "max_abs_error": "number?",
         "max_rel_error": "number?", "rel_error": "number?", "ulps": "number?", "cosine": "number?",
         "worst_index": "list", "mismatched": "int", "total": "int", "rtol": "number",
         "atol": "number", "tolerance_reason": "string", "verdict": "string", "message": "string?",
         "deviation": "dict?"}
CHECK_OPTIONAL = {"first_index": "list?", "excess": "number?"}  # excess: absent from older documents
DEVIATION = {"cause": "string", "measured": "string|number"}
WORST = {"quantity": "string", "rel_error": "number?", "ulps": "number?"}
RUN = {"date": "string", "duration_s": "number", "backend_seconds": "dict"}
RUN_OPTIONAL = {"timing": "dict", "workers_at_a_time": "int"}  # absent from older documents
TIMING = {"setup_s": "number?", "compile_s": "number?", "compute_s": "number", "probes_s": "number",
          "total_s": "number"}
BENCH = {"schema": "string", "environment": "dict", "results": "list"}
BENCH_RESULT = {"shape": "string", "dtype": "string", "backend": "string", "mode": "string",
                "median_s": "number?", "min_s": "number?", "max_s": "number?",
                "compile_s": "number?", "ratio_to_reference": "number?", "note": "string?"}
CHECK_SCHEMA = "gradparity-check/2"
CHECK_VERDICTS = ("pass", "fail", "error")
READ_FROM = ("cost", "forward pass and gradients", "default", "options")
CHECK_TOP = {"schema": "string", "verdict": "string", "message": "string?", "traceback": "string?",
             "convention": "string?", "called": "list", "source": "string?", "dtype": "string?", "wrong": "list",
             "first_wrong": "string?", "hint": "string?", "pattern": "string?", "notes": "list", "networks": "list"}
NETWORK = {"verdict": "string", "wrong": "list", "first_wrong": "string?", "hint": "string?", "pattern": "string?",
           "hints": "dict", "shapes": "dict", "explanation": "string?", "function": "string", "network": "string",
           "read_from": "string", "data": "string", "dtype": "string", "m": "int", "checks": "list",
           "corroboration": "dict", "notes": "list"}
SOURCE = {"status": "string", "reason": "string", "quantities": "dict"}
AGREEMENT = {"verdict": "string", "rel_error": "number?"}
AGREEMENTS = ("agrees", "differs", "deviates", "unmeasured")


class DocumentError(GradparityError):
    """A result or benchmark document that does not follow its schema."""


def validate_document(document: Any) -> list[str]:
    """Every structural problem of a "gradparity/1" result document: missing keys, wrong
    types, unknown status/verdict/kind, non-finite numbers (not valid JSON; use null), ragged
    decision-boundary grids and a summary that does not count the backend statuses. Empty
    when the document is well formed."""
    problems: list[str] = []
    if not _fields(document, TOP, "document", problems):
        return problems
    if document["schema"] != SCHEMA:
        problems.append(f"document.schema: {document['schema']!r} is not {SCHEMA!r}")
    _environment(document["environment"], problems)
    _options(document["options"], problems)
    _run(document["run"], problems)
    for i, result in enumerate(document["results"]):
        _result(result, f"results[{i}]", problems)
    _summary(document, problems)
    return problems


def validate_bench(bench: Any) -> list[str]:
    """Every structural problem of a "gradparity-bench/1" benchmark document; empty when valid."""
    problems: list[str] = []
    if not _fields(bench, BENCH, "bench", problems):
        return problems
    if bench["schema"] != BENCH_SCHEMA:
        problems.append(f"bench.schema: {bench['schema']!r} is not {BENCH_SCHEMA!r}")
    for i, entry in enumerate(bench["results"]):
        path = f"bench.results[{i}]"
        if _fields(entry, BENCH_RESULT, path, problems):
            _enum(entry["mode"], MODES, f"{path}.mode", problems)
    return problems


def validate_check(document: Any) -> list[str]:
    """Every structural problem of a "gradparity-check/2" document: the verdict, and on
    ``error`` the one-line message (with the learner's traceback or null) and no network; on
    ``pass`` or ``fail`` one record per network checked, each with its checks and, per
    corroborating source, its status and per quantity an agreement. Empty when well formed."""
    problems: list[str] = []
    if not _fields(document, CHECK_TOP, "document", problems):
        return problems
    if document["schema"] != CHECK_SCHEMA:
        problems.append(f"document.schema: {document['schema']!r} is not {CHECK_SCHEMA!r}")
    _enum(document["verdict"], CHECK_VERDICTS, "document.verdict", problems)
    if document["verdict"] == "error":
        if not document["message"]:
            problems.append("document.message: an error document says what went wrong")
        if document["networks"]:
            problems.append("document.networks: an error document checked no network")
    elif not document["networks"]:
        problems.append("document.networks: a pass or fail checked at least one network")
    for i, record in enumerate(document["networks"]):
        _network(record, f"document.networks[{i}]", problems)
    verdicts = {record.get("verdict") for record in document["networks"] if isinstance(record, dict)}
    if document["verdict"] == "pass" and verdicts - {"pass"}:
        problems.append("document.verdict: pass, but a network failed")
    return problems


def _network(record: Any, path: str, problems: list[str]) -> None:
    if not _fields(record, NETWORK, path, problems):
        return
    _enum(record["verdict"], ("pass", "fail"), f"{path}.verdict", problems)
    _enum(record["read_from"], READ_FROM, f"{path}.read_from", problems)
    for i, check in enumerate(record["checks"]):
        _check(check, f"{path}.checks[{i}]", problems)
    for name, source in record["corroboration"].items():
        if _fields(source, SOURCE, f"{path}.corroboration.{name}", problems):
            _enum(source["status"], STATUSES, f"{path}.corroboration.{name}.status", problems)
            for quantity, cell in source["quantities"].items():
                where = f"{path}.corroboration.{name}.quantities.{quantity}"
                if _fields(cell, AGREEMENT, where, problems):
                    _enum(cell["verdict"], AGREEMENTS, f"{where}.verdict", problems)


def _environment(environment: dict, problems: list[str]) -> None:
    if not _fields(environment, ENVIRONMENT, "environment", problems):
        return
    for name, version in environment["frameworks"].items():
        _typed(version, "string", f"environment.frameworks.{name}", problems)
    for name, flags in environment["flags"].items():
        if _typed(flags, "dict", f"environment.flags.{name}", problems):
            for flag, value in flags.items():
                if not _is_scalar(value):
                    problems.append(f"environment.flags.{name}.{flag}: expected a string, number,"
                                    f" bool or null, got {type(value).__name__}")


def _options(options: dict, problems: list[str]) -> None:
    if not _fields(options, OPTIONS, "options", problems, OPTIONS_OPTIONAL):
        return
    if "controls" in options:
        _items(options["controls"], "string", "options.controls", problems)
    for i, optimizer in enumerate(options.get("optimizers", [])):
        _enum(optimizer, OPTIMIZERS, f"options.optimizers[{i}]", problems)


def _run(run: dict, problems: list[str]) -> None:
    if _fields(run, RUN, "run", problems, RUN_OPTIONAL):
        for name, seconds in run["backend_seconds"].items():
            _typed(seconds, "number", f"run.backend_seconds.{name}", problems)
        for name, timing in run.get("timing", {}).items():
            _fields(timing, TIMING, f"run.timing.{name}", problems)


def _result(result: Any, path: str, problems: list[str]) -> None:
    if not _fields(result, RESULT, path, problems, RESULT_OPTIONAL):
        return
    _items(result["layers"], "int", f"{path}.layers", problems)
    if "training" in result:
        _training(result["training"], f"{path}.training", problems)
    reference = result["reference"]
    if _fields(reference, REFERENCE, f"{path}.reference", problems, REFERENCE_OPTIONAL):
        _items(reference["costs"], "number?", f"{path}.reference.costs", problems)
        if "optimizer" in reference:
            _enum(reference["optimizer"], OPTIMIZERS, f"{path}.reference.optimizer", problems)
        if reference.get("formulations") is not None:
            _formulations(reference["formulations"], f"{path}.reference.formulations", problems)
        if reference.get("decision_boundary") is not None:
            _boundary(reference["decision_boundary"], f"{path}.reference.decision_boundary", problems)
    for name, backend in result["backends"].items():
        _backend(backend, f"{path}.backends.{name}", problems)


def _training(training: Any, path: str, problems: list[str]) -> None:
    if not _fields(training, TRAINING, path, problems):
        return
    _enum(training["optimizer"], OPTIMIZERS, f"{path}.optimizer", problems)
    _enum(training["shuffle"], SHUFFLES, f"{path}.shuffle", problems)
    for name, value in training["hyperparameters"].items():
        _typed(value, "number", f"{path}.hyperparameters.{name}", problems)


def _formulations(formulations: Any, path: str, problems: list[str]) -> None:
    if not _fields(formulations, FORMULATIONS, path, problems, FORMULATIONS_OPTIONAL):
        return
    for form, cost in formulations["last_costs"].items():
        _enum(form, OPTIMIZERS, f"{path}.last_costs", problems)
        _typed(cost, "number?", f"{path}.last_costs.{form}", problems)
    for form, costs in formulations.get("costs", {}).items():
        _enum(form, OPTIMIZERS, f"{path}.costs", problems)
        _items(costs, "number?", f"{path}.costs.{form}", problems)


def _boundary(boundary: dict, path: str, problems: list[str]) -> None:
    if not _fields(boundary, BOUNDARY, path, problems):
        return
    x, y, points = boundary["x"], boundary["y"], boundary["points"]
    _items(x, "number", f"{path}.x", problems)
    _items(y, "number", f"{path}.y", problems)
    rows = boundary["probability"]
    if len(rows) != len(y) or any(not isinstance(row, list) or len(row) != len(x) for row in rows):
        problems.append(f"{path}.probability: expected {len(y)} rows of {len(x)} values (len(y) × len(x))")
    if len(points) != 2 or any(not isinstance(axis, list) for axis in points):
        problems.append(f"{path}.points: expected two lists, [x0 values, x1 values]")
    elif len(points[0]) != len(points[1]) or len(_flat(boundary["labels"])) != len(points[0]):
        problems.append(f"{path}.points: x0, x1 and labels must have the same length")


def _backend(backend: Any, path: str, problems: list[str]) -> None:
    if not _fields(backend, BACKEND, path, problems, BACKEND_OPTIONAL):
        return
    if backend.get("diagnosis") is not None:
        _diagnosis(backend["diagnosis"], f"{path}.diagnosis", problems)
    _enum(backend["status"], STATUSES, f"{path}.status", problems)
    if backend.get("optimizer") is not None:
        _enum(backend["optimizer"], OPTIMIZERS, f"{path}.optimizer", problems)
    if backend["costs"] is not None:
        _items(backend["costs"], "number?", f"{path}.costs", problems)
    if backend["worst"] is not None:
        _fields(backend["worst"], WORST, f"{path}.worst", problems)
    for i, check in enumerate(backend["checks"]):
        _check(check, f"{path}.checks[{i}]", problems)


def _diagnosis(diagnosis: dict, path: str, problems: list[str]) -> None:
    if _fields(diagnosis, DIAGNOSIS, path, problems):
        for i, op in enumerate(diagnosis["ops"]):
            _fields(op, OP, f"{path}.ops[{i}]", problems)


def _check(check: Any, path: str, problems: list[str]) -> None:
    if not _fields(check, CHECK, path, problems, CHECK_OPTIONAL):
        return
    if check.get("first_index") is not None:
        _items(check["first_index"], "int", f"{path}.first_index", problems)
    _enum(check["kind"], KINDS, f"{path}.kind", problems)
    _enum(check["verdict"], VERDICTS, f"{path}.verdict", problems)
    _items(check["worst_index"], "int", f"{path}.worst_index", problems)
    if check["deviation"] is not None:
        _fields(check["deviation"], DEVIATION, f"{path}.deviation", problems)


def _summary(document: dict, problems: list[str]) -> None:
    summary = document["summary"]
    required = {key: "int" for key in SUMMARY_KEYS if key not in OPTIONAL_SUMMARY}
    if not _fields(summary, required, "summary", problems, dict.fromkeys(OPTIONAL_SUMMARY, "int")):
        return
    statuses = [backend.get("status") for result in document["results"]
                for backend in _backends(result) if isinstance(backend, dict)]
    for key, status in SUMMARY_KEYS.items():
        if summary.get(key, 0) != statuses.count(status):
            problems.append(f"summary.{key}: {summary.get(key, 'absent')} but {statuses.count(status)}"
                            f" backend results have status {status!r}")


def _backends(result: Any) -> list:
    backends = result.get("backends") if isinstance(result, dict) else None
    return list(backends.values()) if isinstance(backends, dict) else []


def _fields(obj: Any, fields: dict[str, str], path: str, problems: list[str],
            optional: dict[str, str] | None = None) -> bool:
    """Check that ``obj`` is a dict holding every field with its type, and each ``optional``
    field it has with its type; False when it is not a dict or any field is missing or
    mistyped (the caller then skips looking deeper)."""
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected an object, got {type(obj).__name__}")
        return False
    before = len(problems)
    for key, kind in fields.items():
        if key not in obj:
            problems.append(f"{path}.{key}: missing")
        else:
            _typed(obj[key], kind, f"{path}.{key}", problems)
    for key, kind in (optional or {}).items():
        if key in obj:
            _typed(obj[key], kind, f"{path}.{key}", problems)
    return len(problems) == before


def _typed(value: Any, kind: str, path: str, problems: list[str]) -> bool:
    """Check ``value`` against a type word; numbers must be finite (JSON has no NaN/inf)."""
    if value is None and kind.endswith("?"):
        return True
    words = kind.rstrip("?").split("|")
    if not any(_is(value, word) for word in words):
        problems.append(f"{path}: expected {' or '.join(words)}{' or null' if kind.endswith('?') else ''},"
                        f" got {type(value).__name__}")
        return False
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path}: {value!r} is not valid JSON; use null")
        return False
    return True


def _is(value: Any, word: str) -> bool:
    if isinstance(value, bool):
        return word == "bool"
    types: dict[str, type | tuple[type, ...]] = {
        "string": str, "int": int, "number": (int, float), "bool": bool, "list": list, "dict": dict}
    return isinstance(value, types[word])


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _items(values: list, kind: str, path: str, problems: list[str]) -> None:
    for i, value in enumerate(values):
        if not _typed(value, kind, f"{path}[{i}]", problems):
            return


def _enum(value: str, allowed: tuple[str, ...], path: str, problems: list[str]) -> None:
    if value not in allowed:
        problems.append(f"{path}: {value!r} is not one of {', '.join(allowed)}")


def _flat(values: list) -> list:
    """Labels may come as ``[...]`` or as the reference's ``(1, m)`` row ``[[...]]``."""
    return values[0] if len(values) == 1 and isinstance(values[0], list) else values
