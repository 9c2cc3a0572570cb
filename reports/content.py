"""What the report says, as format-free blocks (headings, paragraphs, tables, preformatted
text, figures) built from a result document; ``reports.render`` writes them as HTML and
Markdown, so both formats carry the same content in the same order."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from gradparity.reports.digest import (CONTROL, FORMS, LABEL, MARGIN, MARKER, POINTER, SECOND_ORDER, SPEED,
                                       Finding, backend_order, controls, counts, findings, form_note, from_modes,
                                       gist, hits, margin, mode_columns, mode_state, mode_reasons, op_measure,
                                       other_form, quantity_label, run_key, speed_text, status_label, time_line,
                                       worst_label)
from gradparity.reports.formatting import cosine, index, multiple, number, optional, plural, sci, seconds, ulps
from gradparity.reports.versions import (VERSIONS_TEXT, VersionPair, gap_distance, version_pairs,
                                         versioned_columns)
from gradparity.core.results import (STATUSES, BackendResult, BenchDocument, CaseResult, Document, TrainingRecord,
                                     VersionComparison, Worst)

TITLE = "gradparity report"


@dataclass(frozen=True)
class Heading:
    """A section title; ``anchor`` is its unique id in the HTML."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text; a ``status`` colours it (the verdict line)."""

    text: str
    status: str | None = None


@dataclass(frozen=True)
class Bullets:
    """A list of short points."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Legend:
    """The colour key of the statuses."""

    statuses: tuple[str, ...] = STATUSES


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, the status that colours it, a smaller second line, and the
    anchor its text links to (in the HTML)."""

    text: str
    status: str | None = None
    detail: str = ""
    link: str = ""


@dataclass(frozen=True)
class Table:
    """``align`` holds one letter per column, ``l`` or ``r`` (numbers); missing letters mean
    ``l``. A ``matrix`` is the summary: narrow columns of status symbols, every non-passing
    cell marked out."""

    header: tuple[str | Cell, ...]  # a Cell's detail is a second line under its text (a mode under its backend)
    rows: tuple[tuple[Cell, ...], ...]
    align: str = ""
    matrix: bool = False


@dataclass(frozen=True)
class Preformatted:
    """Text shown verbatim in a monospace block (assert_close messages, tracebacks)."""

    text: str


@dataclass(frozen=True)
class Details:
    """Blocks folded away behind a one-line summary (HTML ``<details>``; in Markdown, the
    summary in italics and the blocks after it)."""

    summary: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Figure:
    """A plot: drawn at render time by ``reports.plots.<plot>(**data)``, which returns PNG bytes
    or None when there is nothing to draw (the figure is then left out)."""

    name: str
    caption: str
    plot: str
    data: dict = field(compare=False)


Block = Heading | Paragraph | Bullets | Legend | Table | Preformatted | Details | Figure


def build(document: Document, bench: BenchDocument | None = None) -> list[Block]:
    """Every block of the report, in reading order: title and verdict, summary matrix, the
    second-order matrix (a second-order run), how far a backend's versions are apart (a run
    of one backend at several versions), failures and errors, known deviations (and stale
    entries), how to read it, one folded section per case, run time, performance (when
    ``bench`` is given) and the environment."""
    anchors = _Anchors()
    backends = backend_order(document)
    text, status = verdict(document, backends)
    top = anchors.new("top")  # the anchors linked to from the summary are made before it
    found = [(f, anchors.new(f"{f.status}-{f.backend}")) for f in findings(document, backends)]
    cases = {case: anchors.new(f"case-{case}") for case in _by_case(document.results)}
    strict = ""
    if document.options.strict:
        strict = " · strict: known deviations and stale entries fail"
    blocks: list[Block] = [
        Heading(1, TITLE, top),
        Paragraph(text, status),
        Paragraph(f"Run {document.run.date} · {plural(len(document.results), 'case×dtype run')}"
                  f" · {plural(len(backends), 'backend')} · schema {document.schema}{strict}"),
    ]
    blocks += _summary(document, backends, anchors, found, cases)
    columns = mode_columns(document, backends)
    if columns:
        blocks += _second_order(document, columns, anchors, found, cases)
    pairs = version_pairs(document)
    if pairs:
        blocks += _versions(document, pairs, anchors, cases)
    blocks += _findings(document, found, ("fail", "error"), "Failures and errors", anchors)
    blocks += _findings(document, found, ("known_deviation", "stale"), "Known deviations", anchors)
    blocks += _how_to_read(anchors)
    blocks += _cases(document, backends, anchors, cases)
    blocks += _run_time(document, backends, anchors)
    if bench is not None:
        blocks += _performance(bench, anchors)
    blocks += _environment(document, anchors)
    return blocks


