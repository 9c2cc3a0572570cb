"""The terminal's view of a document: the parity summary of a ``gradparity/2`` result (status
matrix and findings, within 100 columns) and the timing table of a ``gradparity-bench/1``
document, printed with rich."""

from __future__ import annotations

import math
import textwrap

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradparity.reports.digest import (CONTROL, LABEL, MARGIN, MARKER, POINTER, SECOND_ORDER, SPEED, Finding,
                                       backend_order, controls, counts, findings, from_modes, gist, hits, margin,
                                       mode_checks, mode_columns, mode_state, mode_reasons, op_text, share_of,
                                       skips, speed_text, status_label, time_line)
from gradparity.core.results import (BackendResult, BenchDocument, CaseResult, Check, CheckDocument, Corroboration,
                                     Document, NetworkRecord)
from gradparity.reports.formatting import relative, seconds, seconds_range, two_digits
from gradparity.reports.versions import (VERSIONS_TITLE, VersionPair, ops_text, quantities_text,
                                         version_pairs, versioned_columns)
from gradparity.core.results import STATUSES, split_requirement

WIDTH = 100  # the summary fits this many columns with eight backends
TITLE = "gradparity: every backend against the NumPy reference"
STATUS_STYLE = {"pass": "green", "known_deviation": "yellow", "stale": "magenta", "fail": "bold red",
                "error": "bold white on red", "skipped": "dim"}
STDERR_LINES = 5  # the tail of an erroring worker's stderr printed
SECOND_TITLE = "second order: each mode against the R-operator"
MODE_MARGIN = ("as above, over the mode's own checks, each against the reference's R-operator: Jdot = <∇J, V>, "
               "Adot<l> = the tangent of A<l>, HV W<l> and HV b<l> = the blocks of the Hessian-vector product")


def print_summary(document: Document) -> None:
    """The status matrix (case and dtype down, backends across; per cell a status symbol, the
    share of its tolerance the closest quantity used and, below, that quantity) under its title,
    its legend and the counts, one line per backend and reason for the skipped results, then one
    block per finding: the failures, errors, known deviations and stale entries of each
    (backend, cause); where a backend ran at two versions, how far apart they are
    (``print_versions``); last, one line of where the time went (``time_line``)."""
    console = Console(width=WIDTH, highlight=False)
    backends = backend_order(document)
    console.print(Text(TITLE, "table.title"))  # not the table's title: that wraps within the table's width
    console.print(matrix(document, backends))
    console.print(legend(document, backends))
    for line in skip_lines(document, backends):
        console.print(Text(line, STATUS_STYLE["skipped"]))  # Text: a reason's [extra] is not markup
    columns = mode_columns(document, backends)
    if columns:
        print_second_order(console, document, columns)
    pairs = version_pairs(document)
    if pairs:
        print_versions(console, document, pairs)
    for finding in findings(document, backends):
        console.print(finding_block(finding, document))
    spent = time_line(document.run)
    if spent:
        console.print(spent, style="dim")


def matrix(document: Document, backends: list[str]) -> Table:
    """One row per case and dtype (the case named on its first row), one narrow column per
    backend, its name broken at hyphens (``column_header``) and a control marked as one."""
    table = Table(box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False)
    table.add_column("case")
    table.add_column("dtype")
    versions = versioned_columns(document, backends)
    for name in backends:
        header = column_header(name, versions.get(name))
        table.add_column(header + ("\ncontrol" if name in controls(document) else ""), justify="left")
    previous = None
    for result in document.results:
        cells = [cell(result.backends.get(name)) for name in backends]
        table.add_row("" if result.case == previous else result.case, result.dtype, *cells)
        previous = result.case
    return table


def column_header(name: str, version: str | None) -> str:
    """A column's name broken after its hyphens; a version of a backend that ran at several
    (``version`` not None) its requirement on a line of its own and the version it ran below
    where its name does not say it: ``jax`` / ``==0.4.30``, ``jax`` / ``0.10.2``."""
    if version is None:
        return name.replace("-", "-\n")
    backend, specifier = split_requirement(name)
    return "\n".join(line for line in [*_broken(backend), specifier, version] if line)


def cell(backend: BackendResult | None) -> Text:
    """The status symbol and the share of its tolerance the closest quantity used, that
    quantity on the line below, in the status's colour."""
    if backend is None:
        return Text("")
    status = backend.status
    share, quantity = margin(backend)
    text = f"{MARKER[status]} {share}".rstrip()
    if quantity:
        text += f"\n{quantity}"
    return Text(text, STATUS_STYLE[status])


