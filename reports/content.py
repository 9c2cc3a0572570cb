"""What the report says, as format-free blocks (headings, paragraphs, tables, preformatted
text, figures) built from a result document; ``reports.render`` writes them as HTML and
Markdown, so both formats carry the same content in the same order."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

from gradparity.reports.schema import STATUSES

TITLE = "gradparity report"
MARKER = {"pass": "✓", "known_deviation": "≈", "fail": "✗", "error": "!", "skipped": "–"}
LABEL = {"pass": "pass", "known_deviation": "known deviation", "fail": "fail", "error": "error",
         "skipped": "skipped"}


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
    """A table cell: its text, the status that colours it and a smaller second line."""

    text: str
    status: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Table:
    """``align`` holds one letter per column, ``l`` or ``r`` (numbers); missing letters mean ``l``."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    align: str = ""


@dataclass(frozen=True)
class Preformatted:
    """Text shown verbatim in a monospace block (assert_close messages, tracebacks)."""

    text: str


@dataclass(frozen=True)
class Figure:
    """A plot: drawn at render time by ``reports.plots.<plot>(**data)``, which returns PNG bytes
    or None when there is nothing to draw (the figure is then left out)."""

    name: str
    caption: str
    plot: str
    data: dict = field(compare=False)


Block = Heading | Paragraph | Bullets | Legend | Table | Preformatted | Figure


def build(document: dict, bench: dict | None = None) -> list[Block]:
    """Every block of the report, in reading order: title and verdict, how to read it, summary
    matrix, known deviations, failures and errors, one section per case, run time,
    performance (when ``bench`` is given) and the environment."""
    anchors = _Anchors()
    backends = backend_order(document)
    text, status = verdict(document, backends)
    blocks: list[Block] = [
        Heading(1, TITLE, anchors.new("top")),
        Paragraph(text, status),
        Paragraph(f"Run {document['run']['date']} · {_plural(len(document['results']), 'case×dtype run')}"
                  f" · {_plural(len(backends), 'backend')} · schema {document['schema']}"),
    ]
    blocks += _how_to_read(anchors)
    blocks += _summary(document, backends, anchors)
    blocks += _deviations(document, backends, anchors)
    blocks += _failures(document, backends, anchors)
    blocks += _cases(document, backends, anchors)
    blocks += _run_time(document, backends, anchors)
    if bench is not None:
        blocks += _performance(bench, anchors)
    blocks += _environment(document, anchors)
    return blocks


def backend_order(document: dict) -> list[str]:
    """The backends of the results in the order the run asked for them, then any others sorted."""
    present = {name for result in document["results"] for name in result["backends"]}
    asked = [name for name in document["options"]["backends"] if name in present]
    return asked + sorted(present - set(asked))


def verdict(document: dict, backends: list[str]) -> tuple[str, str]:
    """The one-line verdict and the status that colours it."""
    runs = document["results"]
    statuses = {name: Counter(r["backends"][name]["status"] for r in runs if name in r["backends"])
                for name in backends}
    total = sum(statuses.values(), Counter())
    ran = [name for name in backends if set(statuses[name]) - {"skipped"}]
    bad = [name for name in backends if statuses[name]["fail"] or statuses[name]["error"]]
    tail = (f"; {_plural(total['known_deviation'], 'known deviation')}" * bool(total["known_deviation"])
            + f"; {total['skipped']} skipped" * bool(total["skipped"]))
    if bad:
        parts = [f"{name} {_failed(statuses[name])}" for name in bad]
        return f"{len(bad)} of {_plural(len(ran), 'backend')} disagree with the reference: " \
               f"{'; '.join(parts)}{tail}", "fail"
    if not ran:
        return f"No backend ran: {_plural(total['skipped'], 'backend result')} skipped", "skipped"
    agree = f"All {len(ran)} backends agree" if len(ran) > 1 else f"The only backend, {ran[0]}, agrees"
    return f"{agree} with the reference on {_plural(len(runs), 'case×dtype run')}{tail}", \
        "known_deviation" if total["known_deviation"] else "pass"


