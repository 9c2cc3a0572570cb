"""One result document from several: the shards of one run (``gradparity run --shard K/N``), or
runs on different machines or framework versions (a CPU and a GPU runner, a CI matrix).

Results are matched by (case, dtype); a case must hold the same data everywhere (its ``data``
fingerprint). A backend that ran in different environments — another version, other flags,
another machine or device — gets one column per environment, ``backend@label``, the label being
the document's file name; every environment's fingerprint is kept under ``environments``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from gradparity.core.errors import GradparityError
from gradparity.engine import summarize
from gradparity.reports.schema import validate_document

MACHINE = ("python", "platform", "cpu", "numpy", "blas", "device", "allow_tf32")


class MergeError(GradparityError):
    """Documents that cannot be merged into one."""


def load_documents(paths: list[str]) -> dict[str, dict]:
    """``{label: document}`` from JSON files, each validated; labels are the file names' stems."""
    documents: dict[str, dict] = {}
    for path in paths:
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise MergeError(f"cannot read {path} as a gradparity/1 JSON document: {error}") from None
        problems = validate_document(document)
        if problems:
            raise MergeError(f"{path} is not a valid gradparity/1 document: {problems[0]}")
        label = Path(path).stem
        documents[label if label not in documents else f"{label}-{len(documents) + 1}"] = document
    return documents


def environment_key(document: dict, backend: str) -> str:
    """What must agree for two runs of ``backend`` to share a column: machine, version, flags."""
    environment = document["environment"]
    return json.dumps([[environment.get(key) for key in MACHINE], environment["frameworks"].get(backend),
                       environment["flags"].get(backend)], sort_keys=True)


def column_names(documents: dict[str, dict]) -> dict[tuple[str, str], str]:
    """``(label, backend) -> column``: the backend's own name unless it ran in more than one
    environment, then ``backend@label``."""
    environments: dict[str, set[str]] = {}
    for document in documents.values():
        for backend in document["options"]["backends"]:
            environments.setdefault(backend, set()).add(environment_key(document, backend))
    return {(label, backend): backend if len(environments[backend]) == 1 else f"{backend}@{label}"
            for label, document in documents.items() for backend in document["options"]["backends"]}


def merge(documents: dict[str, dict]) -> dict:
    """The merged ``gradparity/1`` document (see the module docstring)."""
    if not documents:
        raise MergeError("nothing to merge: give at least one document")
    columns = column_names(documents)
    results: dict[tuple[str, str], dict] = {}
    origin: dict[tuple[str, str], str] = {}
    for label, document in documents.items():
        for result in document["results"]:
            key = (result["case"], result["dtype"])
            merged = results.setdefault(key, {**result, "backends": {}})
            origin.setdefault(key, label)
            if merged.get("data") != result.get("data"):
                raise MergeError(f"case {key[0]} ({key[1]}) holds different data in {origin[key]} and {label}: "
                                 "documents can only be merged when their cases agree")
            for backend, outcome in result["backends"].items():
                column = columns[label, backend]
                if column in merged["backends"]:
                    raise MergeError(f"{column} on case {key[0]} ({key[1]}) is in {origin[key]} and {label}: "
                                     "each result may come from one document only")
                merged["backends"][column] = outcome
    first = next(iter(documents.values()))
    merged_results = list(results.values())
    return {
        "schema": first["schema"],
        "environment": {**first["environment"], **merged_environment(documents, columns)},
        "options": merged_options(documents, columns),
        "results": merged_results,
        "summary": summarize(merged_results),
        "run": merged_run(documents, columns),
    }


def merged_environment(documents: dict[str, dict], columns: dict[tuple[str, str], str]) -> dict:
    """Versions and flags per column, and every document's own fingerprint by label."""
    frameworks, flags = {}, {}
    for (label, backend), column in columns.items():
        environment = documents[label]["environment"]
        if backend in environment["frameworks"]:
            frameworks[column] = environment["frameworks"][backend]
        if backend in environment["flags"]:
            flags[column] = environment["flags"][backend]
    return {"frameworks": frameworks, "flags": flags,
            "environments": {label: document["environment"] for label, document in documents.items()}}


def merged_options(documents: dict[str, dict], columns: dict[tuple[str, str], str]) -> dict:
    """The union of every document's selection, in order of first appearance."""
    def union(key: str) -> list:
        return list(dict.fromkeys(item for document in documents.values() for item in document["options"].get(key, [])))

    roles = {columns[label, backend]: role for label, document in documents.items()
             for backend, role in document["options"].get("roles", {}).items()}
    return {
        "cases": union("cases"), "backends": list(dict.fromkeys(columns.values())), "dtypes": union("dtypes"),
        "steps": sorted({step for document in documents.values() for step in listed(document["options"]["steps"])}),
        "optimizers": union("optimizers"),
        "strict": any(document["options"].get("strict", False) for document in documents.values()),
        "trajectories": all(document["options"].get("trajectories", True) for document in documents.values()),
        "shard": None, "roles": roles, "controls": [column for column, role in roles.items() if role == "control"],
        "merged_from": list(documents),
    }


def listed(steps: int | list | None) -> list:
    """Older documents record the steps as one number."""
    return steps if isinstance(steps, list) else [] if steps is None else [steps]


def merged_run(documents: dict[str, dict], columns: dict[tuple[str, str], str]) -> dict:
    """Timings per column; the duration is the sum of the documents' durations."""
    run = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "duration_s": sum(document["run"]["duration_s"] for document in documents.values())}
    for key in ("backend_seconds", "import_seconds", "case_seconds", "timing"):
        run[key] = {columns[label, backend]: value for label, document in documents.items()
                    for backend, value in document["run"].get(key, {}).items()}
    return run
