"""One backend at two versions side by side in the terminal, the Markdown and the HTML: the
matrix says which version each column ran, and a between-versions section gives each
quantity's distance in ulp (bit-identical said as such) and the ops whose outputs differ."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from rich.cells import cell_len

from gradparity.reports import read_document, validate_document
from gradparity.reports.render import render
from gradparity.reports.terminal import VERSIONS_TITLE, WIDTH, matrix, print_summary
from gradparity.core.results import split_requirement
from gradparity.reports.versions import (gap_figures, ops_text, says_version, short_version,
                                         version_pairs, versioned_columns)
from rendered import html_section, indents, paragraphs, rows_of, table_rows
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
    ``ops_apart`` say otherwise; the run's seconds of its own columns alone."""
    document["environment"]["frameworks"] = {**document["environment"]["frameworks"], **FRAMEWORKS}
    document["run"]["backend_seconds"] = {column: 1.0 for column in document["options"]["backends"]}
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


@pytest.fixture(scope="module")
def summary() -> list[str]:
    """``versioned_document`` as ``gradparity run`` prints it, line by line."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(read_document(versioned_document()))
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def rendered() -> tuple[str, str]:
    """``versioned_document`` rendered: (html, markdown)."""
    report = render(read_document(versioned_document()))
    return report.html, report.markdown


def test_column_names_split_at_their_requirement_and_versions_read_as_numbers():
    assert split_requirement("jax==0.4.30") == ("jax", "==0.4.30")
    assert split_requirement("keras-jax>=3.10,<4") == ("keras-jax", ">=3.10,<4")
    assert split_requirement("torch") == ("torch", "")
    assert split_requirement("torch@gpu") == ("torch@gpu", "")  # a merged document's column is no requirement
    assert short_version("keras 3.15.1 on jax 0.10.2") == "3.15.1" and short_version("jax 0.10.2") == "0.10.2"
    assert short_version(None) == "" and short_version("unknown") == "unknown"
    assert says_version("jax==0.4.30", "jax 0.4.30") and not says_version("jax==0.4.30", "jax 0.4.31")
    assert not says_version("jax>=0.4", "jax 0.4.38") and not says_version("jax", "jax 0.10.2")


def test_only_the_versions_of_one_backend_carry_their_version():
    """jax and torch at two versions each carry the version they ran, unless their name says it;
    numpy, alone, nothing; a requirement beside no other column of its backend is one of a
    backend's versions only when a comparison names it."""
    document = read_document(versioned_document())
    assert versioned_columns(document, list(VERSIONED)) == {
        "jax==0.4.30": "", "jax": "0.10.2", "torch==2.12.0": "", "torch": "2.13.0"}
    document.versions = []
    assert versioned_columns(document, ["numpy", "jax>=0.4", "torch"]) == {}
    document.environment.frameworks["jax>=0.4"] = "jax 0.4.38"
    assert versioned_columns(document, ["jax>=0.4", "jax"]) == {"jax>=0.4": "0.4.38", "jax": "0.10.2"}


def test_the_terminal_matrix_puts_each_version_under_its_backend():
    """``jax`` over ``==0.4.30`` (its name says its version), ``jax`` over ``0.10.2`` (the
    version it ran); the control's column as ever."""
    document = read_document(versioned_document())
    table = matrix(document, list(VERSIONED))
    heads = [[line for line in str(column.header).split("\n") if line] for column in table.columns]
    assert heads == [["case"], ["dtype"], ["numpy", "control"], ["jax", "==0.4.30"], ["jax", "0.10.2"],
                     ["torch", "==2.12.0"], ["torch", "2.13.0"]]


