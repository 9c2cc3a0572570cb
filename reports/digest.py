"""What a person reads first, shared by the terminal summary and the reports: one symbol per
status, a compact figure per result, the control columns, every result that does not
simply pass gathered into findings, one per (backend, cause), never one per case, and a bench
timing against the reference's in words."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from gradparity.reports.formatting import factor, relative, seconds, tolerance_share
from gradparity.core.results import STATUSES, BackendResult, CaseResult, Check, DeviatingOp, Diagnosis, Document, RunRecord

MARKER = {"pass": "✓", "known_deviation": "≈", "stale": "○", "fail": "✗", "error": "!", "skipped": "–"}
LABEL = {"pass": "pass", "known_deviation": "known deviation", "stale": "stale", "fail": "fail",
         "error": "error", "skipped": "skipped"}
FINDINGS = ("fail", "error", "known_deviation", "stale")  # the statuses findings are made of, in order
MARGIN = ("how much of its tolerance the quantity closest to failing used, max |a − b| / allowed (0.3× = 30 %; "
          "past 1× a quantity fails unless a registered deviation covers it; 0: bit for bit), then that "
          "quantity (traj = after the short training run)")
SECOND_ORDER = "2nd order"  # a first-order cell whose status comes from a second-order mode
POINTER = "the status comes from a second-order mode, the figure is that mode's share of its tolerance"
VERDICT_RANK = {"pass": 0, "known_deviation": 1, "fail": 2}  # how far from a plain pass a verdict is
CONTROL = ("a control checks the harness, not the maths: the reference itself, run through a "
           "worker process like every backend, must come back bit for bit")
FORMS = {"adam": "Algorithm 1 of Kingma & Ba", "adam-hat": "the efficient form"}  # the two Adam forms


def other_form(result: CaseResult, backend: BackendResult) -> str | None:
    """The optimizer form a backend's trajectory was compared in when it is not the reference's
    own (a framework whose Adam is the other form); None otherwise or in older documents."""
    ran, own = backend.optimizer, result.reference.optimizer
    return ran if ran and own and ran != own else None


def form_note(name: str, form: str, sentence: bool = False) -> str:
    """``compared with the reference's adam-hat: keras-jax's Adam is the efficient form``; as a
    sentence's start (``sentence=True``) ``Compared with ...``."""
    if form in FORMS:
        what = f"{name}'s Adam is {FORMS[form]}"
    else:
        what = f"{name} runs {form}"
    compared = "Compared" if sentence else "compared"
    return f"{compared} with the reference's {form}: {what}"


def status_label(status: str) -> str:
    """The marker and word of a status, readable without colour."""
    return f"{MARKER[status]} {LABEL[status]}"


def counts(document: Document) -> str:
    """``138 pass · 2 known deviation · 0 stale · …``: the summary's counts in status order."""
    return " · ".join(f"{document.summary.count(status)} {LABEL[status]}" for status in STATUSES)


def backend_order(document: Document) -> list[str]:
    """The backends of the results in the order the run asked for them, then any others sorted."""
    present = {name for result in document.results for name in result.backends}
    asked = [name for name in document.options.backends if name in present]
    return asked + sorted(present - set(asked))


def controls(document: Document) -> list[str]:
    """The backends that are controls, not evidence."""
    return document.options.controls()


def closest(checks: list[Check]) -> Check | None:
    """The check that used the largest share of its tolerance (``excess``; a failed check
    without a measurement, NaN or a wrong shape, counts as infinitely far past it); None
    where none measured anything."""
    measured = [check for check in checks if check.kind != "dtype" and check.total]
    return max(measured, key=_share, default=None)


def first_order(backend: BackendResult) -> list[Check]:
    """A result's first-order checks (cost, gradients, activations, trajectory, dtype)."""
    return [check for check in backend.checks if check.mode is None]


def mode_checks(backend: BackendResult, mode: str) -> list[Check]:
    """The checks of one second-order mode of a result."""
    return [check for check in backend.checks if check.mode == mode]


def quantity_label(check: Check) -> str:
    """A check's quantity, with the second-order mode that computed it: ``dW1``, ``HV W1
    (fwd-over-rev)``."""
    if check.mode is None:
        return check.quantity
    return f"{check.quantity} ({check.mode})"


def _share(check: Check) -> float:
    """``excess``, the share of the tolerance used; in documents written before it was
    recorded, rel_error / rtol, the share of the tolerance's relative part."""
    if math.isnan(check.excess):
        return math.inf
    return check.excess


