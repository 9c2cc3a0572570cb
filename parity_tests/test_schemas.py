"""The typed documents and their JSON Schemas: the schemas shipped in schemas/ are the ones the
types generate, a document survives JSON both ways, the schema refuses what the types would not
hold, and a gradparity/1 document is read through the one converter with its numbers intact."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import jsonschema
import pytest

from gradparity.core.results import SCHEMA, BackendResult, Check, Document, upgrade
from gradparity.reports import read_document, validate_document, write_report
from gradparity.reports.schema import shipped_schemas
from shipped import SCHEMAS, assert_follows_its_shipped_schema

ROOT = Path(__file__).resolve().parent.parent
OLDER = Path(__file__).resolve().parent / "documents" / "gradparity-1.json"  # a sample of a gradparity/1 report


def test_the_shipped_schemas_are_the_ones_the_types_generate():
    """After a change of the types, ``python scripts/write_schemas.py`` rewrites them."""
    assert sorted(path.name for path in SCHEMAS.glob("*.json")) == sorted(shipped_schemas())
    for name, schema in shipped_schemas().items():
        assert json.loads((SCHEMAS / name).read_text()) == schema, f"{name}: run python scripts/write_schemas.py"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_a_gradparity_1_report_reads_through_the_converter_with_its_numbers():
    """Every result, status, cost and check of the older sample survives, now as gradparity/2,
    valid against the shipped schema."""
    older = json.loads(OLDER.read_text())
    document = read_document(older)
    assert document.schema == SCHEMA
    assert_follows_its_shipped_schema(document.to_dict())
    for was, now in zip(older["results"], document.results, strict=True):
        assert (now.case, now.dtype) == (was["case"], was["dtype"])
        for name, backend in was["backends"].items():
            assert now.backends[name].status == backend["status"]
            assert now.backends[name].cost == backend["cost"]
            assert [check.to_dict()["rel_error"] for check in now.backends[name].checks] == [
                check["rel_error"] for check in backend["checks"]]
    assert document.summary.to_dict() == older["summary"]


def test_an_older_document_renders_the_same_numbers(tmp_path):
    """Its Markdown report carries each backend's cost and worst relative error as the numbers
    in the file say."""
    older = json.loads(OLDER.read_text())
    markdown = write_report(older, tmp_path / "out")["report.md"].read_text()
    for result in older["results"]:
        for name, backend in result["backends"].items():
            row = next(line for line in markdown.splitlines() if line.startswith(f"| {name} | ")
                       and f"| {backend['cost']:.10g} |" in line)
            assert f"{backend['worst']['rel_error']:.1e}" in row or backend["worst"]["rel_error"] == 0


def test_a_document_survives_json_both_ways():
    """``from_dict(to_dict())`` gives the same document, a Measure's NaN as null in between."""
    data = upgrade(json.loads(OLDER.read_text()))
    again = Document.from_dict(json.loads(json.dumps(Document.from_dict(data).to_dict(), allow_nan=False)))
    assert again.to_dict() == Document.from_dict(data).to_dict()
    unmeasured = Check.from_dict({**data["results"][0]["backends"]["numpy"]["checks"][0], "rel_error": None})
    assert math.isnan(unmeasured.rel_error) and unmeasured.to_dict()["rel_error"] is None


@pytest.mark.parametrize("breaks, problem", [
    (lambda d: d["results"][0]["backends"]["numpy"].update(speed="fast"), "unexpected field 'speed'"),
    (lambda d: d["results"][0]["backends"]["numpy"].update(status="ok"), "'ok' is not one of pass"),
    (lambda d: d["results"][0]["backends"]["numpy"]["checks"][0].update(kind="hessian"), "'hessian' is not one of"),
    (lambda d: d["options"]["roles"].update(numpy="witness"), "'witness' is not one of"),
    (lambda d: d["results"][0]["reference"].pop("optimizer"), "reference.optimizer: missing"),
])
def test_the_schema_refuses_what_the_types_would_not_hold(breaks, problem):
    """Checked twice: by the jsonschema validator on the shipped file, and by validate_document's
    one-line problem that names the place."""
    data = upgrade(json.loads(OLDER.read_text()))
    broken = copy.deepcopy(data)
    breaks(broken)
    with pytest.raises(jsonschema.ValidationError):
        assert_follows_its_shipped_schema(broken)
    assert any(problem in line for line in validate_document(broken)), validate_document(broken)


def test_a_result_without_an_answer_is_a_valid_backend_result():
    result = BackendResult.unanswered("error", "worker process died (exit code 3)")
    assert math.isnan(result.cost) and result.checks == [] and result.to_dict()["cost"] is None
    schema = json.loads((SCHEMAS / "gradparity-2.schema.json").read_text())
    jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/BackendResult"}).validate(
        result.to_dict())
