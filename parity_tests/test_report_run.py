"""Reports of a small real run: sections, plots, self-containment, the schema, an injected
failing and a crashed backend, determinism, the terminal summary and the command's exit status."""

from __future__ import annotations

import json
import re
from html import escape

import pytest
from rich.cells import cell_len

from gradparity.backends import BackendEntry
from gradparity.cli import main
from gradparity.core.cases import build_case
from gradparity.engine import RunOptions, run
from gradparity.reports import validate_document, write_report
from gradparity.reports.terminal import explanation, print_summary
from rendered import indents
from shipped import assert_follows_its_shipped_schema

CASES = ("seed-2layer", "single-example")


@pytest.fixture(scope="module")
def fake_backend_path(tmp_path_factory):
    """Importable modules for the injected fakes (workers inherit PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("fakes")
    for name in ("WrongGradient", "Crash"):
        (folder / f"fake_backend_{name.lower()}.py").write_text(
            f"from fake_backends import {name} as Adapter\n")
    return folder


@pytest.fixture(scope="module")
def documents(fake_backend_path):
    """The same small run twice: numpy, finite differences, torch, a wrong and a crashing backend."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(fake_backend_path))
        patch.setenv("PYTHONPATH", str(fake_backend_path))
        options = RunOptions(backends=["numpy", "finite-diff", "torch"], decision_boundaries=True,
                             extra_backends={"wrong": BackendEntry("fake_backend_wronggradient"),
                                             "crashed": BackendEntry("fake_backend_crash")})
        return [run([build_case(c, d) for c in CASES for d in ("float64", "float32")], options) for _ in range(2)]


@pytest.fixture(scope="module")
def report(documents, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "latest"
    write_report(documents[0], out)
    return out


def test_document_validates_against_the_schema(documents, report):
    """The run's document and the report's report.json, against the schema file shipped in
    schemas/ (with the jsonschema validator) and gradparity's own checks."""
    assert validate_document(documents[0]) == []
    assert documents[0].schema == "gradparity/2"
    assert_follows_its_shipped_schema(documents[0].to_dict())
    assert_follows_its_shipped_schema(json.loads((report / "report.json").read_text()))


def test_two_runs_differ_only_in_timings_and_timestamps(documents):
    first, second = (document.to_dict() for document in documents)
    assert first.pop("run")["date"] and second.pop("run")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_every_section_and_plot_is_written(report):
    html, markdown = (report / "report.html").read_text(), (report / "report.md").read_text()
    for section in ("How to read this report", "Summary", "Failures and errors", "Cases", "Environment"):
        assert section in html and section in markdown, section
    plots = sorted((report / "plots").iterdir())
    assert plots and all(p.stat().st_size > 1000 for p in plots)
    for plot in plots:
        assert f"plots/{plot.name}" in markdown
    assert any("boundary" in p.name for p in plots), "the trained reference's decision boundary"


def test_html_references_nothing_outside_itself(report):
    html = (report / "report.html").read_text()
    assert "<script" not in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources), sources
    assert "http://" not in html.replace("http://www.w3.org", "") and "@import" not in html


def test_injected_failure_and_crash_appear_with_their_messages(report, documents):
    html = (report / "report.html").read_text()
    failed = next(result.backends["wrong"] for result in documents[0].results if result.dtype == "float64")
    assert [check.quantity for check in failed.checks if check.verdict == "fail"] == ["dW1"]
    assert escape(failed.reason.splitlines()[0]) in html  # the failure's message, as the document has it
    crashed = documents[0].results[0].backends["crashed"].reason
    assert escape(crashed) in html and re.search(r"exit code (\d+)", crashed).group(1) == "3"
    for result in documents[0].results:
        # dW1 is off by 1e-6 relative: a failure in float64, within float32's tolerance
        assert result.backends["wrong"].status == ("fail" if result.dtype == "float64" else "pass")
        assert result.backends["crashed"].status == "error"
        assert result.backends["numpy"].status == "pass" and result.backends["torch"].status == "pass"
    saved = json.loads((report / "report.json").read_text())
    assert saved["summary"] == documents[0].summary.to_dict()