def worst_label(backend: BackendResult) -> str:
    """The quantity of a result's worst check (``BackendResult.worst``) with its second-order
    mode where it has one (``quantity_label``); an em dash for none."""
    worst = backend.worst
    if worst is None:
        return "—"
    check = next((check for check in backend.checks
                  if check.quantity == worst.quantity and check.rel_error == worst.rel_error), None)
    if check is None:
        return worst.quantity
    return quantity_label(check)


def margin(backend: BackendResult) -> tuple[str, str]:
    """The share of its tolerance that a result's closest first-order check used (``<0.01×``,
    ``0.07×``, ``3e6×``; ``0`` when every quantity is bit for bit) and that check's quantity,
    short (``traj b1`` for ``trajectory b1``; empty when bit for bit); two empty strings where
    nothing was compared. A result whose status comes from its second-order modes alone (its
    first-order checks would pass, or only deviate) gives the closest share among the mode
    checks that bring that status, and ``SECOND_ORDER``: the cell must not read as a
    first-order quantity."""
    if backend.status in ("error", "skipped"):
        return "", ""
    if from_modes(backend):
        bringing = [check for check in backend.checks if check.mode is not None and check.verdict == backend.status]
        share, _ = share_of(closest(bringing))
        return share, SECOND_ORDER
    return share_of(closest(first_order(backend)))


def from_modes(backend: BackendResult) -> bool:
    """Whether a result's status is worse than its first-order checks alone make it: a fail or
    a known deviation that only a second-order mode's checks bring."""
    if backend.status not in VERDICT_RANK:
        return False
    first = max((VERDICT_RANK[check.verdict] for check in first_order(backend)), default=0)
    return first < VERDICT_RANK[backend.status]


def mode_margin(backend: BackendResult, mode: str) -> tuple[str, str]:
    """``margin`` of one second-order mode: the share of its tolerance its closest check used
    and that check's quantity."""
    return share_of(closest(mode_checks(backend, mode)))


def mode_state(backend: BackendResult, mode: str) -> tuple[str, str, str] | None:
    """What a second-order mode's cell shows: its status, the share of its tolerance its closest
    check used and that check's quantity; where the mode has no record, the backend's own status
    when it errored or was skipped (nothing else), else None."""
    record = backend.modes.get(mode)
    if record is None:
        return (backend.status, "", "") if backend.status in ("error", "skipped") else None
    return (record.status, *mode_margin(backend, mode))


def share_of(check: Check | None) -> tuple[str, str]:
    """The share of its tolerance ``check`` used and its quantity, short; ``0`` and no quantity
    when bit for bit; two empty strings for no check."""
    if check is None:
        return "", ""
    share = _share(check)
    if share == 0:
        return "0", ""
    return f"{tolerance_share(share)}×", check.quantity.replace("trajectory ", "traj ")


def mode_columns(document: Document, backends: list[str]) -> list[tuple[str, str]]:
    """The (backend, mode) pairs of a second-order document, in backend order, each backend's
    modes in the order its results give them; empty for a first-order document."""
    columns: dict[tuple[str, str], None] = {}
    for name in backends:
        for result in document.results:
            backend = result.backends.get(name)
            for mode in backend.modes if backend else {}:
                columns[name, mode] = None
    return list(columns)


def mode_reasons(document: Document, columns: list[tuple[str, str]],
                 statuses: tuple[str, ...]) -> dict[tuple[str, str, str], list[CaseResult]]:
    """The modes of ``statuses`` that give a reason (a skipped mode's, the ground truth's
    left-out examples), grouped by backend, mode and reason, in column order: each group's runs."""
    grouped: dict[tuple[str, str, str], list[CaseResult]] = {}
    for name, mode in columns:
        for result in document.results:
            backend = result.backends.get(name)
            record = backend.modes.get(mode) if backend else None
            if record and record.reason and record.status in statuses:
                grouped.setdefault((name, mode, record.reason), []).append(result)
    return grouped


def time_line(run: RunRecord) -> str | None:
    """Where a run's time went, in one line (two significant digits a figure): its wall time, then the workers' set-up (start to
    backend loaded: process, imports), compile, compute and probe seconds summed over all
    workers (they run side by side), and the longest worker; None for a document without
    per-backend timing."""
    timing = run.timing
    if not timing:
        return None
    parts = [(label, sum(getattr(entry, key) or 0.0 for entry in timing.values()))
             for label, key in (("set-up", "setup_s"), ("compile", "compile_s"), ("compute", "compute_s"),
                                ("probes", "probes_s"))]
    longest = max(timing, key=lambda name: timing[name].total_s)
    spent = ", ".join(f"{label} {seconds(value, 's', digits=2)}" for label, value in parts)
    return (f"{seconds(run.duration_s, 's', digits=2)}: {spent}; "
            f"longest worker {longest} {seconds(timing[longest].total_s, 's', digits=2)}")