def test_the_terminal_says_how_far_apart_the_versions_are(summary):
    """After the counts and before the findings: the title; jax's pair over its identical runs
    in one line and its differing run with each quantity's ulp and entries, then its ops;
    torch's pair, bit-identical everywhere, in one line; within ``WIDTH``."""
    assert max(cell_len(line) for line in summary) <= WIDTH
    start = summary.index(VERSIONS_TITLE)
    assert start > next(i for i, line in enumerate(summary) if line.startswith("16 pass · "))
    end = next(i for i, line in enumerate(summary) if line.startswith("✗ fail: torch"))
    block = [line for line in summary[start + 1:end] if line]
    heads = [line for line in block if not line.startswith(" ")]
    pairs = [line for line in heads if line.startswith(tuple(PAIRS["jax"] + PAIRS["torch"]))]
    assert pairs == ["jax==0.4.30 against jax (0.10.2)",
                     "torch==2.12.0 against torch (2.13.0): bit-identical on all 2 cases × float64, float32"]
    jax = block[block.index(pairs[0]) + 1:block.index(pairs[1])]
    assert jax[0] == "  bit-identical on seed-2layer × float32; deep-tanh × float64, float32"
    run = " ".join(" ".join(jax[1:]).split())
    assert run.startswith("seed-2layer float64: ")
    assert re.findall(r"(\w[\w ]*?) ([\d.,]+) ulp \((\d+) of (\d+) entries\)", run) == [
        ("dW1", "4.0", "3", "8"), ("trajectory cost", "1,200", "5", "8")]
    assert "the 6 other quantities bit-identical" in run
    assert re.findall(r"(\w+) ([\d.e+-]+) → ([\d.e+-]+) relative", run) == [("tanh", "1.1e-16", "2.2e-16")]
    assert "the 3 other ops bit-identical" in run
    assert indents(jax)[jax[-1].strip()] == 4  # the ops, under their run


def test_the_report_matrix_puts_each_version_under_its_backend(rendered):
    html, markdown = rendered
    assert rows_of(markdown, "Case")[0] == ["Case", "dtype", "numpy (control)", "jax==0.4.30", "jax 0.10.2",
                                            "torch==2.12.0", "torch 2.13.0"]
    summary = html_section(html, "Summary")
    header = next(rows for kind, rows in summary if kind == "table")[0]
    assert header == ["Case", "dtype", "numpy (control)", "jax==0.4.30", "jax 0.10.2", "torch==2.12.0", "torch 2.13.0"]
    assert "<th>jax<br><small>0.10.2</small></th>" in html


def version_section_tables(blocks: list) -> dict[str, list]:
    """Each pair's heading -> its tables, from a between-versions section's blocks."""
    pairs: dict[str, list] = {}
    for kind, content in blocks:
        if kind == "h3":
            pairs[content] = []
        elif kind == "table":
            pairs[list(pairs)[-1]].append(content)
    return pairs


def test_the_report_says_how_far_apart_the_versions_are(rendered):
    """A section after the summary: per pair a heading; jax's identical runs in a sentence, then
    the differing quantities with their ulp, largest absolute difference and entries and a row
    of the bit-identical ones, then the ops with each version's relative error; torch's pair in
    one sentence, no table. The Markdown and the HTML carry the same rows."""
    html, markdown = rendered
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Summary", "## Between versions", "## Failures and errors"]
    section = markdown[markdown.index("## Between versions"):markdown.index("## Failures and errors")]
    assert [line for line in section.splitlines() if line.startswith("### ")] == [
        "### jax==0.4.30 against jax (0.10.2)", "### torch==2.12.0 against torch (2.13.0)"]
    jax = section[:section.index("### torch")]
    torch = section[section.index("### torch"):]
    assert "Bit-identical on seed-2layer × float32; deep-tanh × float64, float32." in paragraphs(jax)
    assert paragraphs(torch)[1:] == ["Bit-identical on all 2 cases × float64, float32.", ""]
    quantities = [row for row in table_rows(jax) if len(row) == 6]
    assert quantities[0] == ["Case", "dtype", "Quantity", "Apart", "Max abs difference", "Entries differing"]
    eps = EPS["float64"]
    assert [row[2:] for row in quantities[1:]] == [
        ["dW1", "4.0 ulp", f"{4 * eps:.2e}", "3 / 8"], ["trajectory cost", "1,200 ulp", f"{1200 * eps:.2e}", "5 / 8"],
        ["cost, db1, dW2, db2, A1, A2", "bit-identical", "0", "0"]]
    assert [row[:2] for row in quantities[1:]] == [["seed-2layer", "float64"], ["", ""], ["", ""]]
    ops = [row for row in table_rows(jax) if len(row) == 5]
    assert ops == [["Case", "dtype", "Op", "jax==0.4.30", "jax (0.10.2)"],
                   ["seed-2layer", "float64", "tanh", "1.1e-16", "2.2e-16"],
                   ["", "", "matmul, sigmoid, bce", "bit-identical", "bit-identical"]]
    tables = version_section_tables(html_section(html, "Between versions"))
    assert list(tables) == ["jax==0.4.30 against jax (0.10.2)", "torch==2.12.0 against torch (2.13.0)"]
    assert [[cell.strip() for cell in row] for row in tables["jax==0.4.30 against jax (0.10.2)"][0]] == [
        [cell.strip() for cell in row] for row in quantities]
    assert tables["torch==2.12.0 against torch (2.13.0)"] == []
    assert '<a href="#case-seed-2layer">seed-2layer</a>' in html[html.index('id="between-versions"'):]


