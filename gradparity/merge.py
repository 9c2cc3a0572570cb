"""One result document from several: the shards of one run (``gradparity run --shard K/N``), or
runs on different machines or framework versions (a CPU and a GPU runner, a CI matrix).

Results are matched by (case, dtype); a case must hold the same data everywhere (its ``data``
fingerprint). A backend that ran in different environments — another version, other flags,
another machine or device — gets one column per environment, ``backend@label``, the label being
the document's file name; every environment's fingerprint is kept under ``environments``. The
comparisons between versions of each document (``gradparity.versions``) are kept, under the
merged columns' names.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from gradparity.core.errors import GradparityError
from gradparity.core.results import (SCHEMA, CaseResult, Document, Environment, Options, RunRecord, Summary,
                                     VersionComparison)
from gradparity.reports.schema import DocumentError, read_document

MACHINE = ("python", "platform", "cpu", "numpy", "blas", "device", "allow_tf32")


class MergeError(GradparityError):
    """Documents that cannot be merged into one."""


def load_documents(paths: list[str]) -> dict[str, Document]:
    """``{label: document}`` from JSON files, each validated; labels are the file names' stems."""
    documents: dict[str, Document] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise MergeError(f"cannot read {path} as a {SCHEMA} JSON document: {error}") from None
        try:
            document = read_document(data, path)
        except DocumentError as error:
            raise MergeError(str(error)) from None
        label = Path(path).stem
        documents[label if label not in documents else f"{label}-{len(documents) + 1}"] = document
    return documents


def environment_key(document: Document, backend: str) -> str:
    """What must agree for two runs of ``backend`` to share a column: machine, version, flags."""
    environment = document.environment
    return json.dumps([[getattr(environment, key) for key in MACHINE], environment.frameworks.get(backend),
                       environment.flags.get(backend)], sort_keys=True)


def column_names(documents: dict[str, Document]) -> dict[tuple[str, str], str]:
    """``(label, backend) -> column``: the backend's own name unless it ran in more than one
    environment, then ``backend@label``."""
    environments: dict[str, set[str]] = {}
    for document in documents.values():
        for backend in document.options.backends:
            environments.setdefault(backend, set()).add(environment_key(document, backend))
    return {(label, backend): backend if len(environments[backend]) == 1 else f"{backend}@{label}"
            for label, document in documents.items() for backend in document.options.backends}


def merge(documents: dict[str, Document]) -> Document:
    """The merged result document (see the module docstring)."""
    if not documents:
        raise MergeError("nothing to merge: give at least one document")
    columns = column_names(documents)
    results: dict[tuple[str, str], CaseResult] = {}
    origin: dict[tuple[str, str], str] = {}
    for label, document in documents.items():
        for result in document.results:
            key = (result.case, result.dtype)
            merged = results.setdefault(key, replace(result, backends={}))
            origin.setdefault(key, label)
            if merged.data != result.data:
                raise MergeError(f"case {key[0]} ({key[1]}) holds different data in {origin[key]} and {label}: "
                                 "documents can only be merged when their cases agree")
            for backend, outcome in result.backends.items():
                column = columns[label, backend]
                if column in merged.backends:
                    raise MergeError(f"{column} on case {key[0]} ({key[1]}) is in {origin[key]} and {label}: "
                                     "each result may come from one document only")
                merged.backends[column] = outcome
    merged_results = list(results.values())
    return Document(SCHEMA, merged_environment(documents, columns), merged_options(documents, columns),
                    merged_results, Summary.of(merged_results), merged_run(documents, columns),
                    merged_versions(documents, columns))


def merged_versions(documents: dict[str, Document], columns: dict[tuple[str, str], str]) -> list[VersionComparison]:
    """Every document's comparisons between versions, their columns named as in the merged one."""
    return [replace(comparison, columns=[columns[label, column] for column in comparison.columns])
            for label, document in documents.items() for comparison in document.versions]


def merged_environment(documents: dict[str, Document], columns: dict[tuple[str, str], str]) -> Environment:
    """The first document's machine, versions and flags per column, and every document's own
    fingerprint by label."""
    frameworks, flags = {}, {}
    for (label, backend), column in columns.items():
        environment = documents[label].environment
        if backend in environment.frameworks:
            frameworks[column] = environment.frameworks[backend]
        if backend in environment.flags:
            flags[column] = environment.flags[backend]
    first = next(iter(documents.values())).environment
    return replace(first, frameworks=frameworks, flags=flags,
                   environments={label: document.environment for label, document in documents.items()})


def merged_options(documents: dict[str, Document], columns: dict[tuple[str, str], str]) -> Options:
    """The union of every document's selection, in order of first appearance."""
    def union(key: str) -> list:
        return list(dict.fromkeys(item for document in documents.values() for item in getattr(document.options, key)))

    every = [document.options for document in documents.values()]
    return Options(
        cases=union("cases"), backends=list(dict.fromkeys(columns.values())), dtypes=union("dtypes"),
        steps=sorted({step for options in every for step in options.steps}), optimizers=union("optimizers"),
        strict=any(options.strict for options in every), trajectories=all(options.trajectories for options in every),
        shard=None, roles={columns[label, backend]: role for label, document in documents.items()
                           for backend, role in document.options.roles.items()},
        merged_from=list(documents), order=max(options.order for options in every))


def merged_run(documents: dict[str, Document], columns: dict[tuple[str, str], str]) -> RunRecord:
    """Timings per column; the duration is the sum of the documents' durations."""
    def per_column(key: str) -> dict:
        return {columns[label, backend]: value for label, document in documents.items()
                for backend, value in getattr(document.run, key).items()}

    return RunRecord(datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     sum(document.run.duration_s for document in documents.values()), None, None,
                     per_column("backend_seconds"), per_column("import_seconds"), per_column("case_seconds"),
                     per_column("timing"))