def run_key(result: CaseResult) -> str:
    """``case/dtype``: how a run is named everywhere."""
    return f"{result.case}/{result.dtype}"


@dataclass
class Finding:
    """Results of one backend that do not simply pass, for one cause: the runs it hit, the
    non-passing checks behind it (``(result, check)``), the responsible ops found by the
    diagnosis (by op and source, the worst probe per pair of dtypes in and out), a reproducer
    and the run it came from, and for errors the full message (when it says more than the
    cause: a traceback) and the captured stderr."""

    status: str
    backend: str
    causes: list[str] = field(default_factory=list)
    runs: list[CaseResult] = field(default_factory=list)
    checks: list[tuple[CaseResult, Check]] = field(default_factory=list)
    ops: dict[tuple[str, str], dict[tuple, DeviatingOp]] = field(default_factory=dict)
    reproducer: str | None = None
    reproducer_run: str | None = None
    message: str | None = None
    stderr: str | None = None

    def add(self, result: CaseResult, cause: str, checks: list[Check], diagnosis: Diagnosis | None = None,
            message: str | None = None, stderr: str | None = None) -> None:
        """One more run of this finding: its cause sentence (kept once), its checks, the ops of
        its diagnosis (each kept once), and the first reproducer, message and stderr met."""
        if cause not in self.causes:
            self.causes.append(cause)
        self.runs.append(result)
        self.checks += [(result, check) for check in checks]
        for op in diagnosis.ops if diagnosis else []:
            probes = self.ops.setdefault((op.op, op.source.strip()), {})
            dtypes = (op.input_dtype, op.output_dtype)
            if dtypes not in probes or _severity(op) > _severity(probes[dtypes]):
                probes[dtypes] = op
        if not self.reproducer and diagnosis and diagnosis.reproducer:
            self.reproducer, self.reproducer_run = diagnosis.reproducer, run_key(result)
        self.message = self.message or (message if message and message.strip() != cause else None)
        self.stderr = self.stderr or stderr

    def worst(self) -> tuple[CaseResult, Check] | None:
        """The (result, check) with the largest relative error, None when none has one."""
        measured = [(result, check) for result, check in self.checks if math.isfinite(check.rel_error)]
        return max(measured, key=lambda pair: pair[1].rel_error, default=None)

    def worst_text(self) -> str:
        """``Worst dW2: 6.3e-01 relative (2.8e+15 ulp) on saturated/float64; 2.2e-08 to 6.3e-01
        over the 10 runs``; empty when no check measured anything (a dtype check alone)."""
        worst = self.worst()
        if worst is None:
            return ""
        result, check = worst
        text = f"Worst {quantity_label(check)}: {relative(check.rel_error)}"
        if math.isfinite(check.ulps):
            text += f" ({check.ulps:.2g} ulp)"
        text += f" on {run_key(result)}"
        per_run: dict[str, float] = {}
        for run, c in self.checks:
            if math.isfinite(c.rel_error):
                per_run[run_key(run)] = max(per_run.get(run_key(run), 0.0), c.rel_error)
        low, high = f"{min(per_run.values()):.1e}", f"{max(per_run.values()):.1e}"
        if len(per_run) > 1 and low != high:
            text += f"; {low} to {high} over the {len(per_run)} runs"
        elif len(per_run) > 1:
            text += f"; {high} on each of the {len(per_run)} runs"
        return text

    def modes(self) -> list[str]:
        """``Second-order mode fwd-over-rev fails: HV W1, HV b1`` (``deviates`` in a known
        deviation): one line per second-order mode among its checks, naming its quantities,
        each once."""
        quantities: dict[str, dict[str, None]] = {}
        for _, check in self.checks:
            if check.mode is not None:
                quantities.setdefault(check.mode, {})[check.quantity] = None
        verb = "fails"
        if self.status == "known_deviation":
            verb = "deviates"
        return [f"Second-order mode {mode} {verb}: {', '.join(names)}" for mode, names in quantities.items()]

    def first_steps(self) -> str:
        """``First divergent step: 3 of 40``, or ``... 3 to 12 over 2 of the 4 runs``: the first
        training step whose cost breaks tolerance, over the runs that have one; empty if none."""
        steps = [run.backends[self.backend].first_divergent_step for run in self.runs]
        found = [step for step in steps if step is not None]
        if not found:
            return ""
        low, high = min(found), max(found)
        if len(self.runs) == 1:
            return f"First divergent step: {low} of {self.runs[0].steps}"
        every = len(found) == len(self.runs)
        if every:
            where = f"the {len(found)} runs"
        else:
            where = f"{len(found)} of the {len(self.runs)} runs"
        if low == high and every:
            return f"First divergent step: {low} on each of {where}"
        if low == high:
            return f"First divergent step: {low} on {where}"
        return f"First divergent step: {low} to {high} over {where}"

    def forms(self, document: Document) -> list[str]:
        """Each other optimizer form its trajectories were compared in, as a note, naming the
        runs unless it is all of them: ``Compared with the reference's adam-hat: keras-jax's
        Adam is the efficient form on deep-tanh × float64``."""
        runs: dict[str, list[CaseResult]] = {}
        for run in self.runs:
            if form := other_form(run, run.backends[self.backend]):
                runs.setdefault(form, []).append(run)
        notes = []
        for form, hit in runs.items():
            note = form_note(self.backend, form, sentence=True)
            if len(hit) < len(self.runs):
                note += f" on {hits(hit, document)}"
            notes.append(note)
        return notes

    def registered(self) -> list[str]:
        """What the registry says it measured for the deviations behind it, each once."""
        return list(dict.fromkeys(str(check.deviation.measured) for _, check in self.checks
                                  if check.deviation))

    def notes(self) -> list[str]:
        """What the checks without a measure (a dtype check) say, each distinct message once,
        unless it is a cause already."""
        notes = [f"{check.quantity}: {gist(check.message or '')}" for _, check in self.checks
                 if not math.isfinite(check.rel_error) and check.message and gist(check.message) not in self.causes]
        return list(dict.fromkeys(notes))

    def hits(self, document: Document) -> str:
        """The runs hit, compactly: ``all 10 cases × float64``, ``saturated × float64, float32``."""
        return hits(self.runs, document)