def legend(document: Document, backends: list[str]) -> Text:
    """The symbols, what a cell's figures are, what a control is, where a cell's status comes
    from a second-order mode, and the count of each status."""
    text = Text("  ".join(map(status_label, STATUSES)) + "\n")
    text.append(_wrapped(f"each cell: {MARGIN}") + "\n", "dim")
    names = [name for name in backends if name in controls(document)]
    if names:
        text.append(_wrapped(f"control ({', '.join(names)}): {CONTROL}") + "\n", "dim")
    if any(from_modes(backend) for result in document.results for backend in result.backends.values()):
        text.append(_wrapped(f"{SECOND_ORDER}: {POINTER} (the matrix below)") + "\n", "dim")
    text.append(counts(document))
    return text


def print_second_order(console: Console, document: Document, columns: list[tuple[str, str]]) -> None:
    """The second-order matrix under its title (``mode_matrices``: as many tables as the
    columns need within ``WIDTH``), what its cells are, then one line per backend, mode and
    reason of the skipped modes and of what the others note."""
    console.print(Text("\n" + SECOND_TITLE, "table.title"))
    tables = mode_matrices(document, columns)
    for i, table in enumerate(tables):
        if i:
            console.print()
        console.print(table)
    console.print(Text(_wrapped(f"each cell: {MODE_MARGIN}"), "dim"))
    for (name, mode, reason), runs in mode_reasons(document, columns, ("skipped",)).items():
        console.print(Text(_wrapped(f"{MARKER['skipped']} {name} {mode} skipped on {hits(runs, document)}: {reason}",
                                    hang=2), STATUS_STYLE["skipped"]))
    for (name, mode, reason), runs in mode_reasons(document, columns, ("pass", "known_deviation")).items():
        console.print(Text(_wrapped(f"{name} {mode} on {hits(runs, document)}: {reason}", hang=2), "dim"))


def print_versions(console: Console, document: Document, pairs: list[VersionPair]) -> None:
    """Under its title and what its figures are, per backend at two versions: one line where
    every run is bit-identical; else the pair, the runs on which nothing differs in one line,
    then each other run with the quantities that differ and the ops (``version_lines``)."""
    console.print(Text("\n" + VERSIONS_TITLE, "table.title"))
    console.print(Text(_wrapped(VERSIONS_LEGEND), "dim"))
    for pair in pairs:
        console.print(version_lines(pair, document))


VERSIONS_LEGEND = ("ulp: the largest distance between two entries of the versions in units in the last place; "
                   "an op that differs: its relative error against NumPy float64 in each version, first → second; "
                   "bit-identical on a run: every quantity and probed op equal, entry by entry")


def version_lines(pair: VersionPair, document: Document) -> Text:
    """``jax==0.4.30 against jax (0.10.2): bit-identical on all 2 cases × float64, float32`` in
    one line where nothing differs; else the pair in bold, the identical runs in one line,
    then per run that differs its quantities and, indented below, its ops."""
    if not pair.differing():
        return Text(_wrapped(f"{pair.title()}: {pair.identical_text(document)}", hang=2))
    text = Text(_wrapped(pair.title(), hang=2) + "\n", "bold")
    if pair.identical():
        text.append(_wrapped(pair.identical_text(document), 2, hang=2) + "\n", "green")
    for comparison in pair.differing():
        text.append(_wrapped(f"{comparison.case} {comparison.dtype}: {quantities_text(comparison)}", 2, hang=2) + "\n")
        text.append(_wrapped(ops_text(comparison), 4, hang=2) + "\n", "dim")
    text.rstrip()
    return text


