"""Rendered text read by its structure, so that tests assert cells, counts and numbers rather
than sentences: a Markdown table row split into its cells, the rows of a page, a section; in
terminal output, the networks named, the tally of statuses, the ``label: value`` lines and how
deep each line is indented; in HTML, the headings, paragraphs and tables of a page or of one
of its sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser

STATUSES = ("pass", "known deviation", "stale", "fail", "error", "skipped")
NETWORK = re.compile(r"\b(\d+(?:-\d+)+) (\w+)/([\w-]+)")


def cells(line: str) -> list[str]:
    """The cells of one Markdown table row, stripped: ``| a | b |`` -> ``["a", "b"]``."""
    return [cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split("|")]


def table_rows(markdown: str) -> list[list[str]]:
    """Every row of every Markdown table in ``markdown`` as its cells (the rule rows left out)."""
    return [cells(line) for line in markdown.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]


def rows_of(markdown: str, first: str) -> list[list[str]]:
    """The table rows whose first cell is ``first``."""
    return [row for row in table_rows(markdown) if row[0] == first]


def paragraphs(markdown: str) -> list[str]:
    """The blocks of ``markdown`` between blank lines, stripped."""
    return [block.strip() for block in markdown.split("\n\n")]


def networks(text: str) -> list[tuple[str, str, str]]:
    """Every network ``text`` names the way gradparity writes one (``2-4-1 sigmoid/bce``), as
    (layer sizes, hidden activation, loss)."""
    return NETWORK.findall(text)


def tally(text: str) -> dict[str, int]:
    """The counts of the first tally of statuses in ``text`` (``4 pass · 0 fail · 12 skipped``),
    by status; ``text`` may be wrapped."""
    found = re.search(rf"\d+ pass(?: · \d+ (?:{'|'.join(STATUSES)}))*", " ".join(text.split()))
    assert found, "no tally of statuses"
    return {status: int(count) for count, status in (part.split(" ", 1) for part in found.group().split(" · "))}


def labelled(text: str, indent: int = 2) -> list[tuple[str, str]]:
    """The ``label: value`` lines of terminal output indented by ``indent`` spaces, each with the
    further-indented lines that continue it (up to a blank line) joined on: (label, value) pairs
    in order."""
    pairs: list[tuple[str, str]] = []
    joining = False
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip(" "))
        if depth == indent and ":" in line:
            label, _, value = line.strip().partition(":")
            pairs.append((label, value.strip()))
            joining = True
        elif joining and depth > indent and line.strip():
            label, value = pairs[-1]
            pairs[-1] = (label, f"{value} {line.strip()}".strip())
        else:
            joining = False
    return pairs


def indents(lines: list[str]) -> dict[str, int]:
    """Each terminal line's text, stripped, and the number of spaces it is indented by."""
    return {line.strip(): len(line) - len(line.lstrip(" ")) for line in lines}


class _Blocks(HTMLParser):
    """The headings, paragraphs and tables of an HTML page, in order (see ``html_blocks``)."""

    KEPT = ("h1", "h2", "h3", "h4", "p", "li")

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[tuple[str, object]] = []
        self.text: list[str] | None = None  # the text of the block or cell being read
        self.rows: list[list[str]] | None = None  # the rows of the table being read

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "table":
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in ("td", "th") or tag in self.KEPT:
            self.text = []
        elif tag in ("br", "small") and self.text is not None:
            self.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.blocks.append(("table", self.rows))
            self.rows = None
        elif tag in ("td", "th") and self.rows is not None and self.text is not None:
            self.rows[-1].append(" ".join("".join(self.text).split()))
            self.text = None
        elif tag in self.KEPT and self.text is not None:
            self.blocks.append((tag, " ".join("".join(self.text).split())))
            self.text = None

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def html_blocks(page: str) -> list[tuple[str, object]]:
    """The headings (``("h2", text)``), paragraphs and list items (``("p", text)``, ``("li",
    text)``) and tables (``("table", rows)``, each row its cells' text, a heading's second line
    after a space) of an HTML page, in order, whitespace collapsed."""
    parser = _Blocks()
    parser.feed(page)
    return parser.blocks


def html_section(page: str, title: str) -> list[tuple[str, object]]:
    """The blocks of the ``<h2>`` section named ``title``, up to the next ``<h2>``."""
    blocks = html_blocks(page)
    start = blocks.index(("h2", title))
    end = next((i for i in range(start + 1, len(blocks)) if blocks[i][0] == "h2"), len(blocks))
    return blocks[start + 1:end]