def test_each_result_names_the_framework_version_that_computed_it(documents):
    """The version each worker reported, on every result of its column (the environment
    fingerprint's for that column), a crashed one's too; ``explain`` says it."""
    frameworks = documents[0].environment.frameworks
    assert frameworks["torch"].startswith("torch ") and frameworks["numpy"].startswith("numpy ")
    for result in documents[0].results:
        assert {name: backend.version for name, backend in result.backends.items()} == {
            name: frameworks.get(name) for name in result.backends}
    first = documents[0].results[0]
    assert explanation("torch", first).splitlines()[0].startswith(f"torch ({frameworks['torch']}) on {first.case} ")


def test_terminal_summary_names_each_finding_once(documents, capsys):
    """The run's summary within 100 columns: numpy marked as the control, then one block per
    (backend, cause), each naming the runs it hit once, no line said twice, and last the line
    of where the time went, its figures the document's."""
    print_summary(documents[0])
    lines = capsys.readouterr().out.splitlines()
    assert max(cell_len(line) for line in lines) <= 100
    assert "control" in lines[2].split() and lines[2].split().index("control") == 2  # under numpy
    start = next(i for i, line in enumerate(lines) if re.match(r"\d+ pass · ", line))
    *findings, spent = [line for line in lines[start + 1:] if line.strip()]
    timing = documents[0].run.timing
    longest = max(timing, key=lambda name: timing[name].total_s)
    assert re.fullmatch(rf"\d\S* s: set-up \S+ s, compile \S+ s, compute \S+ s, probes \S+ s; "
                        rf"longest worker {longest} \S+ s", spent), spent
    assert [line for line in findings if not line.startswith(" ")] == [
        "✗ fail: wrong on all 2 cases × float64",
        "! error: crashed on all 2 cases × float64, float32"]
    assert len(findings) == len(set(findings)), findings
    crashed = documents[0].results[0].backends["crashed"].reason
    assert indents(findings)[crashed] == 2 and re.search(r"exit code (\d+)", crashed).group(1) == "3"  # under its head


def test_report_command_writes_the_report_and_exits_like_run(tmp_path, capsys):
    out = tmp_path / "r"
    status = main(["report", "--case", "single-example", "--backends", "numpy,finite-diff", "--out", str(out)])
    assert status == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.md", "report.json", "plots"}
    assert main(["report", "--case", "nope", "--out", str(out)]) == 2
    assert (out / "report.html").exists(), "a failed run leaves the previous report in place"


@pytest.fixture(scope="module")
def training_run(tmp_path_factory) -> tuple[dict, str]:
    """keras-document (Adam's efficient form, batches of 100) and momentum (float32, batches of
    64) on numpy and torch, whose Adam is Algorithm 1: (document, Markdown report)."""
    cases = [build_case("keras-document", "float64"), build_case("momentum", "float32")]
    document = run(cases, RunOptions(backends=["numpy", "torch"]))
    return document, write_report(document, tmp_path_factory.mktemp("training") / "r")["report.md"].read_text()


def test_a_real_training_run_reports_its_set_up_and_both_adam_forms(training_run):
    document, markdown = training_run
    assert validate_document(document) == []
    adam, momentum = document.results
    assert "Training: adam-hat (learning rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-07), batches of 100, " \
           "reshuffled every epoch (seed 0), 10 epochs: 40 steps." in markdown
    assert "Training: momentum (learning rate 0.05, momentum 0.9), batches of 64 (the last of each epoch 16), " \
           "reshuffled every epoch (seed 0), 3 epochs: 21 steps." in markdown
    gap = adam.reference.formulations
    assert gap is not None and momentum.reference.formulations is None
    assert markdown.count("\nadam vs adam-hat: ") == 1
    assert gap.params > gap.rtol, "on keras-document the two forms are told apart"
    assert (f"| float64 | {gap.last_costs['adam']:.10g} | {gap.last_costs['adam-hat']:.10g} | "
            f"{gap.last_cost:.1e} | {gap.params:.1e} | {gap.worst_param} | {gap.rtol:.1e} | "
            f"{gap.params / gap.rtol:.1e}× |") in markdown
    assert adam.reference.optimizer == "adam-hat" and adam.backends["torch"].optimizer == "adam"
    torch_rows = [line for line in markdown.splitlines() if line.startswith("| torch | ")
                  and "compared with the reference's adam: torch's Adam is Algorithm 1 of Kingma & Ba" in line]
    assert len(torch_rows) == 1, "only on the Adam case, where torch runs the other form"
