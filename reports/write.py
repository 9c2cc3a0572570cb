"""Writing a report directory atomically: everything is rendered into a temporary sibling of
the output directory and swapped in only when complete, so a failing or interrupted render
never leaves a half-written report over a good one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from gradparity.core.errors import GradparityError
from gradparity.reports.render import render
from gradparity.core.results import BenchDocument, Document
from gradparity.reports.schema import DocumentError, parse_document, validate_bench

REPORT_FILES = ("report.html", "report.md", "report.json")
MAX_PROBLEMS = 10  # listed in a DocumentError's message


class OutputError(GradparityError):
    """An output directory that cannot be replaced without deleting files that are not a report."""


def write_report(document: Document | dict, out_dir: str | Path, bench: BenchDocument | dict | None = None,
                 processes: int = 1) -> dict[str, Path]:
    """Render ``document`` (and ``bench``, for a Performance section) into ``out_dir``:
    ``report.html``, ``report.md``, ``report.json`` and ``plots/*.png``, the plots drawn in up to
    ``processes`` processes (``render.draw_all``). Returns each written file's absolute path
    keyed by its name inside ``out_dir`` (``"report.html"``, ``"plots/cost-x.png"``).

    The documents are validated first (``DocumentError`` lists every problem). An existing
    ``out_dir`` is replaced only after the new report is complete, and only if it holds
    nothing but a previous report (``OutputError`` otherwise); on any exception it is left
    untouched."""
    typed, problems = parse_document(document)
    bench_data = bench.to_dict() if isinstance(bench, BenchDocument) else bench
    problems += [] if bench_data is None else validate_bench(bench_data)
    if typed is None or problems:
        more = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS]
        if more > 0:
            shown.append(f"... and {more} more")
        raise DocumentError(f"{len(problems)} problem(s) in the document: " + "; ".join(shown))
    out_dir = Path(os.path.abspath(out_dir))  # so that "." or "x/.." have a parent and a name
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        fresh = workspace / "report"
        fresh.mkdir()  # made by mkdir, not mkdtemp, so it gets the usual permissions
        typed_bench = None if bench_data is None else BenchDocument.from_dict(bench_data)
        names = _write_files(fresh, typed, typed_bench, processes)
        _swap(fresh, out_dir, workspace / "previous")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return {name: out_dir / name for name in names}


def _check_replaceable(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that is a link, a file, or a directory holding anything other than
    a previous report: replacing it would delete files that are not ours."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise OutputError(f"output directory {str(out_dir)!r} is not a directory")
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in (*REPORT_FILES, "plots"))
        if foreign:
            raise OutputError(f"output directory {str(out_dir)!r} holds files that are not part of a "
                              f"report ({', '.join(foreign)}); choose an empty or report directory")


def _write_files(directory: Path, document: Document, bench: BenchDocument | None, processes: int) -> list[str]:
    """Render and write every file of the report into ``directory``; return their names."""
    rendered = render(document, bench, processes)
    (directory / "plots").mkdir()
    document_json = json.dumps(document.to_dict(), indent=1, sort_keys=False, allow_nan=False) + "\n"
    files = {"report.html": rendered.html.encode("utf-8"), "report.md": rendered.markdown.encode("utf-8"),
             "report.json": document_json.encode("utf-8")}
    files |= {f"plots/{name}.png": png for name, png in rendered.plots.items()}
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return list(files)


def _swap(fresh: Path, out_dir: Path, backup: Path) -> None:
    """Move ``fresh`` to ``out_dir``; a previous ``out_dir`` goes to ``backup`` first (deleted
    with the workspace afterwards) and is put back if the final rename fails."""
    if not out_dir.exists():
        os.rename(fresh, out_dir)
        return
    os.rename(out_dir, backup)
    try:
        os.rename(fresh, out_dir)
    except BaseException:
        os.rename(backup, out_dir)
        raise
