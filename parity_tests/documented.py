"""The documentation as a reader meets it: the site built as ``make docs`` builds it
(``build_site``), and the documented commands run as a reader runs them: each page's code blocks in order, in a
folder of its own holding a copy of the repository's ``examples/``, through the installed
``gradparity`` entry point and a shell.

A page's ``console`` blocks claim output: each ``$ command`` line (a trailing ``\\`` continues it)
is run, and what it prints (stdout and stderr, as a terminal shows them) must match the lines
below it up to the next ``$``. In the expected lines ``...`` stands for any text within a line,
and a line holding only ``...`` for any number of lines — for timings, dates and paths, as in
doctest's ELLIPSIS. A console block right after the comment ``VARYING_FIGURES`` (``<!-- the
figures below vary by CPU -->``, unseen on the site) shows rounding errors, whose figures vary
with the CPU (its vector kernels decide the order of the sums: an AMD EPYC and an Intel Xeon
print different last digits): there a decimal figure (``0.043``, ``2.3e-16``) or a
multiple (``87×``) matches any number of that form, and a run of blanks any run of blanks (a
matrix's columns widen with their figures); the words, the verdicts and the counts still have to
be as the page says. A code block with ``title="NAME"`` is written to the file NAME before the
commands after it run, so a page can save a script and then run it. Other blocks (``sh``,
``python`` without a title, ...) show code without output and are not run.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)(?P<attributes>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="([^"]+)"')
VARYING_FIGURES = "<!-- the figures below vary by CPU -->"  # on the line before a console block
FIGURE = re.compile(r"\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+|\d+(?=×)| +")  # a figure, or a run of blanks
ANY_FIGURE = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
COMMAND_TIMEOUT_S = 300
WIDTH = 100  # the terminal width the documented output was taken at


@dataclass(frozen=True)
class Command:
    """One ``$`` line of a console block and the output the page says it prints."""

    line: int
    command: str
    expected: list[str]
    figures_vary: bool = False


@dataclass(frozen=True)
class File:
    """A code block that names the file it is saved as."""

    line: int
    name: str
    text: str


def steps(markdown: str) -> list[Command | File]:
    """The page's commands and files, in the order a reader meets them."""
    found: list[Command | File] = []
    for block in FENCE.finditer(markdown):
        first = markdown.count("\n", 0, block.start("body")) + 1
        body = [line.removeprefix(block["indent"]) for line in block["body"].splitlines()]
        title = TITLE.search(block["attributes"])
        if title:
            found.append(File(first, title.group(1), "\n".join(body) + "\n"))
        elif block["lang"] == "console":
            found.extend(commands(body, first, markdown[:block.start()].rstrip().endswith(VARYING_FIGURES)))
    return found


def commands(lines: list[str], first: int, figures_vary: bool = False) -> list[Command]:
    """The ``$`` commands of a console block's ``lines`` (the first at page line ``first``)."""
    found: list[Command] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            raise ValueError(f"line {first + index}: a console block's output must follow a '$ ' command line")
        start = index
        parts = [lines[index][2:]]
        while parts[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            parts[-1] = parts[-1][:-1]
            parts.append(lines[index])
        index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        found.append(Command(first + start, " ".join(part.strip() for part in parts), output, figures_vary))
    return found


def pattern(expected: list[str], figures_vary: bool = False) -> re.Pattern[str]:
    """The regular expression of expected lines: ``...`` any text in a line, alone any lines;
    where the figures vary, each figure any number and each run of blanks any run."""
    literal = figure_pattern if figures_vary else re.escape
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(map(literal, line.rstrip().split("..."))) + r"\n")
    return re.compile("".join(parts))


def figure_pattern(text: str) -> str:
    """``text`` as a regular expression in which each figure (``FIGURE``) matches any number
    and each run of blanks any run of blanks; the rest as written."""
    parts, end = [], 0
    for found in FIGURE.finditer(text):
        parts += [re.escape(text[end:found.start()]), " +" if found[0].startswith(" ") else ANY_FIGURE]
        end = found.end()
    return "".join(parts) + re.escape(text[end:])


def normalised(output: str) -> str:
    """Output as compared: trailing blanks of each line and trailing empty lines dropped."""
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def matches(expected: list[str], output: str, figures_vary: bool = False) -> bool:
    """Whether ``output`` is what the ``expected`` lines say, ellipses included (trailing empty
    lines aside)."""
    lines = list(expected)
    while lines and not lines[-1].strip():
        lines.pop()
    return pattern(lines, figures_vary).fullmatch(normalised(output)) is not None


def environment() -> dict[str, str]:
    """A reader's shell: the installed gradparity and python first on PATH, a terminal of
    ``WIDTH`` columns, nothing of pytest's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = str(WIDTH)
    env.pop("PYTHONPATH", None)
    return env


def workspace(folder: Path) -> Path:
    """A reader's folder: a copy of the repository's ``examples/`` and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "examples", folder / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return folder


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``, as ``make docs`` runs it (a warning
    fails it)."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=config.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def run_page(page: Path, folder: Path) -> list[str]:
    """Run every step of ``page`` in ``folder``; one message per command whose output differs
    from the page's (empty when the page tells the truth)."""
    problems = []
    env = environment()
    for step in steps(page.read_text("utf-8")):
        if isinstance(step, File):
            (folder / step.name).write_text(step.text, "utf-8")
            continue
        done = subprocess.run(["bash", "-c", step.command], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S)
        if not matches(step.expected, done.stdout, step.figures_vary):
            diff = difflib.unified_diff(step.expected, normalised(done.stdout).splitlines(), "documented", "printed",
                                        lineterm="")
            problems.append(f"{page.name}:{step.line}: $ {step.command} (exit {done.returncode}) printed other "
                            "output than the page says:\n" + "\n".join(diff))
    return problems


if __name__ == "__main__":
    # python parity_tests/documented.py PAGE.md ...: run the pages' commands as the test does
    import tempfile
    import time

    for name in sys.argv[1:]:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            found = run_page(Path(name).resolve(), workspace(Path(scratch) / "reader"))
        print("\n\n".join(found) or f"{name}: every documented command prints what the page says",
              f"({time.perf_counter() - start:.1f} s)")
