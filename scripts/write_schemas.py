"""Write the JSON Schemas of gradparity's documents into schemas/, generated from their types
(``gradparity.core.results``): ``python scripts/write_schemas.py``. A test fails while the
shipped files differ from what this writes."""

import json
from pathlib import Path

from gradparity.reports.schema import shipped_schemas

FOLDER = Path(__file__).resolve().parent.parent / "schemas"


def schema_text(schema: dict) -> str:
    """A schema as the shipped file holds it."""
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    FOLDER.mkdir(exist_ok=True)
    for name, schema in shipped_schemas().items():
        (FOLDER / name).write_text(schema_text(schema))
        print(f"wrote {FOLDER / name}")