def test_every_pair_bit_identical_is_one_sentence_each():
    """No table, no wall of zeros: one line per pair in the terminal, one heading and sentence in the report."""
    document = read_document(with_versions(make_document(("seed-2layer", "deep-tanh"), VERSIONED), {}, {}))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(document)
    lines = out.getvalue().splitlines()
    start = lines.index(VERSIONS_TITLE)
    pairs = [line for line in lines[start:] if line.startswith(("jax==", "torch=="))]
    assert pairs == [f"{title}: bit-identical on all 2 cases × float64, float32" for title in
                     ("jax==0.4.30 against jax (0.10.2)", "torch==2.12.0 against torch (2.13.0)")]
    assert not any(" ulp (" in line or "ops that differ" in line for line in lines)
    html = render(document).html
    section = html_section(html, "Between versions")
    assert [kind for kind, _ in section] == ["p", "h3", "p", "h3", "p"]
    assert [text for kind, text in section if kind == "p"][1:] == ["Bit-identical on all 2 cases × float64, float32."] * 2


def test_what_was_not_measured_or_not_probed_is_said():
    """A quantity whose entries differ without a distance (not measured), a run without op
    probes (no op probed), ops that all agree while a quantity differs."""
    data = with_versions(make_document(("seed-2layer",), VERSIONED), {}, {})
    for comparison in data["versions"]:
        comparison["ops"] = []
    jax = data["versions"][0]
    jax["quantities"][1].update(ulps=None, max_abs=None, differing=2)
    document = read_document(data)
    comparison = document.versions[0]
    assert gap_figures(comparison.quantities[1]) == "not measured (2 of 8 entries)"
    assert ops_text(comparison) == "no op probed"
    pair = next(pair for pair in version_pairs(document) if pair.backend == "torch")
    assert pair.identical_text(document) == "bit-identical on seed-2layer × float64, float32 (no op probed)"
    data["versions"][0]["ops"] = [{"op": "tanh", "identical": True, "rel_errors": [1e-16, 1e-16]}]
    assert ops_text(read_document(data).versions[0]) == "every probed op bit-identical (1)"
    markdown = render(read_document(data)).markdown
    assert ["seed-2layer", "float64", "dW1", "not measured", "—", "2 / 8"] in table_rows(markdown)


def test_a_document_without_versions_says_nothing_of_them():
    document = read_document(make_document(("seed-2layer",), {"numpy": "pass", "jax": "pass", "torch": "fail"}))
    assert document.versions == []
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_summary(document)
    report = render(document)
    for text in (out.getvalue(), report.markdown, report.html):
        assert "between versions" not in text.lower() and "bit-identical" not in text
    assert rows_of(report.markdown, "Case")[0] == ["Case", "dtype", "numpy (control)", "jax", "torch"]
    heads = [str(column.header) for column in matrix(document, ["numpy", "jax", "torch"]).columns]
    assert heads == ["case", "dtype", "numpy\ncontrol", "jax", "torch"]


def test_merging_two_documents_with_versions_keeps_both_lists(tmp_path):
    """Two runs of other cases, each with jax and torch at two versions: the merged document
    holds every comparison of both, and its report every run of both under one pair each."""
    from gradparity.merge import load_documents, merge

    first = with_versions(make_document(("seed-2layer",), VERSIONED))
    second = with_versions(make_document(("deep-tanh",), VERSIONED), {}, {})
    paths = []
    for name, data in (("first", first), ("second", second)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(data))
    merged = merge(load_documents([str(path) for path in paths]))
    assert [comparison.to_dict() for comparison in merged.versions] == first["versions"] + second["versions"]
    assert validate_document(merged) == []
    pairs = version_pairs(merged)
    assert [(pair.columns, len(pair.comparisons)) for pair in pairs] == [(PAIRS["jax"], 4), (PAIRS["torch"], 4)]
