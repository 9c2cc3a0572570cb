"""Rendered text read by its structure, so that tests assert cells, counts and numbers rather
than sentences: a Markdown table row split into its cells, the rows of a page, a section."""

from __future__ import annotations


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