def _failed(counts: Counter) -> str:
    parts = [f"failed {counts['fail']}"] * bool(counts["fail"]) + \
            [f"errored on {counts['error']}"] * bool(counts["error"])
    return f"{' and '.join(parts)} of {_plural(sum(counts.values()), 'run')}"


def _how_to_read(anchors: _Anchors) -> list[Block]:
    return [
        Heading(2, "How to read this report", anchors.new("how-to-read")),
        Paragraph("Every backend computes the cost, the gradients, the activations and a short "
                  "training trajectory from the same data and parameters as the hand-derived NumPy "
                  "reference; each quantity is compared with the reference element by element."),
        Bullets((
            "Status — pass: every quantity within tolerance; known deviation: outside tolerance for "
            "a documented cause (listed below); fail: some quantity outside tolerance; error: the "
            "backend raised; skipped: not run here (framework missing or dtype unsupported).",
            "Relative error is normwise: max|a − b| / max|b|, where b is the reference.",
            "ulps gives the same difference in units of the dtype's machine epsilon: "
            "max|a − b| / (eps · max|b|). A few ulps is rounding noise.",
            "Tolerance: an element passes when |a − b| ≤ rtol·|ref| + atol; rtol and atol follow from "
            "the dtype's eps and the problem size, and each case states what it applied and why.",
            "First divergent layer: the first layer (from the input) with a quantity outside "
            "tolerance — where to start looking.",
        )),
    ]


def _summary(document: dict, backends: list[str], anchors: _Anchors) -> list[Block]:
    counts = document["summary"]
    line = " · ".join(f"{counts[key]} {word}" for key, word in (
        ("passed", "passed"), ("known_deviations", "known deviations"), ("failed", "failed"),
        ("errors", "errors"), ("skipped", "skipped")))
    rows = tuple((Cell(r["case"]), Cell(r["dtype"]),
                  *(_status_cell(r["backends"].get(name)) for name in backends))
                 for r in document["results"])
    return [Heading(2, "Summary", anchors.new("summary")), Paragraph(line), Legend(),
            Table(("Case", "dtype", *backends), rows)]


def _status_cell(backend: dict | None) -> Cell:
    """Status, then the worst quantity's relative error and ulps."""
    if backend is None:
        return Cell("not run")
    worst = backend["worst"]
    if worst is None or backend["status"] in ("error", "skipped"):
        detail = ""
    elif worst["rel_error"] == 0:
        detail = "exact"
    else:
        detail = f"{_sci(worst['rel_error'])} · {_ulps(worst['ulps'])} ulp · {worst['quantity']}"
    return Cell(status_label(backend["status"]), backend["status"], detail)


def status_label(status: str) -> str:
    """The marker and word of a status, readable without colour."""
    return f"{MARKER[status]} {LABEL[status]}"


def _deviations(document: dict, backends: list[str], anchors: _Anchors) -> list[Block]:
    rows = []
    for result, name, backend in _backend_runs(document, backends):
        groups: dict[str, list[dict]] = {}
        for check in backend["checks"]:
            if check["deviation"] is not None:
                groups.setdefault(check["deviation"]["cause"], []).append(check)
        if not groups and backend["status"] == "known_deviation":
            checks = [c for c in backend["checks"] if c["verdict"] == "known_deviation"]
            rows.append(_deviation_row(name, result, checks, backend["reason"] or "not stated", "—"))
        for cause, checks in groups.items():
            worst = max(checks, key=lambda c: c["rel_error"] or 0.0)
            rows.append(_deviation_row(name, result, checks, cause, worst["deviation"]["measured"]))
    blocks: list[Block] = [Heading(2, "Known deviations", anchors.new("known-deviations"))]
    if not rows:
        return blocks + [Paragraph("None.")]
    return blocks + [
        Paragraph("Differences outside tolerance whose cause is understood and documented; they do "
                  "not count as failures."),
        Table(("Backend", "Case", "Quantities", "Cause", "Measured"), tuple(rows)),
    ]


def _deviation_row(name: str, result: dict, checks: list[dict], cause: str, measured: str) -> tuple:
    quantities = ", ".join(c["quantity"] for c in checks) or "—"
    return (Cell(name, "known_deviation"), Cell(_key(result)), Cell(quantities), Cell(cause),
            Cell(measured))