def verdict(document: Document, backends: list[str]) -> tuple[str, str]:
    """The one-line verdict and the status that colours it."""
    runs = document.results
    statuses = {name: Counter(r.backends[name].status for r in runs if name in r.backends)
                for name in backends}
    total = sum(statuses.values(), Counter())
    ran = [name for name in backends if set(statuses[name]) - {"skipped"}]
    bad = [name for name in backends if statuses[name]["fail"] or statuses[name]["error"]]
    tail = _tail(total)
    if bad:
        parts = [f"{name} {_failed(statuses[name])}" for name in bad]
        return f"{len(bad)} of {plural(len(ran), 'backend')} disagree with the reference: " \
               f"{'; '.join(parts)}{tail}", "fail"
    if not ran:
        return f"No backend ran: {plural(total['skipped'], 'backend result')} skipped", "skipped"
    if len(ran) > 1:
        agree = f"All {len(ran)} backends agree"
    else:
        agree = f"The only backend, {ran[0]}, agrees"
    colour = next((s for s in ("stale", "known_deviation") if total[s]), "pass")
    return f"{agree} with the reference on {plural(len(runs), 'case×dtype run')}{tail}", colour


def _tail(total: Counter) -> str:
    """What the verdict adds after its main clause: the known deviations, stale entries and skips."""
    tail = ""
    if total["known_deviation"]:
        tail += f"; {plural(total['known_deviation'], 'known deviation')}"
    if total["stale"]:
        tail += f"; {plural(total['stale'], 'stale deviation entry', 'stale deviation entries')}"
    if total["skipped"]:
        tail += f"; {total['skipped']} skipped"
    return tail


def _failed(counts: Counter) -> str:
    parts = []
    if counts["fail"]:
        parts.append(f"failed {counts['fail']}")
    if counts["error"]:
        parts.append(f"errored on {counts['error']}")
    return f"{' and '.join(parts)} of {plural(sum(counts.values()), 'run')}"


def _how_to_read(anchors: _Anchors) -> list[Block]:
    return [
        Heading(2, "How to read this report", anchors.new("how-to-read")),
        Paragraph("Every backend computes the cost, the gradients, the activations and a short "
                  "training trajectory from the same data and parameters as the hand-derived NumPy "
                  "reference; each quantity is compared with the reference element by element."),
        Bullets((
            "Status — pass: every quantity within tolerance; known deviation: outside tolerance for "
            "a documented cause (listed below); stale: passes, but a registered deviation for it no "
            "longer occurs (remove the entry); fail: some quantity outside tolerance; error: the "
            "backend raised; skipped: not run here (framework missing or dtype unsupported).",
            "Relative error is normwise: max|a − b| / max|b|, where b is the reference.",
            "ulps gives the same difference in units of the dtype's machine epsilon: "
            "max|a − b| / (eps · max|b|). A few ulps is rounding noise.",
            "Tolerance: an element passes when |a − b| ≤ rtol·|ref| + atol; rtol and atol follow from "
            "the dtype's eps and the problem size, and each case states what it applied and why.",
            "First divergent layer: the first layer (from the input) with a quantity outside "
            "tolerance — where to start looking. First divergent step: the first training step "
            "(from 1) whose cost, taken before its update, is outside tolerance.",
            "Training: each case states its optimizer, batches and number of steps. Adam comes in two "
            f"forms, adam ({FORMS['adam']}: PyTorch, optax) and adam-hat ({FORMS['adam-hat']}: Keras, "
            "TF1); a framework is compared with the reference trained in the form it runs, and each "
            "Adam case shows how far the two forms end apart, against the trajectory tolerance.",
            f"Control: {CONTROL}.",
            "Failures and deviations are grouped by backend and cause: each group lists the runs it "
            "hit, its worst figures, the framework operations found responsible (each probed alone "
            "against NumPy in float64) and a standalone reproducer.",
        )),
    ]


def _summary(document: Document, backends: list[str], anchors: _Anchors, found: list[tuple[Finding, str]],
             cases: dict[str, str]) -> list[Block]:
    """The counts, the legend and the matrix: one row per case and dtype, one narrow column per
    backend; a non-passing cell links to its finding, a case to its section."""
    links = _finding_links(found)
    rows, previous = [], None
    for r in document.results:
        case = Cell(r.case, link=cases[r.case]) if r.case != previous else Cell("")
        cells = (_status_cell(r.backends.get(name), links.get((name, run_key(r)), "")) for name in backends)
        rows.append((case, Cell(r.dtype), *cells))
        previous = r.case
    versions = versioned_columns(document, backends)
    header = tuple(_column_heading(name, name in controls(document), versions.get(name, "")) for name in backends)
    said = (f"Each cell: the status, {MARGIN}. Each case's section gives every quantity's relative "
            "error max |a − b| / max |b| (eps is 2.2e-16 in float64, 1.2e-7 in float32).")
    if any(from_modes(backend) for r in document.results for backend in r.backends.values()):
        said += f" {SECOND_ORDER}: {POINTER} (Second order, below)."
    return [Heading(2, "Summary", anchors.new("summary")), Paragraph(counts(document)), Legend(),
            Paragraph(said), Table(("Case", "dtype", *header), tuple(rows), matrix=True)]


