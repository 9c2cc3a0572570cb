"""Shards of one run merged back into one document, and documents from different environments
side by side; documents whose cases disagree are refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gradparity.core.cases import build_case
from gradparity.engine import RunOptions, run, shares
from gradparity.merge import MergeError, load_documents, merge
from gradparity.reports.schema import validate_document

CASES = [build_case(name, dtype) for name in ("seed-2layer", "single-example", "tanh") for dtype in ("float64", "float32")]
BACKENDS = ["numpy", "finite-diff"]
OLDER = Path(__file__).resolve().parent / "documents" / "gradparity-1.json"  # a sample of a gradparity/1 report


def without_run(document: dict) -> dict:
    """What two equivalent documents share: everything but timings, dates and provenance."""
    options = {key: value for key, value in document["options"].items() if key not in ("shard", "merged_from")}
    environment = {key: value for key, value in document["environment"].items() if key != "environments"}
    return {**document, "run": None, "options": options, "environment": environment}


@pytest.fixture(scope="module")
def single_run() -> dict:
    """The run as its JSON document holds it."""
    return run(CASES, RunOptions(backends=BACKENDS)).to_dict()


def test_shares_split_the_matrix_into_disjoint_covering_parts():
    parts = [shares(5, ["a", "b", "c"], k, 4) for k in range(1, 5)]
    pairs = [(index, name) for part in parts for name, indices in part.items() for index in indices]
    assert len(pairs) == len(set(pairs))  # disjoint
    assert sorted(pairs) == sorted((index, name) for index in range(5) for name in "abc")  # covering
    assert shares(5, ["a", "b", "c"], 1, 1) == {name: list(range(5)) for name in "abc"}


def test_shards_merged_equal_a_single_run(tmp_path, single_run):
    paths = []
    for k in (1, 2, 3):
        shard = run(CASES, RunOptions(backends=BACKENDS, shard=(k, 3))).to_dict()
        assert sum(len(result["backends"]) for result in shard["results"]) == 4  # 12 pairs in 3 shares
        paths.append(tmp_path / f"shard{k}.json")
        paths[-1].write_text(json.dumps(shard))
    merged = merge(load_documents([str(path) for path in paths])).to_dict()
    assert validate_document(merged) == []
    assert without_run(merged) == without_run(single_run)
    assert merged["options"]["merged_from"] == ["shard1", "shard2", "shard3"]


def test_different_environments_get_a_column_each_and_keep_their_fingerprints(tmp_path, single_run):
    gpu = copy.deepcopy(single_run)
    gpu["environment"]["device"] = "cuda"
    (tmp_path / "cpu.json").write_text(json.dumps(single_run))
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    merged = merge(load_documents([str(tmp_path / "cpu.json"), str(tmp_path / "gpu.json")])).to_dict()
    assert merged["options"]["backends"] == ["numpy@cpu", "finite-diff@cpu", "numpy@gpu", "finite-diff@gpu"]
    assert merged["environment"]["environments"]["gpu"]["device"] == "cuda"
    assert merged["summary"]["passed"] == 2 * single_run["summary"]["passed"]
    assert merged["options"]["roles"] == {"numpy@cpu": "control", "finite-diff@cpu": "ground truth",
                                          "numpy@gpu": "control", "finite-diff@gpu": "ground truth"}
    assert validate_document(merged) == []


def test_a_case_with_other_data_is_refused_by_name(tmp_path, single_run):
    other = copy.deepcopy(single_run)
    other["results"][2]["data"] = "0" * 16
    other["environment"]["device"] = "cuda"
    (tmp_path / "a.json").write_text(json.dumps(single_run))
    (tmp_path / "b.json").write_text(json.dumps(other))
    with pytest.raises(MergeError, match=r"case single-example \(float64\) holds different data in a and b"):
        merge(load_documents([str(tmp_path / "a.json"), str(tmp_path / "b.json")]))


def test_the_same_result_twice_is_refused(tmp_path, single_run):
    (tmp_path / "a.json").write_text(json.dumps(single_run))
    with pytest.raises(MergeError, match="is in a and a-2"):
        merge(load_documents([str(tmp_path / "a.json"), str(tmp_path / "a.json")]))


def test_an_unreadable_document_is_one_clear_error(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(MergeError, match="cannot read .*broken.json as a gradparity/2 JSON document"):
        load_documents([str(tmp_path / "broken.json")])
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something else"}))
    with pytest.raises(MergeError, match="other.json is not a valid gradparity/2 document: document.schema"):
        load_documents([str(tmp_path / "other.json")])


def test_a_gradparity_1_document_merges_beside_a_current_one(tmp_path, single_run):
    """An older document is read through the one converter: its columns sit beside a current
    run's, its results keep their numbers and statuses. Its columns are named ``backend@older``
    where this machine's fingerprint differs from the one it was made on (another CPU or kernel)."""
    older = json.loads(OLDER.read_text())
    (tmp_path / "older.json").write_text(OLDER.read_text())
    (tmp_path / "now.json").write_text(json.dumps(single_run))
    merged = merge(load_documents([str(tmp_path / "older.json"), str(tmp_path / "now.json")]))
    assert validate_document(merged.to_dict()) == []
    saturated = next(result for result in merged.results if (result.case, result.dtype) == ("saturated", "float32"))
    was = next(result for result in older["results"] if result["case"] == "saturated")
    assert {name.removesuffix("@older"): backend.status for name, backend in saturated.backends.items()} == {
        name: backend["status"] for name, backend in was["backends"].items()}
    assert saturated.backends["keras-torch"].cost == was["backends"]["keras-torch"]["cost"]
    assert merged.summary.known_deviations == older["summary"]["known_deviations"]