def _failures(document: dict, backends: list[str], anchors: _Anchors) -> list[Block]:
    """Backend by backend: each failed run with its failing quantities and their full messages,
    then each distinct error message once, with the runs it ended."""
    blocks: list[Block] = [Heading(2, "Failures and errors", anchors.new("failures"))]
    for name in backends:
        errors: dict[str, list[str]] = {}
        for result in (r for r in document["results"] if name in r["backends"]):
            backend = result["backends"][name]
            if backend["status"] == "fail":
                blocks += _failure(name, result, backend, anchors)
            elif backend["status"] == "error":
                errors.setdefault(backend["reason"], []).append(_key(result))
        for reason, keys in errors.items():
            title = f"{name} — error on {_plural(len(keys), 'run')}"
            blocks += [Heading(3, title, anchors.new(f"error-{name}")),
                       Paragraph(f"Runs: {', '.join(keys)}. The backend raised:"),
                       Preformatted(reason or "(no message)")]
    if len(blocks) == 1:
        blocks.append(Paragraph("None."))
    return blocks


def _failure(name: str, result: dict, backend: dict, anchors: _Anchors) -> list[Block]:
    """One failed run: its reason, first divergent layer, and each failing quantity's message."""
    layer = backend["first_divergent_layer"]
    title = f"{name} · {_key(result)} — fail"
    blocks: list[Block] = [Heading(3, title, anchors.new(f"fail-{name}-{_key(result)}"))]
    reason = backend["reason"].strip()
    if reason and reason not in {c["message"] for c in backend["checks"]}:  # else it is shown below
        blocks.append(Preformatted(reason) if "\n" in reason else Paragraph(reason))
    if layer is not None:
        blocks.append(Paragraph(f"First divergent layer: {layer}."))
    for check in backend["checks"]:
        if check["verdict"] == "fail":
            blocks.append(Paragraph(
                f"{check['quantity']}: {check['mismatched']} of {check['total']} elements outside "
                f"rtol {_sci(check['rtol'])}, atol {_sci(check['atol'])}; relative error "
                f"{_sci(check['rel_error'])} ({_ulps(check['ulps'])} ulp)."))
            if check["message"]:
                blocks.append(Preformatted(check["message"]))
    return blocks


def _cases(document: dict, backends: list[str], anchors: _Anchors) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Cases", anchors.new("cases"))]
    for case, results in _by_case(document["results"]).items():
        anchor = anchors.new(f"case-{case}")
        blocks += [Heading(3, case, anchor), Paragraph(results[0]["description"]), _network(results)]
        blocks += _case_figures(case, anchor.removeprefix("case-"), results, backends)
        for result in results:
            blocks.append(Heading(4, _key(result), anchors.new(f"case-{_key(result)}")))
            blocks += _case_tables(result, backends)
    return blocks


def _by_case(results: list[dict]) -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = {}
    for result in results:
        cases.setdefault(result["case"], []).append(result)
    return cases


def _network(results: list[dict]) -> Table:
    """The network and its training, one value per property (per dtype where they differ)."""
    def value(get: Callable[[dict], str]) -> str:
        values = [get(r) for r in results]
        if len(set(values)) == 1:
            return values[0]
        return " · ".join(f"{v} ({r['dtype']})" for v, r in zip(values, results))

    rows = (("Layers", value(lambda r: " → ".join(map(str, r["layers"])))),
            ("Hidden activation", value(lambda r: r["hidden_activation"])),
            ("Loss", value(lambda r: r["loss"])),
            ("Examples (m)", value(lambda r: str(r["m"]))),
            ("Learning rate", value(lambda r: f"{r['learning_rate']:g}")),
            ("Training steps", value(lambda r: str(r["steps"]))),
            ("dtypes", ", ".join(r["dtype"] for r in results)),
            ("Reference cost", value(lambda r: _number(r["reference"]["cost"]))))
    return Table(("Network", "Value"), tuple((Cell(k), Cell(v)) for k, v in rows))


