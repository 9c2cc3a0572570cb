"""Draw the sample report's summary matrix as a picture for the README:
``python scripts/render_summary.py`` reads the matrix of ``reports/example/report.md`` (the sample
report, written by ``gradparity report --out reports/example``) and writes
``reports/example/summary.png`` in the HTML report's colours. A test redraws it and compares.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from gradparity.reports.digest import MARKER  # noqa: E402
from gradparity.reports.render import CSS  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "reports" / "example"
STATUS_OF = {symbol: status for status, symbol in MARKER.items()}
PASS_TEXT = "#1a7f37"  # .matrix td.st-pass in the HTML report
HEADER = "#eef1f5"


def colours() -> dict[str, tuple[str, str]]:
    """Each status's (background, text) colour, read from the HTML report's style sheet."""
    found = re.findall(r"\.st-(\w+)\{background:(#\w+);color:(#\w+)\}", CSS)
    return {status: (background, text) for status, background, text in found}


def matrix(markdown: str) -> list[list[str]]:
    """The summary matrix of a Markdown report: its header row, then one row per case × dtype,
    each cell as the reader sees it (emphasis and escapes removed)."""
    section = markdown.split("\n## Summary", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip().replace("**", "").replace("\\", "") for cell in line.strip("|").split("|")]
            for line in lines if not set(line) <= set("|- ")]


def counts(markdown: str) -> str:
    """The line under the report's Summary heading: how many results have each status."""
    return markdown.split("\n## Summary", 1)[1].strip().splitlines()[0]


def draw(rows: list[list[str]], caption: str, target: Path) -> None:
    """The matrix as a table, a status's cell in its colour, with ``caption`` below it."""
    palette = colours()
    header, body = rows[0], rows[1:]
    height = 0.3 * len(rows)
    figure = plt.figure(figsize=(13.5, height + 0.45), dpi=100)
    axes = figure.add_axes((0.005, 0.45 / (height + 0.45), 0.99, height / (height + 0.45)))
    table = axes.table(cellText=body, colLabels=header, bbox=(0, 0, 1, 1), cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9.5)
    table.auto_set_column_width(range(len(header)))
    axes.set_axis_off()
    figure.text(0.005, 0.12 / (height + 0.45), caption, fontsize=10, color="#4b535c")
    for (row, column), cell in table.get_celld().items():
        cell.set_edgecolor("#d0d7de")
        if row == 0:
            cell.set_facecolor(HEADER)
            cell.get_text().set_fontweight("bold")
            continue
        status = STATUS_OF.get(body[row - 1][column][:1])
        if status == "pass":
            cell.get_text().set_color(PASS_TEXT)
        elif status in palette:
            background, text = palette[status]
            cell.set_facecolor(background)
            cell.get_text().set_color(text)
    figure.savefig(target, metadata={"Software": None})
    plt.close(figure)


def main(folder: Path = SAMPLE) -> Path:
    """Draw ``folder/report.md``'s matrix into ``folder/summary.png``; its path."""
    target = folder / "summary.png"
    markdown = (folder / "report.md").read_text("utf-8")
    legend = " · ".join(f"{symbol} {status.replace('_', ' ')}" for status, symbol in MARKER.items())
    draw(matrix(markdown), f"{counts(markdown)}  —  {legend}", target)
    return target


if __name__ == "__main__":
    print(f"wrote {main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE)}")
