"""Learners' notebooks: ``load_definitions`` keeps a notebook's definitions and runs nothing
else, names a failing cell with the learner's traceback and refuses what is not a notebook in
one line; a check renders itself for Jupyter (HTML and Markdown) with its verdict, table of
quantities and hint; and the example notebook runs in a real Jupyter kernel."""

from __future__ import annotations

import functools
import html.parser
import re
import subprocess
import sys
import traceback
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import gradparity
from gradparity.notebook import NotebookError, load_definitions
from gradparity.core.results import CheckDocument
from gradparity.reports.check_view import SCOPE, check_html, check_markdown
from gradparity.reports.render import CSS

from backprop_mutants import EXAMPLE, MUTANTS, network

sys.path.insert(0, str(EXAMPLE.parent))
from backprop import backprop as example_backprop  # noqa: E402  (examples/ is not a package)

EXAMPLE_NOTEBOOK = EXAMPLE.parent / "check-your-backprop.ipynb"
GRADPARITY = Path(sys.executable).parent / "gradparity"  # the installed entry point
KERNEL_TIMEOUT_S = 180  # per cell, on a busy machine


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of these cells: a source starting with '# md' is a markdown cell."""
    cells = [new_markdown_cell(source) if source.startswith("# md") else new_code_cell(source) for source in sources]
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_definitions_are_kept_and_nothing_else_runs(tmp_path, capsys):
    """Each skipped statement would leave a trace if it ran: a file written, a line printed, an
    exception raised."""
    marker = tmp_path / "ran.txt"
    path = write_notebook(
        tmp_path / "my_course.ipynb",
        "import numpy as np\n%matplotlib inline\n!pip install nothing\nnp.random.seed(1)",
        "# md some prose",
        "layers_dims = [2, 4, 1]\nlearning_rate: float = 0.0075\nm, eps = 7, 1e-8\nshape = (2, np.pi)",
        f"def doubled(x):\n    %time y = 2\n    return 2 * np.asarray(x)\n\nclass Net:\n    depth = 3\n\n"
        f"print('trained')\nopen({str(marker)!r}, 'w').write('x')",
        f"for i in range(3):\n    open({str(marker)!r}, 'w').write('loop')\nplot(costs)",
        "%%bash\nexit 1",
        "if __name__ == '__main__':\n    raise SystemExit('ran as main')",
        "W = [0]\nW[0] = undefined_name\nparameters = model(layers_dims)",
    )
    module = load_definitions(path)
    assert module.__name__ == "my_course"
    assert module.layers_dims == [2, 4, 1] and module.learning_rate == 0.0075 and (module.m, module.eps) == (7, 1e-8)
    assert module.doubled([1, 2]).tolist() == [2, 4] and module.Net.depth == 3
    assert module.W == [0]
    assert not hasattr(module, "shape") and not hasattr(module, "parameters")  # values that are not literals
    assert not marker.exists()
    assert capsys.readouterr().out == ""


def quoted_after(traceback_text: str, frame: str) -> str:
    """The source line a traceback quotes under its ``frame`` line, stripped."""
    lines = [line.strip() for line in traceback_text.splitlines()]
    return lines[lines.index(frame) + 1]


def test_a_failing_cell_is_named_by_its_number_among_code_cells_and_first_line(tmp_path):
    cell = "\ndef forward(X, b, W, n, eps=np.finfo(float).eps):\n    return X"
    path = write_notebook(tmp_path / "mine.ipynb", "# md Forward", "X = 1", "# md the next code cell is cell 2", cell)
    with pytest.raises(NotebookError) as raised:
        load_definitions(path)
    message = str(raised.value)
    assert message.startswith("mine.ipynb: cell 2 (def forward(X, b, W, n, eps=np.finfo(float).eps):) raised")
    assert message.endswith("NameError: name 'np' is not defined") and "\n" not in message
    learner = raised.value.traceback
    frame = 'File "<mine.ipynb: cell 2>", line 2, in <module>'
    assert quoted_after(learner, frame) == cell.splitlines()[1]  # the learner's line 2, quoted
    assert "notebook.py" not in learner  # gradparity's own frames are left out


def test_a_cell_that_is_not_python_is_named_with_the_line(tmp_path):
    path = write_notebook(tmp_path / "typo.ipynb", "import numpy as np", "def backward(W, A, Y, n)\n    return 0")
    with pytest.raises(NotebookError) as raised:
        load_definitions(path)
    assert str(raised.value).startswith("typo.ipynb: cell 2 (def backward(W, A, Y, n)) has a syntax error")
    assert "(line 1)" in str(raised.value) and "def backward(W, A, Y, n)" in raised.value.traceback


def test_a_traceback_through_a_notebook_function_shows_the_learners_lines(tmp_path):
    """The cells' sources are in linecache, so an error raised later, when the check calls the
    learner's function, quotes the line of the cell."""
    cell = "def cal_cost(An, Y):\n    return -np.sum(Y * np.log(An)) / missing_m"
    path = write_notebook(tmp_path / "nb.ipynb", "import numpy as np", cell)
    module = load_definitions(path)
    try:
        module.cal_cost(0.5, 1.0)
    except NameError:
        shown = traceback.format_exc()
    assert quoted_after(shown, 'File "<nb.ipynb: cell 2>", line 2, in cal_cost') == cell.splitlines()[1].strip()