def _case_tables(result: dict, backends: list[str]) -> list[Block]:
    ran = [(name, result["backends"][name]) for name in backends if name in result["backends"]]
    blocks: list[Block] = [_overview(result, ran)]
    checked = [(name, b) for name, b in ran if b["checks"]]
    if checked:
        blocks += [_quantities(checked), Paragraph("Tolerances applied:"), _tolerances(checked)]
    return blocks


def _overview(result: dict, ran: list[tuple[str, dict]]) -> Table:
    rows = [(Cell("reference (NumPy)"), Cell(""), Cell(_number(result["reference"]["cost"])),
             Cell("—"), Cell("—"), Cell("—"), Cell("—"), Cell(result["dtype"]), Cell(""))]
    for name, b in ran:
        worst = b["worst"] or {"quantity": "—", "rel_error": None, "ulps": None}
        layer = b["first_divergent_layer"]
        rows.append((Cell(name), Cell(status_label(b["status"]), b["status"]), Cell(_number(b["cost"])),
                     Cell(worst["quantity"]), Cell(_sci(worst["rel_error"])), Cell(_ulps(worst["ulps"])),
                     Cell("—" if layer is None else str(layer)), Cell(b["dtype_used"] or "—"),
                     Cell(_gist(b["reason"]))))
    return Table(("Backend", "Status", "Cost", "Worst", "Rel error", "ulps", "First divergent layer",
                  "Computed in", "Note"), tuple(rows), align="llrlrrrll")


def _quantities(checked: list[tuple[str, dict]]) -> Table:
    rows = []
    for name, backend in checked:
        for i, c in enumerate(backend["checks"]):
            rows.append((Cell(name if i == 0 else ""), Cell(c["quantity"]), Cell(_sci(c["max_abs_error"], 2)),
                         Cell(_sci(c["rel_error"])), Cell(_ulps(c["ulps"])), Cell(_cosine(c["cosine"])),
                         Cell(f"{c['mismatched']} / {c['total']}"),
                         Cell(status_label(c["verdict"]), c["verdict"])))
    return Table(("Backend", "Quantity", "Max abs error", "Rel error", "ulps", "Cosine", "Mismatched",
                  "Verdict"), tuple(rows), align="llrrrrrl")


def _tolerances(checked: list[tuple[str, dict]]) -> Table:
    """Each distinct tolerance (kind, rtol, atol, reason) with the backends it was applied to."""
    users: dict[tuple, list[str]] = {}
    for name, backend in checked:
        for c in backend["checks"]:
            key = (c["kind"], c["rtol"], c["atol"], c["tolerance_reason"])
            if name not in users.setdefault(key, []):
                users[key].append(name)
    rows = tuple((Cell(kind), Cell(_sci(rtol)), Cell(_sci(atol)), Cell(reason), Cell(", ".join(names)))
                 for (kind, rtol, atol, reason), names in users.items())
    return Table(("Kind", "rtol", "atol", "Why", "Backends"), rows, align="lrrll")


def _case_figures(case: str, stem: str, results: list[dict], backends: list[str]) -> list[Block]:
    """The case's plots, named after its (unique) anchor so file names never collide."""
    data = {"case": case, "results": results, "backends": backends}
    return [
        Figure(f"cost-{stem}", f"{case}: training cost per step of every backend over the "
               "reference (thick grey line).", "cost_curves", data),
        Figure(f"divergence-{stem}", f"{case}: |backend cost − reference cost| per step, log "
               "scale; exact agreement is drawn at the floor line.", "cost_divergence", data),
        Figure(f"errors-{stem}", f"{case}: log10 relative error of each gradient per backend; "
               "outlined cells are outside tolerance.", "gradient_errors", data),
        Figure(f"boundary-{stem}", f"{case}: decision boundary of the trained reference network.",
               "decision_boundary", {"case": case, "results": results}),
    ]


