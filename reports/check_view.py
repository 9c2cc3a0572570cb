"""A check of a learner's backprop (a ``gradparity-check/2`` document) as a Jupyter notebook
shows it: the verdict, the functions called, one line per network, the table of quantities of
the network that failed first (else the first), the hints and the notes. Both forms, HTML for
``_repr_html_`` and GitHub-flavoured Markdown for ``_repr_markdown_``, are written from the same
blocks of ``reports.content`` by ``reports.render``, in the report's classes and colours."""

from __future__ import annotations

from gradparity.core.results import CheckDocument, Corroboration, NetworkRecord
from gradparity.reports.content import Block, Bullets, Cell, Heading, Paragraph, Preformatted, Table
from gradparity.reports.render import to_html_fragment, to_markdown
from gradparity.reports.formatting import two_digits
from gradparity.reports.terminal import AGREEMENT, AGREEMENT_LEGEND, READ_FROM

SCOPE = "gradparity-check"  # the class of the HTML's outer div, to which its stylesheet is confined
# the report's status (its colour) for each way a source can stand against the learner's value
AGREEMENT_STATUS = {"agrees": "pass", "differs": "fail", "deviates": "known_deviation", "unmeasured": "skipped"}
REFERENCE_LEGEND = ("reference: your value against the hand-derived NumPy reference, which alone decides; "
                    "of tol.: the error as a share of the tolerance (above 1× is wrong)")


def check_html(document: CheckDocument) -> str:
    """The check as one self-contained ``<div>``: its own scoped stylesheet, every text escaped."""
    return to_html_fragment(check_blocks(document), SCOPE)


def check_markdown(document: CheckDocument) -> str:
    """The check as Markdown, the quantities as a GitHub table."""
    return to_markdown(check_blocks(document))


def check_blocks(document: CheckDocument) -> list[Block]:
    """The verdict, what was called, one row per network, then the network shown in full (the
    first that failed, else the first) and the check's notes."""
    networks = document.networks
    shown = next((record for record in networks if record.verdict != "pass"), networks[0] if networks else None)
    blocks: list[Block] = [Paragraph(verdict_line(document, shown), document.verdict),
                           Paragraph(called_line(document))]
    if document.message and document.verdict != "error":
        blocks.append(Paragraph(document.message))
    if networks:
        blocks.append(networks_table(networks))
    if shown:
        blocks += network_blocks(shown)
    if document.notes:
        blocks.append(Bullets(tuple(f"note: {note}" for note in document.notes)))
    return blocks


def verdict_line(document: CheckDocument, shown: NetworkRecord | None) -> str:
    """PASS, FAIL or ERROR in a sentence: for a failure, the wrong quantities and the first
    wrong gradient counted from the output; for an error, its message."""
    if document.verdict == "error" or shown is None:
        return f"ERROR: {document.message or 'the check could not be made'}"
    if document.verdict == "pass":
        count = len(document.networks)
        where = f" on all {count} networks" if count > 1 else f" on {shown.network}"
        return f"PASS: the cost and every gradient agree with the reference{where}"
    wrong = shown.wrong
    verb = "is" if len(wrong) == 1 else "are"
    first = f"the first wrong gradient counted from the output is {shown.first_wrong}"
    if shown.first_wrong is None:
        first = "every gradient is right"
    return f"FAIL: {', '.join(wrong)} {verb} wrong on {shown.network}; {first}"


def called_line(document: CheckDocument) -> str:
    """Which functions were called, by which convention, from where."""
    line = f"Called {', '.join(document.called)} (convention: {document.convention})"
    if document.source:
        line += f" from {document.source}"
    return line


def networks_table(networks: list[NetworkRecord]) -> Table:
    """One row per network checked: its layers, data, examples, dtype and verdict."""
    rows = []
    for record in networks:
        rows.append((Cell(record.network, detail=READ_FROM[record.read_from]), Cell(record.data), Cell(str(record.m)),
                     Cell(record.dtype), Cell(record.verdict.upper(), record.verdict)))
    return Table(("network", "data", "m", "dtype", "verdict"), tuple(rows), align="llrll")


def network_blocks(record: NetworkRecord) -> list[Block]:
    """The network's table of quantities and its legend, the hints, the mismatch of its first
    wrong quantity, why central differences of the learner's cost differ from the reference's
    verdict, the sources that did not run and its notes."""
    blocks: list[Block] = [
        Heading(3, f"{record.network}, {record.data} (m = {record.m}), {record.dtype}", f"{SCOPE}-network"),
        quantities_table(record), Paragraph(REFERENCE_LEGEND), Paragraph(AGREEMENT_LEGEND)]
    blocks += [Paragraph(f"Hint: {hint}") for hint in hints(record)]
    first = record.first_wrong or "cost"
    message = next((check.message for check in record.checks if check.quantity == first), None)
    if record.verdict != "pass" and message:
        blocks.append(Preformatted(message))
    if record.explanation:
        blocks.append(Paragraph(f"Why finite-diff differs: {record.explanation}."))
    absent = [f"{name} did not run ({source.status}): {source.reason}"
              for name, source in record.corroboration.items() if source.status in ("error", "skipped")]
    notes = [f"note: {note}" for note in record.notes]
    if absent + notes:
        blocks.append(Bullets(tuple(absent + notes)))
    return blocks


def quantities_table(record: NetworkRecord) -> Table:
    """The columns of the terminal's check table: quantity (the first wrong gradient marked),
    the reference's verdict, the relative error, the share of the tolerance used, and one column
    per corroborating source with its symbol for each quantity."""
    sources = list(record.corroboration)
    rows = []
    for check in record.checks:
        first = "first wrong" if check.quantity == record.first_wrong else ""
        right = check.verdict == "pass"
        reference = Cell("✓ right", "pass") if right else Cell("✗ wrong", "fail")
        rows.append((Cell(check.quantity, detail=first), reference, Cell(two_digits(check.rel_error)),
                     Cell(two_digits(check.excess) + "×"),
                     *(agreement_cell(record.corroboration[name], check.quantity) for name in sources)))
    return Table(("quantity", "reference", "rel. error", "of tol.", *sources), tuple(rows), align="llrr")


def agreement_cell(source: Corroboration, quantity: str) -> Cell:
    """A source's symbol for a quantity, coloured as the report colours that status; – where
    the source did not run, blank where it has no value for the quantity."""
    if source.status in ("error", "skipped"):
        return Cell("–", "skipped")
    entry = source.quantities.get(quantity)
    if entry is None:
        return Cell("")
    symbol, _ = AGREEMENT[entry.verdict]
    return Cell(symbol, AGREEMENT_STATUS[entry.verdict])


def hints(record: NetworkRecord) -> list[str]:
    """The hint of the mistake recognised first, then the other quantities' hints, each once."""
    found = [record.hint, *record.hints.values()]
    return list(dict.fromkeys(hint for hint in found if hint))