@pytest.mark.parametrize("content, expected", [
    ("print('a script, not a notebook')", "is not a Jupyter notebook: it is not JSON text"),
    ("[1, 2, 3]", "is not a Jupyter notebook: its JSON has no \"nbformat\" version"),
    ('{"nbformat": 4, "nbformat_minor": 5, "cells": "none"}', "is not a Jupyter notebook: "),
    (None, "does not exist"),
], ids=["not-json", "json-list", "not-a-notebook", "missing"])
def test_what_is_not_a_notebook_is_refused_in_one_line(tmp_path, content, expected):
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NotebookError) as raised:
        load_definitions(path)
    assert str(raised.value).startswith(f"{path} ") and expected in str(raised.value)
    assert "\n" not in str(raised.value) and raised.value.traceback is None


@pytest.mark.parametrize("cells, first_line, traceback_lines", [
    (None, "bad.ipynb is not a Jupyter notebook: it is not JSON text", 0),
    (("import numpy as np", "def forward(X, b, W, n=1 / 0):\n    return X"),
     "bad.ipynb: cell 2 (def forward(X, b, W, n=1 / 0):) raised ZeroDivisionError: division by zero", 1),
], ids=["not-json", "failing-cell"])
def test_the_command_line_refuses_a_bad_notebook_with_exit_2(tmp_path, cells, first_line, traceback_lines):
    """Run as a learner runs it: the installed command, from the notebook's folder."""
    path = tmp_path / "bad.ipynb"
    if cells is None:
        path.write_text("not json")
    else:
        write_notebook(path, *cells)
    process = subprocess.run([str(GRADPARITY), "check", path.name, "--backends", "none"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    lines = process.stderr.splitlines()
    assert process.returncode == 2 and process.stdout == ""
    assert lines[0].startswith(f"gradparity: error: {first_line}")
    if traceback_lines:  # the learner's traceback follows, without gradparity's frames
        assert lines[1] == "Traceback (most recent call last):" and 'File "<bad.ipynb: cell 2>"' in lines[2]
        assert "gradparity" not in "\n".join(lines[1:])
    else:
        assert len(lines) == 1


# -- the check rendered for Jupyter ------------------------------------------------------------


class Tables(html.parser.HTMLParser):
    """Every table of an HTML text as rows of (text, class) cells, and every paragraph's
    (text, class)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []
        self.paragraphs: list[tuple[str, str]] = []
        self.open: tuple[str, str] | None = None
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "p"):
            self.open, self.text = (tag, dict(attrs).get("class") or ""), []
        elif tag == "small" and self.open:
            self.text.append(" / ")

    def handle_data(self, data):
        if self.open:
            self.text.append(data)

    def handle_endtag(self, tag):
        if self.open and tag == self.open[0]:
            cell = ("".join(self.text).strip(), self.open[1])
            if tag == "p":
                self.paragraphs.append(cell)
            else:
                self.tables[-1][-1].append(cell)
            self.open = None


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The GitHub tables of a Markdown text as rows of cell texts (the rule row left out)."""
    tables: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("| "):
            if not previous.startswith("| "):
                tables.append([])
            if not re.fullmatch(r"\|( -+:? \|)+", line):
                tables[-1].append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
        previous = line
    return tables


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    """Check documents of one network each: a correct backprop and one missing its 1/m, the
    failing one with a framework that did not run."""
    mutant = next(mutant for mutant in MUTANTS if mutant.name == "missing 1/m")
    X, Y, params = network((3, 5, 4, 1), "sigmoid", "bce")
    right = gradparity.check(functools.partial(example_backprop, hidden="sigmoid", loss="bce"), X, Y, params)
    wrong = gradparity.check(mutant.backprop(), X, Y, params).to_dict()
    wrong["networks"][0]["corroboration"]["jax"] = {"status": "skipped", "reason": "jax is not installed",
                                                    "quantities": {}}
    return {"pass": right.to_dict(), "fail": wrong}


def test_a_failing_check_renders_its_verdict_quantities_and_hint(documents):
    document = documents["fail"]
    record = document["networks"][0]
    page = Tables(check_html(CheckDocument.from_dict(document)))
    verdict, called = page.paragraphs[:2]
    assert verdict[0].startswith("FAIL: dW3, db3, dW2, db2, dW1, db1 are wrong") and verdict[1] == "verdict st-fail"
    first_wrong = verdict[0].split("; ")[1]
    assert "first wrong" in first_wrong and first_wrong.split()[-1] == record["first_wrong"] == "dW3"
    assert called[0].startswith("Called backprop")
    networks, quantities = page.tables
    assert [text for text, _ in networks[1]] == ["3-5-4-1 sigmoid/bce / read from its cost", "your data", "7", "float64",
                                                "FAIL"]
    header, *rows = quantities
    assert [text for text, _ in header] == ["quantity", "reference", "rel. error", "of tol.", "finite-diff", "jax"]
    assert [row[0][0].split(" / ")[0] for row in rows] == ["cost", "dW3", "db3", "dW2", "db2", "dW1", "db1"]
    by_quantity = {row[0][0].split(" / ")[0]: row for row in rows}
    assert by_quantity["dW3"][0][0] == "dW3 / first wrong"
    assert by_quantity["dW3"][1] == ("✗ wrong", "st-fail") and by_quantity["cost"][1] == ("✓ right", "st-pass")
    assert by_quantity["dW3"][2][0] == "6" and by_quantity["dW3"][3][0].endswith("×")  # 7 times the reference
    assert by_quantity["dW3"][4] == ("✗", "st-fail") and by_quantity["dW3"][5] == ("–", "st-skipped")
    assert (f"Hint: {record['hint']}", "") in page.paragraphs and record["pattern"] == "missing-1/m"
    assert re.match(r"(\w+) is m = (\d+) times", record["hint"]).groups() == ("dW3", str(record["m"]))
    assert "1/m" in record["hint"]  # what is missing
    [jax] = [item for item in re.findall(r"<li>(.*?)</li>", check_html(CheckDocument.from_dict(document))) if item.startswith("jax ")]
    assert "(skipped)" in jax and jax.endswith(f": {record['corroboration']['jax']['reason']}")


def test_a_passing_check_renders_every_quantity_right(documents):
    page = Tables(check_html(CheckDocument.from_dict(documents["pass"])))
    assert page.paragraphs[0] == ("PASS: the cost and every gradient agree with the reference on 3-5-4-1 sigmoid/bce",
                                  "verdict st-pass")
    rows = page.tables[1][1:]
    assert len(rows) == 7 and all(row[1] == ("✓ right", "st-pass") for row in rows)
    assert not any(text.startswith("Hint") for text, _ in page.paragraphs)


def test_the_markdown_holds_the_same_tables(documents):
    for verdict, document in documents.items():
        text = check_markdown(CheckDocument.from_dict(document))
        html_tables = [[[cell.replace(" / ", " · ") for cell, _ in row] for row in table]
                       for table in Tables(check_html(CheckDocument.from_dict(document))).tables]
        assert markdown_tables(text) == html_tables
        assert text.startswith(f"**{verdict.upper()}: ")


def test_text_from_the_learner_is_escaped():
    document = {"schema": "gradparity-check/2", "verdict": "error", "convention": "document",
                "message": "backward raised ValueError: shapes <4,7> & (3,1) not aligned", "traceback": None,
                "called": ["forward", "cal_cost", "backward"], "source": "<my notebook>.ipynb", "dtype": None,
                "wrong": [], "first_wrong": None, "hint": None, "pattern": None,
                "notes": ["<script>alert(1)</script>"], "networks": []}
    page = check_html(CheckDocument.from_dict(document))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert Tables(page).paragraphs[0] == ("ERROR: backward raised ValueError: shapes <4,7> & (3,1) not aligned",
                                          "verdict st-error")
    assert html.escape(document["message"], quote=False) in page and html.escape(document["source"]) in page
    markdown = check_markdown(CheckDocument.from_dict(document))
    assert "\\<script\\>" in markdown and "shapes \\<4,7\\>" in markdown


def test_the_html_carries_the_reports_colours_confined_to_its_own_div(documents):
    page = check_html(CheckDocument.from_dict(documents["fail"]))
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    rules = [(selectors.strip(), body) for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style)]
    assert page.startswith(f'<div class="{SCOPE}">') and len(rules) > 20
    assert all(selector.strip().startswith(f".{SCOPE}") for selectors, _ in rules for selector in selectors.split(","))
    report_fail = re.search(r"\.st-fail\{([^}]*)\}", CSS).group(1)
    assert (f".{SCOPE} .st-fail", report_fail) in rules


# -- in a real Jupyter kernel --------------------------------------------------------------------


def run_in_kernel(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """Execute every cell in a fresh ipykernel of this interpreter, as Restart & Run All does."""
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=KERNEL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def displayed_quantities(output: nbformat.NotebookNode) -> list[str]:
    """The quantities of the table of a check's HTML display."""
    return [row[0][0].split(" / ")[0] for row in Tables(output["data"]["text/html"]).tables[1][1:]]


def test_a_check_displays_itself_in_a_kernel():
    """The example notebook with its last cell checking through today's ``check(backprop, X, Y,
    parameters)``: the kernel shows the result as HTML and Markdown, and it is this
    interpreter's kernel. Starts a kernel and runs the notebook's training: a few seconds."""
    notebook = nbformat.read(EXAMPLE_NOTEBOOK, as_version=4)
    notebook.cells[-1] = new_code_cell(
        "def backprop(X, Y, parameters):\n"
        "    n = len(parameters) // 2\n"
        "    W = [0] + [parameters[f'W{i}'] for i in range(1, n + 1)]\n"
        "    b = [0] + [parameters[f'b{i}'] for i in range(1, n + 1)]\n"
        "    A = forward(X, b, W, n)\n"
        "    db, dW = backward(W, A, Y, n)\n"
        "    grads = {f'{kind}{i}': d[i] for kind, d in (('dW', dW), ('db', db)) for i in range(1, n + 1)}\n"
        "    return cal_cost(A[n], Y), grads\n\n"
        "import sys\nprint(sys.executable)\n"
        "gradparity.check(backprop, X[:, :9], Y[:, :9], {'W1': W[1], 'b1': b[1], 'W2': W[2], 'b2': b[2]})")
    run_in_kernel(notebook, EXAMPLE_NOTEBOOK.parent)
    printed, shown = notebook.cells[-1].outputs
    assert Path(printed["text"].strip()) == Path(sys.executable)
    assert {"text/html", "text/markdown"} <= set(shown["data"])
    assert Tables(shown["data"]["text/html"]).paragraphs[0][0].startswith("PASS")
    assert displayed_quantities(shown) == ["cost", "dW2", "db2", "dW1", "db1"]
    assert markdown_tables(shown["data"]["text/markdown"])[1][0][:2] == ["quantity", "reference"]


def test_the_example_notebook_checks_its_backprop_in_a_kernel():
    """What a learner sees running the example top to bottom: the training learns, the plot is
    drawn, and the last cell displays a PASS with a row per quantity. A few seconds."""
    notebook = run_in_kernel(nbformat.read(EXAMPLE_NOTEBOOK, as_version=4), EXAMPLE_NOTEBOOK.parent)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    first, last = map(float, re.search(r"cost ([\d.]+) -> ([\d.]+)", outputs[0]["text"]).groups())
    assert last < first / 5
    assert "image/png" in outputs[1]["data"]
    shown = notebook.cells[-1].outputs[-1]
    assert Tables(shown["data"]["text/html"]).paragraphs[0][0].startswith("PASS")
    assert displayed_quantities(shown) == ["cost", "dW2", "db2", "dW1", "db1"]


def test_the_example_notebooks_definitions_are_the_documents_functions():
    """``gradparity check`` reads the four functions from the example without training."""
    module = load_definitions(EXAMPLE_NOTEBOOK)
    assert {"sigmoid", "forward", "cal_cost", "backward"} <= set(vars(module))
    assert not hasattr(module, "X") and module.costs == []  # the data and the training loop: not run
    X, Y, params = network((2, 4, 1), "sigmoid", "bce")
    W, b = [0, params["W1"], params["W2"]], [0, params["b1"], params["b2"]]
    A = module.forward(X, b, W, 2)
    db, dW = module.backward(W, A, Y, 2)
    cost, grads = example_backprop(X, Y, params)
    assert len(A) == 3 and db[0] == 0 and dW[0] == 0
    assert module.cal_cost(A[2], Y) == pytest.approx(cost, rel=1e-14)
    for i in (1, 2):
        np.testing.assert_allclose(dW[i], grads[f"dW{i}"], rtol=1e-12)
        np.testing.assert_allclose(db[i], grads[f"db{i}"], rtol=1e-12)