def mode_matrices(document: Document, columns: list[tuple[str, str]]) -> list[Table]:
    """The second-order matrix (rows as in ``matrix``, one column per backend and mode, the
    backend's name over the first of its modes in a table) cut into tables that each fit
    ``WIDTH``: a backend's modes stay together unless they alone are too wide."""
    case = max(map(cell_len, ["case", *(result.case for result in document.results)]))
    dtype = max(map(cell_len, ["dtype", *(result.dtype for result in document.results)]))
    tables: list[Table] = []
    taken: list[tuple[str, str]] = []
    used = case + 1 + dtype  # then one space before each column

    for name in dict.fromkeys(name for name, _ in columns):
        group = [column for column in columns if column[0] == name]
        whole = sum(1 + _column_width(document, column, named=i == 0) for i, column in enumerate(group))
        if taken and used + whole > WIDTH:
            tables.append(mode_matrix(document, taken))
            taken, used = [], case + 1 + dtype
        for column in group:
            width = 1 + _column_width(document, column, named=not taken or taken[-1][0] != name)
            if taken and used + width > WIDTH:
                tables.append(mode_matrix(document, taken))
                taken, used = [], case + 1 + dtype
                width = 1 + _column_width(document, column, named=True)
            taken.append(column)
            used += width
    tables.append(mode_matrix(document, taken))
    return tables


def _column_width(document: Document, column: tuple[str, str], named: bool) -> int:
    """The widest line of a (backend, mode) column: its heading (the backend's name in it
    where ``named``) or a cell."""
    name, mode = column
    lines = [*(_broken(name) if named else []), *_broken(mode)]
    lines += [line for result in document.results for line in mode_cell(result.backends.get(name), mode).plain.split("\n")]
    return max(map(cell_len, lines))


def _broken(name: str) -> list[str]:
    """A name broken after its hyphens: ``fwd-over-rev`` -> ``fwd-``, ``over-``, ``rev``."""
    return name.replace("-", "-\n").split("\n")


def mode_matrix(document: Document, columns: list[tuple[str, str]]) -> Table:
    """One row per case and dtype, one column per (backend, mode): the backend's name broken
    at hyphens over the first of its modes, the mode's under it."""
    table = Table(box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False)
    heads: list[tuple[list[str], list[str]]] = []  # each column's name lines and mode lines
    for i, (name, mode) in enumerate(columns):
        first = i == 0 or columns[i - 1][0] != name
        heads.append((_broken(name) if first else [], _broken(mode)))
    above = max(len(named) for named, _ in heads)
    below = max(len(moded) for _, moded in heads)
    table.add_column("case")  # headings sit at the bottom of the heading row
    table.add_column("dtype")
    for named, moded in heads:  # the backends' names on one line, the modes from the line below
        lines = [""] * (above - len(named)) + named + moded + [""] * (below - len(moded))
        table.add_column("\n".join(lines), justify="left")
    previous = None
    for result in document.results:
        cells = [mode_cell(result.backends.get(name), mode) for name, mode in columns]
        table.add_row("" if result.case == previous else result.case, result.dtype, *cells)
        previous = result.case
    return table


def mode_cell(backend: BackendResult | None, mode: str) -> Text:
    """A mode's status symbol and the share of its tolerance its closest quantity used, that
    quantity below; the backend's own symbol where it errored or was skipped on this run."""
    state = None if backend is None else mode_state(backend, mode)
    if state is None:
        return Text("")
    status, share, quantity = state
    text = f"{MARKER[status]} {share}".rstrip()
    if quantity:
        text += f"\n{quantity}"
    return Text(text, STATUS_STYLE[status])


def skip_lines(document: Document, backends: list[str]) -> list[str]:
    """``– torch skipped on seed-2layer × float64, float32: torch is not installed (…)``: one
    line per backend and reason of the skipped results, as pytest's short summary gives skip
    reasons."""
    return [_wrapped(f"{MARKER['skipped']} {name} skipped on {hits(runs, document)}: {reason}", hang=2)
            for (name, reason), runs in skips(document, backends).items()]


def finding_block(finding: Finding, document: Document) -> Text:
    """One finding: status, backend and the runs it hit; its cause; the second-order modes
    among its checks, each named with its quantities; the worst figures; what the
    registry measured; the responsible ops; the reproducer (or where to find it when it is
    wider than the terminal) or, for an error, the tail of the worker's stderr."""
    head = f"{status_label(finding.status)}: {finding.backend}"
    text = Text("\n" + _wrapped(f"{head} on {finding.hits(document)}", hang=2) + "\n", "bold")
    text.stylize(STATUS_STYLE[finding.status], 1, 1 + len(head))
    lines = finding.causes + finding.modes() + finding.notes()
    if finding.worst_text():
        lines.append(finding.worst_text())
    if finding.first_steps():
        lines.append(finding.first_steps())
    lines += finding.forms(document)
    lines += [f"registered: {measured}" for measured in finding.registered()]
    for line in lines:
        text.append(_wrapped(line, 2) + "\n")
    if finding.ops:
        text.append(_wrapped("responsible ops, each probed alone against NumPy float64:", 2) + "\n")
        for (op, source), probes in finding.ops.items():
            text.append(_wrapped(op_text(op, source, probes), 4, hang=2) + "\n")
    if finding.reproducer:
        text.append(_reproducer(finding))
    if finding.stderr:
        tail = [line for line in finding.stderr.strip().splitlines() if line.strip()][-STDERR_LINES:]
        text.append(_wrapped(f"stderr, last {len(tail)} lines:", 2) + "\n")
        text.append("\n".join(_wrapped(line, 4, hang=2) for line in tail) + "\n", "dim")
    text.rstrip()
    return text