def _column_heading(name: str, control: bool, version: str) -> str | Cell:
    """A summary column's heading: its name, ``(control)`` after a control's, and below it the
    version it ran where it is one of a backend's versions and its name does not say it."""
    heading = f"{name} (control)" if control else name
    if version:
        return Cell(heading, detail=version)
    return heading


def _finding_links(found: list[tuple[Finding, str]]) -> dict[tuple[str, str], str]:
    """(backend, run) -> the anchor of its first finding."""
    links: dict[tuple[str, str], str] = {}
    for finding, anchor in found:
        for result in finding.runs:
            links.setdefault((finding.backend, run_key(result)), anchor)
    return links


MODE_COLUMNS = 12  # the most second-order columns in one table: within the page's 1180 px
SECOND_ORDER_TEXT = (
    "Each second-order mode computes, along a direction V of the parameters, either the tangents — J̇ = <∇J, V> "
    "(Jdot) and Ȧ[l] (Adot<l>), by forward mode (jvp, func.jvp, forward-ad, forward-accumulator) — or the "
    "Hessian-vector product H V, block by block (HV W<l>, HV b<l>), by forward-over-reverse, reverse-over-reverse "
    "or double backward. Each is compared with the hand-derived R-operator of the NumPy reference (Pearlmutter "
    "1994, \"Fast exact multiplication by the Hessian\") under rtol = 4 eps · depth · √n (n the longest "
    "reduction), the depth 2l for Ȧ[l] (2L for J̇) and 4L for H V. numpy's r-operator is the control, that "
    "derivation run through a worker; finite-diff's central-differences along V is the ground truth, under its "
    "own tolerance.")


def _second_order(document: Document, columns: list[tuple[str, str]], anchors: _Anchors,
                  found: list[tuple[Finding, str]], cases: dict[str, str]) -> list[Block]:
    """What the modes are and what they are compared with; the matrix (``_mode_matrix``, in
    as many tables as ``_parts`` cuts it into); the skipped modes and what the others note; the
    direction and the reference's J̇ per run."""
    links = _finding_links(found)
    notes = [f"{name} {mode} skipped on {hits(runs, document)}: {reason}"
             for (name, mode, reason), runs in mode_reasons(document, columns, ("skipped",)).items()]
    notes += [f"{name} {mode} on {hits(runs, document)}: {reason}"
              for (name, mode, reason), runs in mode_reasons(document, columns, ("pass", "known_deviation")).items()]
    blocks: list[Block] = [
        Heading(2, "Second order", anchors.new("second-order")),
        Paragraph(SECOND_ORDER_TEXT),
        Paragraph("Each cell: the mode's status, how much of its tolerance its quantity closest to failing used, "
                  "max |a − b| / allowed, then that quantity."),
        *(_mode_matrix(document, part, links, cases) for part in _parts(columns))]
    if notes:
        blocks.append(Bullets(tuple(notes)))
    return blocks + [Paragraph("The direction V of each run and the reference's numbers along it:"), _directions(document)]