def _run_time(document: dict, backends: list[str], anchors: _Anchors) -> list[Block]:
    run = document["run"]
    seconds = run["backend_seconds"]
    names = [n for n in backends if n in seconds] + sorted(set(seconds) - set(backends))
    return [
        Heading(2, "Run time", anchors.new("run-time")),
        Paragraph(f"Run on {run['date']}, {_seconds(run['duration_s'])} in total. Wall time spent in "
                  "each backend over all case×dtype runs:"),
        Table(("Backend", "Wall time"), tuple((Cell(n), Cell(_seconds(seconds[n]))) for n in names), "lr"),
        Figure("backend-time", "Wall time per backend over the whole run.", "backend_times",
               {"seconds": seconds, "backends": names}),
    ]


def _performance(bench: dict, anchors: _Anchors) -> list[Block]:
    threads = bench["environment"].get("threads")
    rows = tuple((Cell(r["shape"]), Cell(r["dtype"]), Cell(r["backend"]), Cell(r["mode"]),
                  Cell(_seconds(r["median_s"])), Cell(_seconds(r["min_s"])), Cell(_seconds(r["max_s"])),
                  Cell(_seconds(r["compile_s"])), Cell(_ratio(r["ratio_to_reference"])),
                  Cell(r["note"] or "")) for r in bench["results"])
    return [
        Heading(2, "Performance", anchors.new("performance")),
        Paragraph("Wall time of one full training step (forward, backward, update) on data already on "
                  f"the device{'' if threads is None else f', {threads} threads'}; "
                  "× reference is the ratio to the NumPy reference step."),
        Table(("Shape", "dtype", "Backend", "Mode", "Median", "Min", "Max", "Compile", "× reference",
               "Note"), rows, align="llllrrrrrl"),
        Figure("performance", "Median step time per backend and mode, per shape (log scale).",
               "benchmark", {"bench": bench}),
    ]


def _environment(document: dict, anchors: _Anchors) -> list[Block]:
    env, run = document["environment"], document["run"]
    rows = [("Python", env["python"]), ("Platform", env["platform"]), ("CPU", env["cpu"] or "—"),
            ("Cores", "—" if env["cores"] is None else str(env["cores"])),
            ("NumPy", env["numpy"]), ("BLAS", env["blas"] or "—")]
    rows += [(name, env["frameworks"][name]) for name in sorted(env["frameworks"])]
    rows += [("Device", env["device"]), ("TF32 allowed", "yes" if env["allow_tf32"] else "no"),
             ("Git commit", env["git_commit"] or "—"), ("Date", run["date"]),
             ("Duration", _seconds(run["duration_s"]))]
    flags = tuple((Cell(fw), Cell(flag), Cell(str(env["flags"][fw][flag])))
                  for fw in sorted(env["flags"]) for flag in sorted(env["flags"][fw]))
    blocks: list[Block] = [Heading(2, "Environment", anchors.new("environment")),
                           Table(("Property", "Value"), tuple((Cell(k), Cell(v)) for k, v in rows)),
                           Heading(3, "Framework flags", anchors.new("flags"))]
    return blocks + [Table(("Framework", "Flag", "Value"), flags) if flags else Paragraph("None recorded.")]


def _backend_runs(document: dict, backends: list[str]) -> Iterator[tuple[dict, str, dict]]:
    """(result, backend name, backend result) in report order."""
    for result in document["results"]:
        for name in backends:
            if name in result["backends"]:
                yield result, name, result["backends"][name]


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


def _key(result: dict) -> str:
    return f"{result['case']}/{result['dtype']}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _gist(text: str, limit: int = 100) -> str:
    """One line of a reason for a table cell: the first, or a traceback's last (the exception)."""
    lines = text.strip().splitlines() or [""]
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _number(x: float | None) -> str:
    return "—" if x is None else f"{x:.10g}"


def _sci(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else "0" if x == 0 else f"{x:.{digits}e}"


def _ulps(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if x < 10 else f"{x:,.0f}" if x < 1e5 else f"{x:.1e}"


def _cosine(c: float | None) -> str:
    """Cosine similarity; near 1 written as 1 − (1 − c), the informative part."""
    if c is None:
        return "—"
    return "1" if c == 1 else f"1 − {1 - c:.1e}" if 0.999 < c < 1 else f"{c:.4f}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _seconds(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