def explanation(backend: str, result: CaseResult) -> str:
    """What ``gradparity explain`` prints for one case, within ``WIDTH`` columns: the verdict,
    the pattern, each second-order mode's status (``mode_lines``), the registered causes, the
    ops probed and those that deviate, then the reproducer as it is (so it can be pasted)."""
    outcome = result.backends[backend]
    who = backend
    if outcome.version:
        who = f"{backend} ({outcome.version})"
    title = f"{who} on {result.case} {result.dtype}: {outcome.status.replace('_', ' ')}"
    diagnosis = outcome.diagnosis
    if not diagnosis:
        lines = mode_lines(outcome)
        if outcome.reason or not lines:
            lines.insert(0, outcome.reason)
        return "\n".join([title, *(_wrapped(line, 2, hang=2) for line in lines)]) + "\n"
    causes = {check.deviation.name: check.deviation.cause for check in outcome.checks
              if check.deviation}
    lines = [f"pattern: {diagnosis.pattern}", *mode_lines(outcome),
             *(f"registered deviation {name}: {cause}" for name, cause in causes.items()),
             f"probed alone: {', '.join(diagnosis.probed) or 'nothing (no primitives table)'}",
             *(f"deviates: {op_text(op.op, op.source, {None: op})}" for op in diagnosis.ops)]
    text = [title, *(_wrapped(line, 2, hang=2) for line in lines)]
    if diagnosis.reproducer:
        text += ["  reproducer (fails with AssertionError while the defect exists):", "",
                 *("    " + line for line in diagnosis.reproducer.splitlines()), ""]
    return "\n".join(text)


def mode_lines(outcome: BackendResult) -> list[str]:
    """``second-order mode fwd-over-rev (hvp): fail: HV W1 5.7e-13 relative, 40× its
    tolerance``: each second-order mode of a result, its status, and each of its checks that is
    not a plain pass (or why it was skipped)."""
    lines = []
    for mode, record in outcome.modes.items():
        line = f"second-order mode {mode} ({', '.join(record.computes)}): {LABEL[record.status]}"
        if record.status == "skipped":
            line += f": {record.reason}"
        failing = [check for check in mode_checks(outcome, mode) if check.verdict != "pass"]
        if failing:
            line += ": " + "; ".join(map(_check_figures, failing))
        lines.append(line)
    return lines


def _check_figures(check: Check) -> str:
    """``HV W1 5.7e-13 relative, 40× its tolerance``; the gist of its message where nothing was measured."""
    if not math.isfinite(check.rel_error):
        return f"{check.quantity} {gist(check.message or '')}".rstrip()
    share, _ = share_of(check)
    return f"{check.quantity} {relative(check.rel_error)}, {share} its tolerance"


def _reproducer(finding: Finding) -> Text:
    """The reproducer, printed as it is when every line fits (so it can be pasted), else where
    to find it."""
    code = finding.reproducer.rstrip().splitlines()
    if max(map(len, code)) <= WIDTH - 4:
        text = Text(_wrapped("reproducer (fails while the defect exists):", 2) + "\n")
        text.append("\n".join(f"    {line}".rstrip() for line in code) + "\n", "cyan")
        return text
    return Text(_wrapped(f"reproducer ({len(code)} lines, wider than this terminal): in the HTML and Markdown "
                         f"reports, and as diagnosis.reproducer of {finding.backend} on {finding.reproducer_run} "
                         "in the JSON document", 2) + "\n")


def _wrapped(line: str, indent: int = 0, hang: int = 0) -> str:
    """``line`` wrapped within ``WIDTH`` columns, indented by ``indent``, its continuation
    lines by ``hang`` more."""
    return textwrap.fill(line, WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + hang),
                         break_on_hyphens=False)


