"""Validation of the documents gradparity writes before anything is rendered or graded: the
result document (``gradparity/2``, and ``gradparity/1`` through ``core.results.upgrade``)
against the JSON Schema generated from its types (``core.results.Document``); the benchmark
document ("gradparity-bench/1") and the learner's check document ("gradparity-check/2") against
theirs (``BenchDocument``, ``CheckDocument``). The schemas are shipped in ``schemas/``. A problem
is one line, ``path: what is wrong``.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import jsonschema

from gradparity.core.errors import GradparityError
from gradparity.core.results import (BENCH_SCHEMA, CHECK_SCHEMA, OLDER_SCHEMAS, SCHEMA, STATUSES, BenchDocument,
                                     SUMMARY_KEYS, TRAIN_SCHEMA, CheckDocument, DecisionBoundary, Document, Summary,
                                     TrainDocument, upgrade)

TITLE = "gradparity/2 result document"


class DocumentError(GradparityError):
    """A result or benchmark document that does not follow its schema."""


@cache
def document_schema() -> dict:
    """The JSON Schema of the result document, generated from ``core.results.Document``."""
    schema = Document.json_schema(TITLE)
    schema["properties"]["schema"] = {"const": SCHEMA}
    return schema


def validate_document(document: Any) -> list[str]:
    """Every problem of a result document (typed, or as JSON data): where it breaks the JSON
    Schema (a ``gradparity/1`` one once upgraded), non-finite numbers (not valid JSON; use
    null), ragged decision-boundary grids and a summary that does not count the backend
    statuses. Empty when well formed."""
    return parse_document(document)[1]


def read_document(data: Any, source: str = "the document") -> Document:
    """The typed document of ``data`` (``validate_document``'s rules), or ``DocumentError``
    naming ``source`` and its first problem."""
    document, problems = parse_document(data)
    if document is None:
        raise DocumentError(f"{source} is not a valid {SCHEMA} document: {problems[0]}")
    return document


def parse_document(data: Any) -> tuple[Document | None, list[str]]:
    """The typed document of ``data`` (a ``gradparity/1`` one upgraded) and its problems; the
    document is None when there is any."""
    if isinstance(data, Document):
        data = data.to_dict()
    if not isinstance(data, dict):
        return None, [f"document: expected an object, got {type(data).__name__}"]
    if "schema" not in data:
        return None, ["document.schema: missing"]
    if data["schema"] not in (SCHEMA, *OLDER_SCHEMAS):
        return None, [f"document.schema: {data['schema']!r} is not {SCHEMA!r} (nor {', '.join(OLDER_SCHEMAS)})"]
    if data["schema"] in OLDER_SCHEMAS:
        try:
            data = upgrade(data)
        except (KeyError, TypeError, AttributeError) as error:
            return None, [f"document: a {data['schema']} document that cannot be read: {error!r} missing or malformed"]
    problems = _schema_problems(data, document_schema())
    if problems:
        return None, problems
    document = Document.from_dict(data)
    problems = _semantics(document)
    return (None if problems else document), problems


def _path(parts) -> str:
    return ".".join(["document", *(f"[{part}]" if isinstance(part, int) else str(part) for part in parts)]).replace(".[", "[")


def _non_finite(value: Any, path: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: {value!r} is not valid JSON; use null"]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in _non_finite(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [problem for i, item in enumerate(value) for problem in _non_finite(item, f"{path}[{i}]")]
    return []


def _semantics(document: Document) -> list[str]:
    """What the schema cannot say: summary counts and decision-boundary grids."""
    problems = []
    counted = Summary.of(document.results)
    for status in STATUSES:
        if document.summary.count(status) != counted.count(status):
            problems.append(f"document.summary.{SUMMARY_KEYS[status]}: {document.summary.count(status)} but "
                            f"{counted.count(status)} backend results have status {status!r}")
    for i, result in enumerate(document.results):
        boundary = result.reference.decision_boundary
        if boundary is not None:
            problems += _boundary(boundary, f"document.results[{i}].reference.decision_boundary")
    return problems


def validate_bench(bench: Any) -> list[str]:
    """Every problem of a "gradparity-bench/1" benchmark document: where it breaks the JSON
    Schema of ``core.results.BenchDocument``; empty when valid."""
    return _schema_problems(bench, bench_schema())


@cache
def bench_schema() -> dict:
    """The JSON Schema of the benchmark document, generated from ``core.results.BenchDocument``."""
    schema = BenchDocument.json_schema(f"{BENCH_SCHEMA} benchmark document")
    schema["properties"]["schema"] = {"const": BENCH_SCHEMA}
    return schema


def validate_check(document: Any) -> list[str]:
    """Every problem of a "gradparity-check/2" document: where it breaks the JSON Schema of
    ``core.results.CheckDocument``, and its sense: on ``error`` the one-line message and no
    network, on ``pass`` or ``fail`` at least one network, and no ``pass`` over a failed network."""
    problems = _schema_problems(document, check_schema())
    if not isinstance(document, dict) or not isinstance(document.get("networks"), list):
        return problems
    networks, verdict = document["networks"], document.get("verdict")
    if verdict == "error":
        if not document.get("message"):
            problems.append("document.message: an error document says what went wrong")
        if networks:
            problems.append("document.networks: an error document checked no network")
    elif not networks:
        problems.append("document.networks: a pass or fail checked at least one network")
    verdicts = {record.get("verdict") for record in networks if isinstance(record, dict)}
    if verdict == "pass" and verdicts - {"pass"}:
        problems.append("document.verdict: pass, but a network failed")
    return problems


@cache
def check_schema() -> dict:
    """The JSON Schema of the check document, generated from ``core.results.CheckDocument``."""
    schema = CheckDocument.json_schema(f"{CHECK_SCHEMA} check document")
    schema["properties"]["schema"] = {"const": CHECK_SCHEMA}
    return schema


def _schema_problems(document: Any, schema: dict) -> list[str]:
    """Where ``document`` breaks ``schema``, one line each, then its non-finite numbers."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda error: [str(part) for part in error.absolute_path])
    return [_problem(error) for error in errors] + _non_finite(document, "document")


JSON_TYPES = {"object": "an object", "array": "list", "string": "string", "number": "number", "integer": "int",
              "boolean": "bool", "null": "null"}


def _problem(error: jsonschema.ValidationError) -> str:
    """One schema error as ``path: what is wrong``, in the words of the Python values."""
    path = _path(error.absolute_path)
    value: Any = error.instance
    expected: Any = error.validator_value
    if error.validator == "required":
        missing = [key for key in expected if key not in value]
        return f"{path}.{missing[0]}: missing"
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"{path}: expected {' or '.join(JSON_TYPES[kind] for kind in kinds)}, got {type(value).__name__}"
    if error.validator == "enum":
        return f"{path}: {value!r} is not one of {', '.join(map(str, expected))}"
    schema: Any = error.schema
    if error.validator == "additionalProperties" and isinstance(expected, bool):
        unexpected = sorted(set(value) - set(schema.get("properties", {})))
        return f"{path}: unexpected field {unexpected[0]!r}"
    if error.validator == "anyOf":  # a record or null: what is wrong inside the record
        inside = [each for each in error.context if each.validator_value != "null"]
        if inside:
            return _problem(max(inside, key=lambda each: len(each.absolute_path)))
    return f"{path}: {error.message}"


def _boundary(boundary: DecisionBoundary, path: str) -> list[str]:
    """A grid of len(y) rows of len(x) values, and as many labels as points."""
    problems = []
    x, y, rows, points = boundary.x, boundary.y, boundary.probability, boundary.points
    if len(rows) != len(y) or any(len(row) != len(x) for row in rows):
        problems.append(f"{path}.probability: expected {len(y)} rows of {len(x)} values (len(y) × len(x))")
    if len(points) != 2:
        problems.append(f"{path}.points: expected two lists, [x0 values, x1 values]")
    elif len(points[0]) != len(points[1]) or len(_flat(boundary.labels)) != len(points[0]):
        problems.append(f"{path}.points: x0, x1 and labels must have the same length")
    return problems


def _flat(values: list) -> list:
    """Labels may come as ``[...]`` or as the reference's ``(1, m)`` row ``[[...]]``."""
    return values[0] if len(values) == 1 and isinstance(values[0], list) else values


def shipped_schemas() -> dict[str, dict]:
    """Each document's JSON Schema by the file name it is shipped under in ``schemas/``."""
    train = TrainDocument.json_schema(f"{TRAIN_SCHEMA} training document")
    train["properties"]["schema"] = {"const": TRAIN_SCHEMA}
    return {"gradparity-2.schema.json": document_schema(), "gradparity-check-2.schema.json": check_schema(),
            "gradparity-bench-1.schema.json": bench_schema(), "gradparity-train-1.schema.json": train}
