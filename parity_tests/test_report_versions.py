"""One backend at two versions side by side in the terminal, the Markdown and the HTML: the
matrix says which version each column ran, and a between-versions section gives each
quantity's distance in ulp (bit-identical said as such) and the ops whose outputs differ."""

from __future__ import annotations

import contextlib
import io

from gradparity.core.results import Document
from gradparity.reports import read_document, validate_document
from test_reports import EPS, make_document

PAIRS = {"jax": ("jax==0.4.30", "jax"), "torch": ("torch==2.12.0", "torch")}  # each backend's older column first
FRAMEWORKS = {"jax==0.4.30": "jax 0.4.30", "jax": "jax 0.10.2", "torch==2.12.0": "torch 2.12.0", "torch": "torch 2.13.0"}
VERSIONED = {"numpy": "pass", "jax==0.4.30": "pass", "jax": "pass", "torch==2.12.0": "pass", "torch": "fail"}
PROBED = ("matmul", "sigmoid", "tanh", "bce")  # the ops probed in both versions on every run
# where the versions differ, by (backend, case, dtype): quantity -> (ulp, entries differing), op -> both rel errors;
# everything else is bit-identical
APART = {("jax", "seed-2layer", "float64"): {"dW1": (4.0, 3), "trajectory cost": (1200.0, 5)}}
OPS_APART = {("jax", "seed-2layer", "float64"): {"tanh": [1.1e-16, 2.2e-16]}}


def with_versions(document: dict, apart: dict = APART, ops_apart: dict = OPS_APART) -> dict:
    """``document`` (of the ``VERSIONED`` columns) as ``gradparity run --backends
    numpy,jax==0.4.30,jax,torch==2.12.0,torch`` writes it: each column's framework version, and
    per backend of ``PAIRS`` and run, every quantity its newer column checked and every op of
    ``PROBED`` compared between the two versions, bit-identical unless ``apart`` and
    ``ops_apart`` say otherwise."""
    document["environment"]["frameworks"] = {**document["environment"]["frameworks"], **FRAMEWORKS}
    document["versions"] = []
    for result in document["results"]:
        for backend, columns in PAIRS.items():
            key = (backend, result["case"], result["dtype"])
            gaps = apart.get(key, {})
            quantities = []
            for check in result["backends"][columns[1]]["checks"]:
                ulp, differing = gaps.get(check["quantity"], (0.0, 0))
                quantities.append({"quantity": check["quantity"], "kind": check["kind"], "ulps": ulp,
                                   "max_abs": ulp * EPS[result["dtype"]], "differing": differing,
                                   "total": check["total"]})
            ops = [{"op": op, "identical": op not in ops_apart.get(key, {}),
                    "rel_errors": ops_apart.get(key, {}).get(op, [3e-17, 3e-17])} for op in PROBED]
            document["versions"].append({"backend": backend, "columns": list(columns),
                                         "versions": [FRAMEWORKS[column] for column in columns],
                                         "case": result["case"], "dtype": result["dtype"],
                                         "quantities": quantities, "ops": ops})
    return document


def versioned_document() -> dict:
    """seed-2layer and deep-tanh, two dtypes, on numpy and jax and torch at two versions each;
    jax's versions differ on seed-2layer float64 alone (``APART``), torch's nowhere."""
    return with_versions(make_document(("seed-2layer", "deep-tanh"), VERSIONED))


def test_the_versioned_fixture_is_valid():
    data = versioned_document()
    assert validate_document(data) == []
    document = read_document(data)
    assert len(document.versions) == 2 * 2 * 2
    assert [comparison.identical() for comparison in document.versions].count(False) == 1