def print_bench_table(document: BenchDocument) -> None:
    """The rich table within ``WIDTH`` columns: network (shape and dtype, on the first row of
    each), backend, mode, median, min–max, compile, the speed against the reference in words
    (``speed_text``: 2× slower, 1.6× faster, ≈ same) and a note number; under it how to read
    the speed, then the notes, each once."""
    environment = document.environment
    table = Table(title=f"gradparity bench: one training step (forward, backward, update), "
                        f"{environment['threads']} threads, device {environment['device']}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column, justify in (("network", "left"), ("backend", "left"), ("mode", "left"), ("median", "right"),
                            ("min–max", "right"), ("compile", "right"), ("vs reference", "right"), ("note", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    notes: dict[str, int] = {}
    previous = None
    for row in document.results:
        network = f"{row.shape} {row.dtype}"
        note = Text(f"[{notes.setdefault(row.note, len(notes) + 1)}]") if row.note else Text("")
        table.add_row("" if network == previous else network, row.backend, row.mode, seconds(row.median_s),
                      seconds_range(row.min_s, row.max_s), seconds(row.compile_s),
                      speed_text(row.ratio_to_reference), note)
        previous = network
    console = Console(width=WIDTH, highlight=False)
    console.print(table)
    lines = [SPEED, *(f"[{number}] {text}" for text, number in notes.items())]
    if document.bandwidth:
        lines += [bandwidth_line(limit, document.bandwidth["read_bytes_per_s"]) for limit in document.bandwidth["signs"]]
    console.print("\n".join(_wrapped(line, hang=4) for line in lines), markup=False)


def bandwidth_line(limit: dict, bandwidth: float) -> str:
    """One line: the signs step against the time of reading X twice at the measured bandwidth."""
    text = (f"signs {limit['dtype']}: reading X ({limit['x_bytes'] / 1e6:.0f} MB) twice at {bandwidth / 1e9:.1f} GB/s "
            f"takes {seconds(limit['floor_s'])}")
    if limit["reference_s"]:
        text += (f"; the reference step takes {seconds(limit['reference_s'])}, "
                 f"{limit['floor_s'] / limit['reference_s']:.0%} of that bandwidth limit")
    if limit["fastest_s"] and limit["fastest_s"] != limit["reference_s"]:
        text += (f"; the fastest, {limit['fastest']}, takes {seconds(limit['fastest_s'])}, "
                 f"{limit['floor_s'] / limit['fastest_s']:.0%}")
    return text


AGREEMENT = {"agrees": ("✓", "green"), "differs": ("✗", "bold red"), "deviates": ("≈", "yellow"),
             "unmeasured": ("·", "dim")}
AGREEMENT_LEGEND = ("beside it, each source against your value: ✓ agrees within the tolerance, ✗ differs, ≈ that "
                    "framework deviates from the reference here (gradparity explain NAME) and your value is as "
                    "close to it as the reference's, · not measured, – did not run")


def print_check(document: NetworkRecord) -> None:
    """One network's record of a ``gradparity-check/2`` document: one row per quantity (cost, then the gradients from
    the output down) with the reference's verdict, the relative error and the share of the
    tolerance used (``shape`` and the learner's shape where the shapes differ), and one narrow
    column per corroborating source; then the verdict, the first wrong gradient, the hints, the
    mismatch of the first wrong quantity and the notes."""
    console = Console(width=WIDTH, highlight=False)
    sources = list(document.corroboration)
    console.print(_wrapped(f"gradparity check: {document.function} on {document.network}, {document.data} "
                           f"(m = {document.m}), {document.dtype}", hang=2), style="bold")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for column in ("quantity", "reference", "rel.\nerror", "of\ntol."):
        table.add_column(column, justify="left" if column in ("quantity", "reference") else "right")
    for name in sources:
        table.add_column(name.replace("-", "-\n"))
    for check in document.checks:
        right = check.verdict == "pass"
        table.add_row(check.quantity, _reference_verdict(right),
                      *error_cells(check, document.shapes.get(check.quantity)),
                      *(agreement_cell(document.corroboration[name], check.quantity) for name in sources))
    console.print(table)
    console.print(Text(_wrapped("reference: your value against the hand-derived NumPy reference, which decides; "
                                "of tol.: the share of the tolerance the backends get that the error uses (> 1 "
                                "is wrong)") + "\n" + _wrapped(AGREEMENT_LEGEND), "dim"))
    console.print(verdict_text(document))


def _reference_verdict(right: bool) -> Text:
    """``✓ right`` in green or ``✗ wrong`` in bold red."""
    if right:
        return Text("✓ right", "green")
    return Text("✗ wrong", "bold red")


def error_cells(check: Check, shapes: dict | None) -> tuple[str, str]:
    """The rel. error and of tol. cells of a check: ``shape`` and the learner's shape where it
    differs from the reference's (nothing was measured), else the two figures."""
    if shapes:
        return "shape", str(tuple(shapes["got"]))
    return two_digits(check.rel_error), two_digits(check.excess) + "×"


def agreement_cell(source: Corroboration, quantity: str) -> Text:
    """One source's symbol for one quantity; – where it did not run, blank where it has none."""
    if source.status in ("error", "skipped"):
        return Text("–", "dim")
    entry = source.quantities.get(quantity)
    return Text(*AGREEMENT[entry.verdict]) if entry else Text("")


def verdict_text(document: NetworkRecord) -> Text:
    """PASS or FAIL in a sentence, the hints (the cost's first, then the first wrong
    gradient's), the first wrong quantity's mismatch, sources that did not run, and the notes."""
    gradients = [check.quantity for check in document.checks if check.quantity != "cost"]
    if document.verdict == "pass" and document.checks[0].total == 0:
        line = f"PASS: all {len(gradients)} gradients agree with the reference ({document.dtype}); the cost is not checked."
    elif document.verdict == "pass":
        line = f"PASS: the cost and all {len(gradients)} gradients agree with the reference ({document.dtype})."
    else:
        wrong = document.wrong
        first = (f"; the first wrong gradient counted from the output is {document.first_wrong}"
                 if document.first_wrong else "; every gradient is right")
        line = f"FAIL: {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong{first}."
    text = Text("\n" + _wrapped(line) + "\n")
    text.stylize("bold green" if document.verdict == "pass" else "bold red", 1, 5)
    if document.verdict == "fail":
        for hint in document.hints.values():
            text.append(_wrapped(f"hint: {hint}.", hang=6) + "\n", "bold")
        message = next(check.message for check in document.checks
                       if check.quantity == (document.first_wrong or "cost"))
        text.append("\n".join(_wrapped(row, 2, hang=2) for row in (message or "").splitlines()) + "\n")
    if document.explanation:
        text.append(_wrapped(f"why finite-diff differs: {document.explanation}.", hang=2) + "\n", "italic")
    for name, source in document.corroboration.items():
        if source.status in ("error", "skipped"):
            text.append(_wrapped(f"{name} did not run ({source.status}): {source.reason}", hang=2) + "\n", "dim")
    for note in document.notes:
        text.append(_wrapped(f"note: {note}", hang=2) + "\n", "yellow")
    text.rstrip()
    return text


READ_FROM = {"cost": "read from its cost", "forward pass and gradients": "read from its output and gradients: its "
             "cost matches no candidate", "default": "the document's network: neither its cost nor its gradients "
             "match a candidate", "options": "as given"}


def print_check_document(document: CheckDocument) -> None:
    """A ``gradparity-check/2`` document: which convention and functions were called, one
    line per network with its verdict, then the first failing network (else the first) in
    full (``print_check``) and the notes on the code as a whole."""
    console = Console(width=WIDTH, highlight=False)
    called = ", ".join(document.called)
    console.print(Text(_wrapped(f"gradparity check: {document.source}, {document.convention} form; called "
                                f"{called}", hang=2), "bold"))
    for record in document.networks:
        line = Text(f"  {record.network} ({READ_FROM[record.read_from]}): ")
        line.append(*network_verdict(record))
        console.print(line)
    for note in document.notes:
        console.print(Text(_wrapped(f"note: {note}", hang=2), "yellow"))
    console.print()
    focus = next((record for record in document.networks if record.verdict != "pass"), document.networks[0])
    print_check(focus)


def network_verdict(record: NetworkRecord) -> tuple[str, str]:
    """``PASS`` or ``FAIL: dW1, db1 wrong`` and its style."""
    if record.verdict == "pass":
        return "PASS", "bold green"
    return f"FAIL: {', '.join(record.wrong)} wrong", "bold red"