def _severity(op: DeviatingOp) -> float:
    """How badly a probe deviates: its error, infinite when it raised or was not finite."""
    if math.isfinite(op.rel_error):
        return op.rel_error
    return math.inf


def op_text(op: str, source: str, probes: dict[tuple, DeviatingOp]) -> str:
    """``tanh: float64 → float32, 2.0e-07 relative (tolerance 3.6e-15): out = jnp.tanh(tx)``."""
    return f"{op}: {'; '.join(map(op_measure, probes.values()))}: {source.splitlines()[0]}"


def op_measure(op: DeviatingOp) -> str:
    """What the probe of one op measured: dtypes in and out, its error against its tolerance
    (an op that raised has no output dtype; a non-finite error is recorded as null)."""
    if op.output_dtype is None:
        error = "raised"
    elif not math.isfinite(op.rel_error):
        error = "a non-finite error"
    else:
        error = relative(op.rel_error)
    return f"{op.input_dtype} → {op.output_dtype or '?'}, {error} (tolerance {op.tolerance:.1e})"


class Run(Protocol):
    """Something of one case in one dtype: a case's result, a between-versions comparison."""

    case: str
    dtype: str


def hits(runs: Sequence[Run], document: Document) -> str:
    """Cases grouped by the dtypes they were hit in; ``all N cases`` when every case of the
    document is in a group, the names when at most four are, else a count and the names."""
    dtypes: dict[str, list[str]] = {}
    for run in runs:
        dtypes.setdefault(run.case, []).append(run.dtype)
    groups: dict[tuple[str, ...], list[str]] = {}
    for case, seen in dtypes.items():
        groups.setdefault(tuple(seen), []).append(case)
    every = list(dict.fromkeys(result.case for result in document.results))
    parts = []
    for seen, cases in groups.items():
        if len(cases) == len(every) > 1:
            names = f"all {len(cases)} cases"
        elif len(cases) <= 4:
            names = ", ".join(cases)
        else:
            names = f"{len(cases)} cases ({', '.join(cases)})"
        parts.append(f"{names} × {', '.join(seen)}")
    return "; ".join(parts)


