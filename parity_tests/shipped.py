"""The JSON Schemas shipped in ``schemas/``, read as a user's tools read them: a document the
project writes is checked against the file with the ``jsonschema`` validator, not through
gradparity's own code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
FILES = {"gradparity/2": "gradparity-2.schema.json", "gradparity-check/2": "gradparity-check-2.schema.json",
         "gradparity-bench/1": "gradparity-bench-1.schema.json", "gradparity-train/1": "gradparity-train-1.schema.json"}


def assert_follows_its_shipped_schema(document: dict) -> None:
    """``document`` (as JSON holds it) validates against the shipped schema its ``schema`` names."""
    schema = json.loads((SCHEMAS / FILES[document["schema"]]).read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(document, allow_nan=False)))
