"""The reference pages generated from the code (``scripts/reference_pages.py``): each names
everything it must, the built site carries every option of every subcommand (and a check that
names an option missing from it), the API page documents every public name, and the script
writes the pages when run as a file."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradparity
from gradparity.backends import entry as entry_of, plugins
from gradparity.cli import build_parser
from gradparity.core.cases import CATALOGUE, DatasetCase
from gradparity.core.deviations import KNOWN_DEVIATIONS, stale_hint

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "reference_pages.py"
PUBLIC = [name for name in gradparity.__all__ if name != "__version__"]


def load_script():
    """``scripts/reference_pages.py`` as a module (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("reference_pages", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pages = load_script()


def missing_options(parser: argparse.ArgumentParser, page: str) -> list[str]:
    """``COMMAND OPTION`` for each option of ``parser`` and its subcommands that ``page`` (the
    command-line reference, Markdown or HTML) lacks: the definition under the option's anchor,
    holding every option string (an argument: its metavar)."""
    missing = []
    for command, each, _ in pages.commands(parser):
        for action in pages.options(each):
            anchor = re.escape(pages.option_id(command, action))
            found = re.search(f'<dt id="{anchor}"[^>]*>(.*?)</dt>', page, re.S)
            names = action.option_strings or [action.metavar or action.dest]
            if not found or not all(name in found.group(1) for name in names):
                missing.append(f"{command} {names[-1]}")
    return missing


def sections(page: str) -> dict[str, str]:
    """A generated page's ``##`` sections by their anchor."""
    found = re.findall(r"^## .*?\{ #([\w.-]+).*?\}\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    return dict(found)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """Each generated page's Markdown, by its path in the site."""
    return {path: make() for path, make in pages.PAGES.items()}


def test_the_command_line_page_has_every_subcommand_option_and_example(texts):
    page = texts["reference/cli.md"]
    parser = build_parser()
    assert missing_options(parser, page) == []
    for name, each, _ in pages.commands(parser):
        section = sections(page)[name]
        assert pages.escape(each.description or "") in section
        assert each.epilog is None or all(line.strip() in section for line in each.epilog.splitlines()[1:])
    assert "## Exit statuses" in page and "`EXIT_NOT_RUN`" in page


def test_the_catalogue_page_has_every_case_with_its_set_up(texts):
    cases = sections(texts["reference/catalogue.md"])
    assert list(cases) == list(CATALOGUE)
    for name, make in CATALOGUE.items():
        assert all(f"**{part}:**" in cases[name] for part in ("Network", "Data", "Training", "Steps", "Tolerance"))
        if isinstance(make, DatasetCase):
            assert f"`{make.dataset}`, m = " in cases[name] and f"`{make.init}`" in cases[name]
            assert pages.escape(make.training.describe()) in cases[name]
        else:
            assert "**Set-up:**" in cases[name]


def test_the_deviations_page_has_every_registered_deviation(texts):
    """gradparity's and the installed plugins' (the suite installs autograd's)."""
    registered = [*KNOWN_DEVIATIONS, *(deviation for name in plugins() for deviation in entry_of(name).deviations)]
    entries = sections(texts["reference/deviations.md"])
    assert list(entries) == [entry.name for entry in registered]
    for entry in registered:
        section = entries[entry.name]
        assert pages.escape(entry.cause) in section and pages.escape(stale_hint(entry)) in section
        assert f"`{entry.backend}`" in section and all(f"`{op}`" in section for op in entry.ops)
        assert all(f"`{pattern}`" in section for pattern, _ in entry.bounds)


def test_the_result_document_page_has_every_record_and_field(texts):
    page = texts["reference/result-document.md"]
    assert all(f"`schemas/{path.name}`" in page for path in (ROOT / "schemas").glob("*.json"))
    for name, kind in pages.records().items():
        section = re.search(rf"\{{ #{name.lower()} .*?\}}\n(.*?)(?=^##|\Z)", page, re.M | re.S)
        assert section, f"{name} is not on the page"
        assert all(f"| `{field.name}` |" in section.group(1) for field in dataclasses.fields(kind)), name


def test_the_api_page_names_every_public_name():
    directives = re.findall(r"^::: (\S+)", (ROOT / "docs" / "reference" / "api.md").read_text(), re.M)
    assert sorted(f"gradparity.{name}" for name in PUBLIC) == sorted(name for name in directives
                                                                    if name.count(".") == 1)
    assert {"gradparity.core.results.Document", "gradparity.backends.contract"} <= set(directives)


def test_the_built_site_has_every_option_of_every_subcommand(site):
    assert missing_options(build_parser(), (site / "reference" / "cli" / "index.html").read_text()) == []


def test_an_option_missing_from_the_built_reference_is_named(site):
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    commands.choices["run"].add_argument("--frobnicate", help="an option the built site has not seen")
    assert missing_options(parser, (site / "reference" / "cli" / "index.html").read_text()) == ["run --frobnicate"]


def test_the_built_api_page_documents_every_public_name(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    assert all(f'id="gradparity.{name}"' in html for name in PUBLIC)
    assert 'id="gradparity.core.results.Document"' in html and 'id="gradparity.backends.contract.Adapter"' in html


def test_the_script_run_as_a_file_writes_the_four_pages(tmp_path, texts):
    written = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    for path, text in texts.items():
        assert (tmp_path / path).read_text() == text