def findings(document: Document, backends: list[str]) -> list[Finding]:
    """Every finding of the document: failures, errors, known deviations (from every check that
    carries one, whatever its run's status) and stale entries, in ``FINDINGS`` order, then
    backend order. A failure is grouped by the ops its diagnosis found responsible, or else by
    its cause sentence; the others by their cause sentence."""
    found: dict[tuple, Finding] = {}

    def finding(status: str, name: str, key: object) -> Finding:
        return found.setdefault((FINDINGS.index(status), backends.index(name), status, key),
                                Finding(status, name))

    for result in document.results:
        for name in (n for n in backends if n in result.backends):
            backend = result.backends[name]
            status, cause, diagnosis = backend.status, cause_of(backend), backend.diagnosis
            if status == "fail":
                ops = tuple(sorted({op.op for op in diagnosis.ops})) if diagnosis else ()
                failing = [c for c in backend.checks if c.verdict == "fail"]
                finding(status, name, ops or cause).add(result, cause, failing, diagnosis)
            elif status in ("error", "stale"):
                finding(status, name, cause).add(result, cause, [], message=backend.reason,
                                                 stderr=backend.stderr)
            for deviation, checks in _deviations(backend).items():
                named = {op for check in checks if check.deviation for op in check.deviation.ops}
                finding("known_deviation", name, deviation).add(
                    result, deviation, checks, _narrowed(diagnosis, named) if status == "known_deviation" else None)
    return [found[key] for key in sorted(found, key=lambda key: key[:2])]


def skips(document: Document, backends: list[str]) -> dict[tuple[str, str], list[CaseResult]]:
    """The skipped results, grouped by backend and reason (in backend order): each group's runs."""
    grouped: dict[tuple[str, str], list[CaseResult]] = {}
    for name in backends:
        for result in document.results:
            backend = result.backends.get(name)
            if backend and backend.status == "skipped":
                grouped.setdefault((name, backend.reason), []).append(result)
    return grouped


def _narrowed(diagnosis: Diagnosis | None, ops: set[str]) -> Diagnosis | None:
    """A diagnosis cut down to the ``ops`` a registered deviation names (all when it names
    none), with its reproducer only when the reproducer runs one of the ops kept."""
    if not diagnosis or not ops:
        return diagnosis
    kept = [op for op in diagnosis.ops if op.op in ops]
    reproducer = diagnosis.reproducer
    if reproducer and not any(op.source.strip() in reproducer for op in kept):
        reproducer = None
    return replace(diagnosis, ops=kept, reproducer=reproducer)


def cause_of(backend: BackendResult) -> str:
    """The one sentence that says why a result is not a plain pass: the diagnosis's pattern,
    else the first line of the reason (for an error, the exception a traceback ends in)."""
    diagnosis = backend.diagnosis
    if diagnosis and diagnosis.pattern:
        return diagnosis.pattern
    return gist(backend.reason) or "not stated"


def _deviations(backend: BackendResult) -> dict[str, list[Check]]:
    """The checks that carry a known deviation, by cause; a known-deviation result whose checks
    name none is one deviation of its reason."""
    causes: dict[str, list[Check]] = {}
    for check in backend.checks:
        if check.deviation:
            causes.setdefault(check.deviation.cause, []).append(check)
    if not causes and backend.status == "known_deviation":
        causes[gist(backend.reason) or "not stated"] = [c for c in backend.checks
                                                           if c.verdict == "known_deviation"]
    return causes


def gist(text: str, limit: int = 200) -> str:
    """One line of a reason: the first, or a traceback's last (the exception), cut at ``limit``."""
    lines = text.strip().splitlines() or [""]
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


SAME_WITHIN = 1.03  # two step times within 3% of each other read "≈ same"
SPEED = ("vs reference: each mode's median step against the NumPy reference's (numpy, eager) in the same run, "
         f"as N× slower or N× faster; ≈ same: within {SAME_WITHIN - 1:.0%}")


def speed_text(ratio: float | None) -> str:
    """A bench row's median step against the reference's in words, from ``ratio`` = backend
    median / reference median (the document's ``ratio_to_reference``): above 1 ``2× slower``
    (the factor is the ratio), below 1 ``1.6× faster`` (the factor is 1 / ratio), ``≈ same``
    for a ratio within [1/1.03, 1.03], an em dash when not measured. The factor has two
    significant digits, three below 1.1 (so that 1.04 does not read 1.0), none after the point
    from 10 on: ``1.04× faster``, ``8.6× slower``, ``240× slower``."""
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return "—"
    if 1 / SAME_WITHIN <= ratio <= SAME_WITHIN:
        return "≈ same"
    if ratio > 1:
        return f"{factor(ratio)}× slower"
    return f"{factor(1 / ratio)}× faster"
