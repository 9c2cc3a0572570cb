"""A learner's Jupyter notebook read for its definitions: ``gradparity check notebook.ipynb``.

From each code cell, in order, only the top-level imports, function and class definitions and
assignments of a literal (``layers_dims = [2, 4, 1]``, ``learning_rate = 0.0075``) are kept and
run; training loops, calls, prints, plots and ``if __name__ == "__main__":`` blocks are left
out, and so are IPython's magics and shell lines, which plain Python cannot run. What is kept
runs in one fresh module, as nbimporter's "only definitions" mode does.

Cells are numbered as a notebook shows them after Restart & Run All: code cells only, from 1,
so cell 4 is the one labelled ``In [4]`` (markdown and raw cells are not counted).
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import sys
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

from gradparity.core.errors import GradparityError

# A line IPython would not hand to Python: a magic (%time ...), a shell line (!pip ...) or an
# assignment of either (files = !ls). Lines are read one by one, without Python's tokens: a
# continuation line that begins with % (a modulo) or a line of a string that begins with ! is
# taken for a magic too.
MAGIC_LINE = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!])")
CELL_MAGIC = "%%"  # a cell that starts with a cell magic (%%time, %%writefile) is left out whole
FIRST_LINE_WIDTH = 60  # the first line of a cell, as a message quotes it
SKIPPED_IMPORTS = "__gradparity_skipped_imports__"  # the modules a definitions module could not import
MESSAGE_WIDTH = 400  # the learner's exception message, as the one line quotes it (the traceback has it whole)


class NotebookError(GradparityError):
    """A notebook that cannot be read, or one of its definition cells failed; ``traceback``
    holds the learner's own traceback where their code raised."""

    def __init__(self, message: str, learner_traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = learner_traceback


@dataclass(frozen=True)
class CodeCell:
    """One code cell: its number among the code cells (from 1) and its source."""

    number: int
    source: str

    def filename(self, notebook: Path) -> str:
        """The name its code is compiled under, which tracebacks show: ``<my.ipynb: cell 4>``."""
        return f"<{notebook.name}: cell {self.number}>"

    def title(self) -> str:
        """``cell 4 (def forward(X, b, W, n):)``: its number and first non-blank line."""
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        if len(first) > FIRST_LINE_WIDTH:
            first = first[:FIRST_LINE_WIDTH - 1] + "…"
        return f"cell {self.number} ({first})"


def load_definitions(path: Path) -> types.ModuleType:
    """The module of the notebook's definitions, named after the notebook (``my.ipynb`` gives
    ``my``). The notebook's folder goes first on ``sys.path`` for its own imports. NotebookError
    when the file is missing or not a notebook, or when a cell's kept code does not compile or
    raises: the message names the cell by number and first line, the error's ``traceback`` is
    the learner's."""
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    cells = code_cells(path)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    for cell in cells:
        run_definitions(cell, path, module)
    return module


def code_cells(path: Path) -> list[CodeCell]:
    """The notebook's code cells, read with nbformat; NotebookError naming the file when it does
    not exist or is not a Jupyter notebook."""
    import nbformat  # read here only: nothing else pays for importing it

    if not path.is_file():
        raise NotebookError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotebookError(f"{path} is not a Jupyter notebook: it is not JSON text ({error})") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError(f"{path} is not a Jupyter notebook: its JSON has no \"nbformat\" version")
    try:
        with warnings.catch_warnings():  # nbformat warns of cells without an id; Jupyter adds them
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
            cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    except Exception as error:  # nbformat raises several kinds for JSON that is not a notebook
        raise NotebookError(f"{path} is not a Jupyter notebook: {' '.join(str(error).split())}") from None
    return [CodeCell(number, cell.source) for number, cell in enumerate(cells, start=1)]


def run_definitions(cell: CodeCell, notebook: Path, module: types.ModuleType) -> None:
    """Compile the cell's definitions under its own file name (registered with ``linecache``, so
    tracebacks quote the learner's lines) and run them in ``module``."""
    filename = cell.filename(notebook)
    linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(keepends=True), filename)
    try:
        tree = definitions(cell, filename)
    except SyntaxError as error:
        raise NotebookError(f"{notebook.name}: {cell.title()} has a syntax error: {error.msg} (line {error.lineno})",
                            "".join(traceback.format_exception_only(error))) from None
    try:
        exec_definitions(tree, filename, module)
    except (Exception, SystemExit) as error:
        message = " ".join(str(error).split())[:MESSAGE_WIDTH] or "no message"
        raise NotebookError(f"{notebook.name}: {cell.title()} raised {type(error).__name__}: {message}",
                            learner_traceback(error)) from None


def exec_definitions(tree: ast.Module, filename: str, module: types.ModuleType) -> None:
    """Run the definitions in ``module`` one statement at a time. An import of a module that
    is not here (a course's test helpers, a plotting library) is left out and its name kept in
    ``SKIPPED_IMPORTS``; any other error is raised."""
    for statement in tree.body:
        code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
        try:
            exec(code, vars(module))
        except ModuleNotFoundError as error:
            if not isinstance(statement, (ast.Import, ast.ImportFrom)) or error.name is None:
                raise
            vars(module).setdefault(SKIPPED_IMPORTS, []).append(error.name)


def definitions(cell: CodeCell, filename: str) -> ast.Module:
    """The cell's top-level definitions as a module, keeping the cell's line numbers; an empty
    one for a cell magic. SyntaxError when the cell, magics left out, is not Python."""
    if cell.source.lstrip().startswith(CELL_MAGIC):
        return ast.Module(body=[], type_ignores=[])
    tree = ast.parse(without_magics(cell.source), filename)
    tree.body = [statement for statement in tree.body if is_definition(statement)]
    return tree


def without_magics(source: str) -> str:
    """``source`` with each magic or shell line replaced by ``pass`` at its indentation, so the
    lines keep their numbers and an indented block stays a block."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        if MAGIC_LINE.match(line):
            indentation = line[:len(line) - len(line.lstrip())]
            lines[number] = indentation + "pass"
    return "\n".join(lines)


def is_definition(statement: ast.stmt) -> bool:
    """An import, a function or class definition, or an assignment of a literal to names."""
    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(statement, ast.Assign):
        return all(assigns_names(target) for target in statement.targets) and is_literal(statement.value)
    if isinstance(statement, ast.AnnAssign):
        return isinstance(statement.target, ast.Name) and statement.value is not None and is_literal(statement.value)
    return False


def assigns_names(target: ast.expr) -> bool:
    """``a`` or ``a, b``: a target that binds names (not ``W[1] = ...`` or ``model.lr = ...``)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(assigns_names(element) for element in target.elts)
    return isinstance(target, ast.Name)


def is_literal(value: ast.expr) -> bool:
    """A value ``ast.literal_eval`` reads: numbers, strings, None, booleans and their lists,
    tuples, dicts and sets."""
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def learner_traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the learner's first frame on: the frames before it,
    gradparity's and importlib's (by their module's name, or frozen), are left out."""
    tb = error.__traceback__
    while tb is not None and (str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in ("gradparity", "importlib")
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen")):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))