def _parts(columns: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The (backend, mode) columns cut into tables of at most ``MODE_COLUMNS`` columns, whole
    backends to a table (a backend with more modes than that alone on its own)."""
    parts: list[list[tuple[str, str]]] = [[]]
    for name in dict.fromkeys(name for name, _ in columns):
        group = [column for column in columns if column[0] == name]
        if parts[-1] and len(parts[-1]) + len(group) > MODE_COLUMNS:
            parts.append([])
        parts[-1] += group
    return parts


def _mode_matrix(document: Document, columns: list[tuple[str, str]], links: dict[tuple[str, str], str],
                 cases: dict[str, str]) -> Table:
    """One row per case and dtype, one narrow column per backend and mode (the mode under the
    backend's name); a mode that does not pass links to its finding, a case to its section."""
    rows, previous = [], None
    for r in document.results:
        case = Cell(r.case, link=cases[r.case]) if r.case != previous else Cell("")
        cells = (_mode_cell(r.backends.get(name), mode, links.get((name, run_key(r)), "")) for name, mode in columns)
        rows.append((case, Cell(r.dtype), *cells))
        previous = r.case
    return Table(("Case", "dtype", *(Cell(name, detail=mode) for name, mode in columns)), tuple(rows), matrix=True)


def _mode_cell(backend: BackendResult | None, mode: str, link: str) -> Cell:
    """A mode's status marker and the share of its tolerance its closest quantity used; below,
    that quantity; the backend's own marker where it errored or was skipped on this run."""
    if backend is None:
        return Cell("not run")
    state = mode_state(backend, mode)
    if state is None:
        return Cell("")
    status, share, quantity = state
    return Cell(f"{MARKER[status]} {share}".rstrip(), status, quantity, "" if status == "pass" else link)


def _directions(document: Document) -> Table:
    """Per run: where V comes from, its fingerprint and largest entry, the reference's J̇ and
    the norm of its H V over every block."""
    rows = []
    for r in document.results:
        record = r.reference.second_order
        if record is None:
            continue
        direction = record.direction
        source = direction.source
        if direction.seed is not None:
            source += f" (seed {direction.seed})"
        norm = math.sqrt(sum(value ** 2 for value in record.hvp_norms.values()))
        rows.append((Cell(r.case), Cell(r.dtype), Cell(source), Cell(direction.fingerprint),
                     Cell(number(direction.max_abs)), Cell(number(record.cost_tangent)), Cell(sci(norm, 2))))
    return Table(("Case", "dtype", "Direction V", "Fingerprint", "max |V|", "Reference J̇ = <∇J, V>",
                  "Reference ‖H V‖"), tuple(rows), align="llllrrr")


def _versions(document: Document, pairs: list[VersionPair], anchors: _Anchors, cases: dict[str, str]) -> list[Block]:
    """What is compared between versions, then per backend at two versions: one sentence where
    nothing differs; else the runs on which nothing differs, and per run that differs its
    quantities (``_version_quantities``) and its ops (``_version_ops``)."""
    blocks: list[Block] = [Heading(2, "Between versions", anchors.new("between-versions")), Paragraph(VERSIONS_TEXT)]
    for pair in pairs:
        blocks.append(Heading(3, pair.title(), anchors.new(f"versions-{pair.backend}")))
        if pair.identical():
            blocks.append(Paragraph(pair.identical_text(document, sentence=True) + "."))
        differing = pair.differing()
        if differing:
            first, second = pair.labels()
            blocks += [Paragraph("Where they differ, quantity by quantity:"), _version_quantities(differing, cases),
                       Paragraph("The ops probed in both, each alone; relative error against NumPy in float64:"),
                       _version_ops(differing, (first, second), cases)]
    return blocks


def _version_quantities(comparisons: list[VersionComparison], cases: dict[str, str]) -> Table:
    """Per run, one row per quantity that differs (ulp apart, largest absolute difference,
    entries differing), then one row naming the quantities that are bit-identical."""
    rows: list[tuple[Cell, ...]] = []
    previous = None
    for comparison in comparisons:
        case = Cell(comparison.case, link=cases.get(comparison.case, "")) if comparison.case != previous else Cell("")
        run = [case, Cell(comparison.dtype)]
        for gap in (gap for gap in comparison.quantities if gap.differing):
            rows.append((*run, Cell(gap.quantity), Cell(gap_distance(gap)), Cell(sci(gap.max_abs, 2)),
                         Cell(f"{gap.differing} / {gap.total}")))
            run = [Cell(""), Cell("")]
        same = [gap.quantity for gap in comparison.quantities if not gap.differing]
        if same:
            rows.append((*run, Cell(", ".join(same)), Cell("bit-identical"), Cell("0"), Cell("0")))
        previous = comparison.case
    return Table(("Case", "dtype", "Quantity", "Apart", "Max abs difference", "Entries differing"), tuple(rows),
                 align="lllrrr")


def _version_ops(comparisons: list[VersionComparison], labels: tuple[str, str], cases: dict[str, str]) -> Table:
    """Per run, one row per op whose outputs differ (its relative error in each version), then
    one row naming the ops that are bit-identical."""
    rows: list[tuple[Cell, ...]] = []
    previous = None
    for comparison in comparisons:
        case = Cell(comparison.case, link=cases.get(comparison.case, "")) if comparison.case != previous else Cell("")
        run = [case, Cell(comparison.dtype)]
        for op in (op for op in comparison.ops if not op.identical):
            rows.append((*run, Cell(op.op), *(Cell(sci(error)) for error in op.rel_errors)))
            run = [Cell(""), Cell("")]
        same = [op.op for op in comparison.ops if op.identical]
        if same:
            rows.append((*run, Cell(", ".join(same)), Cell("bit-identical"), Cell("bit-identical")))
        elif not comparison.ops:
            rows.append((*run, Cell("none probed"), Cell("—"), Cell("—")))
        previous = comparison.case
    return Table(("Case", "dtype", "Op", *labels), tuple(rows), align="lllrr")


def _status_cell(backend: BackendResult | None, link: str) -> Cell:
    """The status marker and the share of its tolerance the closest quantity used; below, that
    quantity (nothing when bit for bit)."""
    if backend is None:
        return Cell("not run")
    share, quantity = margin(backend)
    return Cell(f"{MARKER[backend.status]} {share}".rstrip(), backend.status, quantity, link)


def _findings(document: Document, found: list[tuple[Finding, str]], statuses: tuple[str, ...], title: str,
              anchors: _Anchors) -> list[Block]:
    """A section of the findings of ``statuses``: one block per (backend, cause)."""
    blocks: list[Block] = [Heading(2, title, anchors.new(title))]
    for finding, anchor in found:
        if finding.status in statuses:
            blocks += _finding(document, finding, anchor)
    if len(blocks) == 1:
        blocks.append(Paragraph("None."))
    return blocks


def _finding(document: Document, finding: Finding, anchor: str) -> list[Block]:
    """One (backend, cause): the runs it hit, its cause, worst figures, responsible ops and
    reproducer; the full message and stderr of an error, and every quantity behind it, folded."""
    title = f"{finding.backend} — {LABEL[finding.status]} on {finding.hits(document)}"
    blocks: list[Block] = [Heading(3, title, anchor)]
    blocks += [Paragraph(cause, finding.status) for cause in finding.causes]
    blocks += [Paragraph(line + ".") for line in finding.modes()]
    blocks += [Paragraph(note) for note in finding.notes()]
    if finding.worst_text():
        blocks.append(Paragraph(finding.worst_text() + "."))
    if finding.first_steps():
        blocks.append(Paragraph(finding.first_steps() + "."))
    blocks += [Paragraph(note + ".") for note in finding.forms(document)]
    blocks += [Paragraph(f"Registered: {measured}") for measured in finding.registered()]
    if finding.ops:
        rows = tuple((Cell(op), Cell(source), Cell("; ".join(map(op_measure, probes.values()))))
                     for (op, source), probes in finding.ops.items())
        blocks += [Paragraph("Operations found responsible, each probed alone against NumPy in float64:"),
                   Table(("Op", "Source", "Measured"), rows)]
    if finding.reproducer:
        blocks += [Paragraph("Reproducer: a standalone script whose assert fails while the defect exists."),
                   Preformatted(finding.reproducer.rstrip())]
    if finding.message:
        blocks.append(Details("Full message", (Preformatted(finding.message.strip()),)))
    if finding.stderr:
        blocks.append(Details("Captured stderr of the worker", (Preformatted(finding.stderr.rstrip()),)))
    if finding.checks:
        blocks.append(Details(f"Every quantity behind it ({len(finding.checks)})", (_checks(finding),)))
    return blocks


def _checks(finding: Finding) -> Table:
    """One row per (run, quantity) of a finding, with its measures and tolerance."""
    rows = tuple((Cell(run_key(result)), Cell(quantity_label(c)), Cell(sci(c.rel_error)), Cell(ulps(c.ulps)),
                  Cell(f"{c.mismatched} / {c.total}"), Cell(sci(c.rtol)), Cell(sci(c.atol)),
                  Cell(index(c.worst_index)), Cell(status_label(c.verdict), c.verdict))
                 for result, c in finding.checks)
    return Table(("Run", "Quantity", "Rel error", "ulps", "Mismatched", "rtol", "atol", "Worst at", "Verdict"),
                 rows, align="llrrrrrll")


def _cases(document: Document, backends: list[str], anchors: _Anchors, cases: dict[str, str]) -> list[Block]:
    """One section per case: its description, then its network, plots and per-quantity
    tables folded away."""
    blocks: list[Block] = [Heading(2, "Cases", anchors.new("cases"))]
    for case, results in _by_case(document.results).items():
        anchor = cases[case]
        folded: list[Block] = [_network(results)]
        folded += _case_figures(case, anchor.removeprefix("case-"), results, backends)
        for result in results:
            folded.append(Heading(4, run_key(result), anchors.new(f"case-{run_key(result)}")))
            folded += _case_tables(result, backends)
        blocks += [Heading(3, case, anchor), Paragraph(results[0].description)]
        blocks += _training(results, backends)
        blocks += [Details(f"{_summary_of(results, backends)} — network, plots and every quantity", tuple(folded))]
    return blocks


def _training(results: list[CaseResult], backends: list[str]) -> list[Block]:
    """The training set-up in words, how far Adam's two forms end apart, and the backends
    compared with the reference in another form than the case's; nothing for older documents."""
    blocks: list[Block] = []
    said = _per_dtype(results, lambda r: training_text(r.training, r.m))
    if said:
        blocks.append(Paragraph(f"Training: {said}."))
    gaps = [r for r in results if r.reference.formulations]
    if gaps:
        blocks += [Paragraph("adam vs adam-hat: the reference trained in each form of Adam, and how far the two "
                             "end apart (relative; for the parameters, the worst one). More than 1 rtol apart, "
                             "the choice of form alone decides a comparison."),
                   _formulations(gaps)]
    forms: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for name in backends:
            form = other_form(r, r.backends[name]) if name in r.backends else None
            if form and name not in forms.setdefault((form, r.reference.optimizer), []):
                forms[form, r.reference.optimizer].append(name)
    for (form, own), names in forms.items():
        what = _what_runs(form, names)
        blocks.append(Paragraph(f"Compared with the reference's {form}, not the case's {own}: "
                                f"{', '.join(names)} — {what}."))
    return blocks


def _what_runs(form: str, names: list[str]) -> str:
    """``its Adam is the efficient form``, ``their Adam is ...``, or ``run momentum``."""
    if form not in FORMS:
        return f"run {form}"
    if len(names) == 1:
        return f"its Adam is {FORMS[form]}"
    return f"their Adam is {FORMS[form]}"


def training_text(training: TrainingRecord, m: int) -> str:
    """``adam-hat (learning rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-07), batches of 100,
    reshuffled every epoch (seed 0), 10 epochs: 40 steps``; a full batch: ``..., full batch, 10 steps``."""
    optimizer, size = f"{training.optimizer} ({_settings(training)})", training.batch_size
    steps = plural(training.steps, "step")
    if size is None or size >= m:
        return f"{optimizer}, full batch, {steps}"
    batches = f"batches of {size}"
    if m % size:
        batches += f" (the last of each epoch {m % size})"
    return f"{optimizer}, {batches}, {_order(training)}, {plural(training.epochs, 'epoch')}: {steps}"


def _settings(training: TrainingRecord) -> str:
    """The optimizer's own hyper-parameters: ``learning rate 0.05, momentum 0.9``."""
    return ", ".join(f"{name.replace('_', ' ')} {value:g}" for name, value in training.hyperparameters.items())


def _order(training: TrainingRecord) -> str:
    return f"reshuffled every epoch (seed {training.seed})" if training.shuffle == "seed" else "in data order"


def _formulations(results: list[CaseResult]) -> Table:
    """Per dtype: the last cost in each Adam form, how far apart they and the final parameters
    end (relative; the worst parameter), and that as a multiple of the trajectory tolerance."""
    rows = []
    for r in results:
        f = r.reference.formulations
        if f is None:
            continue
        rows.append((Cell(r.dtype), *(Cell(number(f.last_costs.get(form))) for form in FORMS),
                     Cell(sci(f.last_cost)), Cell(sci(f.params)), Cell(f.worst_param),
                     Cell(sci(f.rtol)), Cell(multiple(f.params, f.rtol))))
    return Table(("dtype", "Last cost, adam", "Last cost, adam-hat", "Costs apart", "Final parameters apart",
                  "Worst parameter", "Trajectory rtol", "Apart, in rtols"), tuple(rows), align="lrrrrlrr")


def _per_dtype(results: list[CaseResult], get: Callable[[CaseResult], str]) -> str:
    """One value for a case's runs, or each with its dtype where they differ."""
    values = [get(r) for r in results]
    if len(set(values)) == 1:
        return values[0]
    return " · ".join(f"{v} ({r.dtype})" for v, r in zip(values, results))


def _summary_of(results: list[CaseResult], backends: list[str]) -> str:
    """``16 pass, 2 fail``: the statuses of a case's runs, counted."""
    tally = Counter(r.backends[name].status for r in results for name in backends if name in r.backends)
    return ", ".join(f"{tally[s]} {LABEL[s]}" for s in STATUSES if tally[s])


def _by_case(results: list[CaseResult]) -> dict[str, list[CaseResult]]:
    cases: dict[str, list[CaseResult]] = {}
    for result in results:
        cases.setdefault(result.case, []).append(result)
    return cases


def _network(results: list[CaseResult]) -> Table:
    """The network and its training, one value per property (per dtype where they differ)."""
    def value(get: Callable[[CaseResult], str]) -> str:
        return _per_dtype(results, get)

    training = [("Optimizer", value(lambda r: f"{r.training.optimizer}: {_settings(r.training)}")),
                ("Batches", value(lambda r: _batches(r)))]
    rows = (("Layers", value(lambda r: " → ".join(map(str, r.layers)))),
            ("Hidden activation", value(lambda r: r.hidden_activation)),
            ("Loss", value(lambda r: r.loss)),
            ("Examples (m)", value(lambda r: str(r.m))),
            *training,
            ("Training steps", value(lambda r: str(r.steps))),
            ("dtypes", ", ".join(r.dtype for r in results)),
            ("Reference cost", value(lambda r: number(r.reference.cost))))
    return Table(("Network", "Value"), tuple((Cell(k), Cell(v)) for k, v in rows))


def _batches(result: CaseResult) -> str:
    """``64 examples, reshuffled every epoch (seed 0); 3 epochs`` or ``full batch``."""
    training, m = result.training, result.m
    if training.batch_size is None or training.batch_size >= m:
        return "full batch"
    return f"{training.batch_size} examples, {_order(training)}; {plural(training.epochs, 'epoch')}"


def _case_tables(result: CaseResult, backends: list[str]) -> list[Block]:
    ran = [(name, result.backends[name]) for name in backends if name in result.backends]
    blocks: list[Block] = [_overview(result, ran)]
    checked = [(name, b) for name, b in ran if b.checks]
    if checked:
        blocks += [_quantities(checked), Paragraph("Tolerances applied:"), _tolerances(checked)]
    return blocks


def _overview(result: CaseResult, ran: list[tuple[str, BackendResult]]) -> Table:
    rows = [(Cell("reference (NumPy)"), Cell(""), Cell(number(result.reference.cost)),
             Cell("—"), Cell("—"), Cell("—"), Cell("—"), Cell("—"), Cell(result.dtype), Cell(""))]
    for name, b in ran:
        worst = b.worst or Worst("—", math.nan, math.nan)  # its quantity: worst_label
        layer, step, form = b.first_divergent_layer, b.first_divergent_step, other_form(result, b)
        note = "; ".join(filter(None, (form and form_note(name, form), gist(b.reason, 100))))
        rows.append((Cell(name), Cell(status_label(b.status), b.status), Cell(number(b.cost)),
                     Cell(worst_label(b)), Cell(sci(worst.rel_error)), Cell(ulps(worst.ulps)),
                     Cell(optional(layer)), Cell(optional(step)),
                     Cell(b.dtype_used or "—"), Cell(note)))
    return Table(("Backend", "Status", "Cost", "Worst", "Rel error", "ulps", "First divergent layer",
                  "First divergent step", "Computed in", "Note"), tuple(rows), align="llrlrrrrll")


def _quantities(checked: list[tuple[str, BackendResult]]) -> Table:
    rows = []
    for name, backend in checked:
        for i, c in enumerate(backend.checks):
            rows.append((Cell(name if i == 0 else ""), Cell(quantity_label(c)), Cell(sci(c.max_abs_error, 2)),
                         Cell(sci(c.rel_error)), Cell(ulps(c.ulps)), Cell(cosine(c.cosine)),
                         Cell(f"{c.mismatched} / {c.total}"),
                         Cell(status_label(c.verdict), c.verdict)))
    return Table(("Backend", "Quantity", "Max abs error", "Rel error", "ulps", "Cosine", "Mismatched",
                  "Verdict"), tuple(rows), align="llrrrrrl")


def _tolerances(checked: list[tuple[str, BackendResult]]) -> Table:
    """Each distinct tolerance (kind, rtol, atol, reason) with the backends it was applied to."""
    users: dict[tuple, list[str]] = {}
    for name, backend in checked:
        for c in backend.checks:
            key = (c.kind, c.rtol, c.atol, c.tolerance_reason)
            if name not in users.setdefault(key, []):
                users[key].append(name)
    rows = tuple((Cell(kind), Cell(sci(rtol)), Cell(sci(atol)), Cell(reason), Cell(", ".join(names)))
                 for (kind, rtol, atol, reason), names in users.items())
    return Table(("Kind", "rtol", "atol", "Why", "Backends"), rows, align="lrrll")


def _case_figures(case: str, stem: str, results: list[CaseResult], backends: list[str]) -> list[Block]:
    """The case's plots, named after its (unique) anchor so file names never collide."""
    data = {"case": case, "results": results, "backends": backends}
    forms = sorted({form for r in results for name in backends if name in r.backends
                    and (form := other_form(r, r.backends[name]))})
    other = ""
    if forms:
        other = (f"; a backend labelled {' or '.join(forms)} ran that optimizer form and is measured against the "
                 "reference trained in that form")
    return [
        Figure(f"cost-{stem}", f"{case}: training cost per step of every backend over the "
               "reference (thick grey line).", "cost_curves", data),
        Figure(f"divergence-{stem}", f"{case}: |backend cost − reference cost| per step, log "
               f"scale; exact agreement is drawn at the floor line{other}.", "cost_divergence", data),
        Figure(f"errors-{stem}", f"{case}: log10 relative error of each gradient per backend; "
               "outlined cells are outside tolerance.", "gradient_errors", data),
        Figure(f"boundary-{stem}", f"{case}: decision boundary of the trained reference network.",
               "decision_boundary", {"case": case, "results": results}),
    ]


def _run_time(document: Document, backends: list[str], anchors: _Anchors) -> list[Block]:
    run = document.run
    wall = run.backend_seconds
    names = [n for n in backends if n in wall] + sorted(set(wall) - set(backends))
    timing = run.timing
    if timing:
        at_a_time = run.workers_at_a_time
        table = Table(("Backend", "Set-up", "Compile", "Compute", "Probes", "Total"), tuple(
            (Cell(n), *(Cell(seconds(getattr(timing[n], key))) for key in ("setup_s", "compile_s", "compute_s", "probes_s",
                                                                      "total_s"))) for n in names if n in timing),
            "lrrrrr")
        said = (f"Run on {run.date}: {time_line(run)}. Each backend runs in its own worker"
                f"{f', {at_a_time} at a time' if at_a_time else ''}. Set-up is the worker's start up to its "
                "framework imported and loaded; compile the time the framework says it spent compiling "
                "(JAX: tracing, lowering and XLA compilation or loading from its cache; TensorFlow: "
                "tf.function graph building; PyTorch and NumPy compile nothing; — where not measured); "
                "compute the rest of its cases' time; probes the op probes of its results.")
    else:
        table = Table(("Backend", "Wall time"), tuple((Cell(n), Cell(seconds(wall[n]))) for n in names), "lr")
        said = (f"Run on {run.date}, {seconds(run.duration_s)} in total. Wall time spent in "
                "each backend over all case×dtype runs:")
    return [
        Heading(2, "Run time", anchors.new("run-time")),
        Paragraph(said),
        table,
        Figure("backend-time", "Wall time per backend over the whole run.", "backend_times",
               {"seconds": wall, "backends": names}),
    ]


def _performance(bench: BenchDocument, anchors: _Anchors) -> list[Block]:
    threads = bench.environment.get("threads")
    rows = tuple((Cell(r.shape), Cell(r.dtype), Cell(r.backend), Cell(r.mode),
                  Cell(seconds(r.median_s)), Cell(seconds(r.min_s)), Cell(seconds(r.max_s)),
                  Cell(seconds(r.compile_s)), Cell(speed_text(r.ratio_to_reference)),
                  Cell(r.note or "")) for r in bench.results)
    return [
        Heading(2, "Performance", anchors.new("performance")),
        Paragraph("Wall time of one full training step (forward, backward, update) on data already on "
                  f"the device{'' if threads is None else f', {threads} threads'}; {SPEED}."),
        Table(("Shape", "dtype", "Backend", "Mode", "Median", "Min", "Max", "Compile", "vs reference",
               "Note"), rows, align="llllrrrrrl"),
        Figure("performance", "Median step time per backend and mode, per shape (log scale).",
               "benchmark", {"bench": bench}),
    ]


def _environment(document: Document, anchors: _Anchors) -> list[Block]:
    env, run = document.environment, document.run
    rows = [("Python", env.python), ("Platform", env.platform), ("CPU", env.cpu or "—"),
            ("Cores", optional(env.cores)),
            ("NumPy", env.numpy), ("BLAS", env.blas or "—")]
    rows += [(name, env.frameworks[name]) for name in sorted(env.frameworks)]
    rows += [("Device", env.device), ("TF32 allowed", "yes" if env.allow_tf32 else "no"),
             ("Git commit", env.git_commit or "—"), ("Date", run.date),
             ("Duration", seconds(run.duration_s))]
    flags = tuple((Cell(fw), Cell(flag), Cell(str(env.flags[fw][flag])))
                  for fw in sorted(env.flags) for flag in sorted(env.flags[fw]))
    blocks: list[Block] = [Heading(2, "Environment", anchors.new("environment")),
                           Table(("Property", "Value"), tuple((Cell(k), Cell(v)) for k, v in rows)),
                           Heading(3, "Framework flags", anchors.new("flags"))]
    return blocks + [Table(("Framework", "Flag", "Value"), flags) if flags else Paragraph("None recorded.")]


class _Anchors:
    """Unique HTML ids made from text."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
        anchor, n = base, 1
        while anchor in self.used:
            n += 1
            anchor = f"{base}-{n}"
        self.used.add(anchor)
        return anchor
