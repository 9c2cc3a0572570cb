"""The report as text: one self-contained HTML page (inline CSS, plots as data URIs, no script,
nothing fetched) and one Markdown page (plots as relative links ``plots/NAME.png``), both
written from the same blocks of ``reports.content``."""

from __future__ import annotations

import base64
import html
import multiprocessing
import re
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Iterator

from gradparity.core.results import BenchDocument, Document
from gradparity.reports.content import (TITLE, Block, Bullets, Cell, Details, Figure, Heading, Legend,
                                        Paragraph, Preformatted, Table, build)
from gradparity.reports.digest import status_label

FIGURES_PER_PROCESS = 8  # the fewest figures worth a process of their own in ``draw_all``

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#eef1f4;--zebra:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:1.9rem;margin:0 0 .6rem}
h2{font-size:1.4rem;margin:2.6rem 0 .8rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.15rem;margin:1.9rem 0 .5rem}
h4{font-size:1rem;margin:1.4rem 0 .4rem;color:var(--muted)}
p,ul{max-width:72rem}
li{margin:.2rem 0}
nav{margin:1rem 0;font-size:.9rem}
nav a{margin-right:1rem;color:#0b5cad;text-decoration:none}
nav a:hover{text-decoration:underline}
.verdict{padding:.65rem 1rem;border-radius:6px;font-size:1.05rem;font-weight:600}
.scroll{overflow-x:auto;margin:.6rem 0 1.1rem}
table{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{padding:.3rem .65rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;white-space:nowrap}
tbody tr:nth-child(even){background:var(--zebra)}
.r{text-align:right;white-space:nowrap}
td small{display:block;font-size:.75rem;opacity:.85;white-space:nowrap}
.legend span{display:inline-block;margin:0 .4rem .3rem 0;padding:.1rem .55rem;border-radius:4px;
 font-size:.85rem}
.st-pass{background:#dcf3e2;color:#14532d}
.st-known_deviation{background:#ffedc2;color:#6b4700}
.st-fail{background:#fcd5d0;color:#8b1a10}
.st-error{background:#7f1d1d;color:#fff}
.st-skipped{background:#e7e9ec;color:#4b535c}
.st-stale{background:#eadcf8;color:#4a1d7a}
.matrix th{white-space:normal;vertical-align:bottom;padding:.3rem .45rem}
.matrix td{white-space:nowrap;padding:.25rem .45rem}
.matrix td.st-pass{background:none;color:#1a7f37}
.matrix td.st-pass small{color:var(--muted)}
.matrix td.st-fail,.matrix td.st-error{font-weight:700;box-shadow:inset 0 0 0 2px #c62828}
.matrix td.st-known_deviation,.matrix td.st-stale{font-weight:600}
.matrix a,p.verdict a{color:inherit}
details{margin:.5rem 0 1rem}
summary{cursor:pointer;color:#0b5cad}
pre{background:var(--zebra);border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;
 white-space:pre-wrap;overflow-wrap:anywhere;
 font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
figure{margin:1.2rem 0}
img{max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:.85rem;margin-top:.3rem}
@media print{
 body{font-size:10pt}
 main{max-width:none;padding:0}
 nav{display:none}
 h2,h3,h4{break-after:avoid}
 tr,pre,figure{break-inside:avoid}
 thead{display:table-header-group}
 .scroll{overflow:visible}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


@dataclass(frozen=True)
class Rendered:
    """A rendered report: the two pages and the PNG of every plot, keyed by plot name."""

    html: str
    markdown: str
    plots: dict[str, bytes]


def render(document: Document, bench: BenchDocument | None = None, processes: int = 1) -> Rendered:
    """Build the report's blocks, draw its plots (dropping those with nothing to draw; in up to
    ``processes`` processes, ``draw_all``) and write both pages. Reads the documents only; runs
    no backend."""
    blocks = build(document, bench)
    plots = draw_all(list(_figures(blocks)), processes)
    kept = _with_plots(blocks, plots)
    return Rendered(to_html(kept, plots), to_markdown(kept), plots)


def _figures(blocks: list[Block] | tuple[Block, ...]) -> Iterator[Figure]:
    """Every figure of ``blocks``, folded ones too, in order."""
    for block in blocks:
        if isinstance(block, Details):
            yield from _figures(block.blocks)
        elif isinstance(block, Figure):
            yield block


def draw_all(figures: list[Figure], processes: int = 1) -> dict[str, bytes]:
    """The PNG of every figure that has something to draw, by name. With ``processes`` > 1 and at
    least ``FIGURES_PER_PROCESS`` figures for each, they are drawn in that many spawned processes
    (matplotlib draws on one core; a process costs about what drawing a few figures does)."""
    from gradparity.reports import plots  # matplotlib only once a report is rendered

    processes = min(processes, len(figures) // FIGURES_PER_PROCESS)
    calls = ([figure.plot for figure in figures], [figure.data for figure in figures])
    if processes > 1:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            pngs = list(pool.map(plots.draw, *calls))
    else:
        pngs = list(map(plots.draw, *calls))
    return {figure.name: png for figure, png in zip(figures, pngs) if png is not None}


def _with_plots(blocks: list[Block] | tuple[Block, ...], plots: dict[str, bytes]) -> list[Block]:
    """``blocks`` without the figures that have no PNG in ``plots``, folded ones too."""
    kept = []
    for block in blocks:
        if isinstance(block, Details):
            block = Details(block.summary, tuple(_with_plots(block.blocks, plots)))
        elif isinstance(block, Figure) and block.name not in plots:
            continue
        kept.append(block)
    return kept


def to_html(blocks: list[Block], plots: dict[str, bytes]) -> str:
    """One HTML page: the blocks in order, a contents line before the first section, every
    text escaped and every plot inlined as a base64 data URI."""
    sections = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = "<nav>" + "".join(f'<a href="#{b.anchor}">{_esc(b.text)}</a>' for b in sections) + "</nav>"
    body = []
    for block in blocks:
        if sections and block is sections[0]:
            body.append(nav)
        body.append(_html_block(block, plots))
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


def to_html_fragment(blocks: list[Block], scope: str) -> str:
    """The blocks (without figures) as one ``<div class="scope">`` to embed in another page, a
    Jupyter output: it carries the report's stylesheet confined to itself (``scoped_css``), so
    it looks like the report and restyles nothing around it."""
    body = "\n".join(_html_block(block, {}) for block in blocks)
    return f'<div class="{scope}">\n<style>{scoped_css(scope)}</style>\n{body}\n</div>\n'


def scoped_css(scope: str) -> str:
    """The report's CSS (less its print rules) with every selector put under ``.scope``:
    ``:root`` and ``body`` become ``.scope`` itself (the colours and font), ``th`` becomes
    ``.scope th``."""
    screen = CSS.split("@media")[0]
    rules = []
    for selectors, declarations in re.findall(r"([^{}]+)\{([^{}]*)\}", screen):
        scoped = [f".{scope}" if selector in (":root", "body") else f".{scope} {selector}"
                  for selector in (part.strip() for part in selectors.split(","))]
        rules.append(f"{','.join(scoped)}{{{' '.join(declarations.split())}}}")
    return "\n".join(rules)


def _html_block(block: Block, plots: dict[str, bytes]) -> str:
    match block:
        case Heading(level, text, anchor):
            return f'<h{level} id="{anchor}">{_esc(text)}</h{level}>'
        case Paragraph(text, None):
            return f"<p>{_esc(text)}</p>"
        case Paragraph(text, status):
            return f'<p class="verdict st-{status}">{_esc(text)}</p>'
        case Bullets(items):
            return "<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in items) + "</ul>"
        case Legend(statuses):
            return '<p class="legend">' + "".join(
                f'<span class="st-{s}">{_esc(status_label(s))}</span>' for s in statuses) + "</p>"
        case Table():
            return _html_table(block)
        case Preformatted(text):
            return f"<pre>{_esc(text)}</pre>"
        case Details(summary, inner):
            return (f"<details><summary>{_esc(summary)}</summary>\n"
                    + "\n".join(_html_block(b, plots) for b in inner) + "\n</details>")
        case Figure(name, caption):
            png = plots[name]
            width, height = struct.unpack(">II", png[16:24])  # the PNG IHDR chunk
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            return (f'<figure><img src="{uri}" width="{width}" height="{height}" alt="{_esc(caption)}">'
                    f"<figcaption>{_esc(caption)}</figcaption></figure>")
    raise TypeError(f"unknown block {block!r}")


def _html_table(table: Table) -> str:
    def cell(tag: str, c: Cell, column: int) -> str:
        classes = []
        if c.status:
            classes.append(f"st-{c.status}")
        if table.align[column:column + 1] == "r":
            classes.append("r")
        attribute = f' class="{" ".join(classes)}"' if classes else ""
        text = f'<a href="#{c.link}">{_esc(c.text)}</a>' if c.link else _esc(c.text)
        detail = f"<small>{_esc(c.detail)}</small>" if c.detail else ""
        if detail and tag == "th":  # the stylesheet makes a cell's detail a line of its own, a heading's it breaks
            detail = "<br>" + detail
        return f"<{tag}{attribute}>{text}{detail}</{tag}>"

    head = "".join(cell("th", _header_cell(h), i) for i, h in enumerate(table.header))
    rows = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>\n"
                   for row in table.rows)
    kind = ' class="matrix"' if table.matrix else ""
    return (f'<div class="scroll"><table{kind}>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{rows}</tbody></table></div>")


def to_markdown(blocks: list[Block]) -> str:
    """One Markdown page (CommonMark + GitHub tables) that also reads well as plain text."""
    return "\n\n".join(_markdown_block(block) for block in blocks) + "\n"


def _markdown_block(block: Block) -> str:
    match block:
        case Heading(level, text):
            return f"{'#' * level} {_md(text)}"
        case Paragraph(text, None):
            return _md(text)
        case Paragraph(text, _):
            return f"**{_md(text)}**"
        case Bullets(items):
            return "\n".join(f"- {_md(item)}" for item in items)
        case Legend(statuses):
            return "Legend: " + " · ".join(status_label(s) for s in statuses)
        case Table():
            return _markdown_table(block)
        case Preformatted(text):
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
            return f"{fence}text\n{text.rstrip()}\n{fence}"
        case Details(summary, inner):
            return "\n\n".join([f"*{_md(summary)}*"] + [_markdown_block(b) for b in inner])
        case Figure(name, caption):
            return f"![{_md(caption)}](plots/{name}.png)\n\n*{_md(caption)}*"
    raise TypeError(f"unknown block {block!r}")


def _markdown_table(table: Table) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    def text(c: Cell) -> str:
        if table.matrix:  # the symbol, share and quantity, so it stays narrow; what does not pass in bold
            shown = _md(f"{c.text} {c.detail}".strip())
            return f"**{shown}**" if c.status not in (None, "pass") and c.text else shown or " "
        joined = f"{c.text} · {c.detail}" if c.detail else c.text
        return _md(" ".join(joined.split())).replace("|", "\\|") or " "

    rule = ["---:" if table.align[i:i + 1] == "r" else "---" for i in range(len(table.header))]
    lines = [row([text(_header_cell(h)) for h in table.header]), row(rule)]
    lines += [row([text(c) for c in r]) for r in table.rows]
    return "\n".join(lines)


def _header_cell(header: str | Cell) -> Cell:
    """A table's heading as a cell (a second-order column's heading is one: its mode is the detail)."""
    if isinstance(header, Cell):
        return header
    return Cell(header)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _md(text: str) -> str:
    """Backslash-escape the characters that would start Markdown markup or raw HTML."""
    return re.sub(r"([\\`*\[\]<>])", r"\\\1", text)
