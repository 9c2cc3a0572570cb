"""What editors and static analysers see of the installed package, which they read as files,
never running the import hooks an editable install may rely on: every layer's names resolve to
their files in the repository, and mypy finds no error in the package at the level that
``pyproject.toml`` sets.

Both run as a user's tools do: with this environment's Python, in a subprocess, from a folder
outside the repository (jedi as an editor's "go to definition"; mypy over the installed package)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
# One name of each layer: the code an editor shows, ending in the name, and its file in the repository.
DEFINITIONS = {
    "gradparity.core.reference.train": ("import gradparity.core.reference as r; r.train", "core/reference.py"),
    "gradparity.backends.contract.Adapter": ("from gradparity.backends.contract import Adapter", "backends/contract.py"),
    "gradparity.reports.write.write_report": ("from gradparity.reports import write; write.write_report",
                                              "reports/write.py"),
    "gradparity.engine.run": ("import gradparity; gradparity.run", "gradparity/engine.py"),
}
GO_TO_DEFINITION = """
import json, sys
import jedi

environment = jedi.create_environment(sys.executable, safe=False)
found = {}
for code in json.loads(sys.argv[1]):
    names = jedi.Script(code, environment=environment).goto(1, len(code), follow_imports=True)
    found[code] = [[name.full_name, str(name.module_path)] for name in names]
print(json.dumps(found))
"""


def run_elsewhere(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """This environment's Python run with ``args`` in ``folder``, away from the repository."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=folder)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def definitions_found(elsewhere) -> dict[str, list[list[str]]]:
    """What jedi's "go to definition" finds for the last name of each code in DEFINITIONS:
    code -> [full name, file] of every definition."""
    codes = [code for code, _ in DEFINITIONS.values()]
    result = run_elsewhere(elsewhere, "-c", GO_TO_DEFINITION, json.dumps(codes))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", DEFINITIONS)
def test_an_editor_goes_to_the_definition_in_the_repository(name, definitions_found):
    code, file = DEFINITIONS[name]
    found = definitions_found[code]
    assert [(full_name, Path(path).resolve()) for full_name, path in found] == [(name, REPOSITORY / file)], found


def installed_package_folder(elsewhere: Path) -> Path:
    """The folder Python imports ``gradparity`` from outside the repository, found without importing it."""
    probe = "import importlib.util as u; print(u.find_spec('gradparity').submodule_search_locations[0])"
    result = run_elsewhere(elsewhere, "-c", probe)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_mypy_finds_no_error_in_any_module_of_the_package(elsewhere, tmp_path):
    """mypy is given the installed package's folder, where gradparity.core, .backends and .reports
    are the sub-folders core/, backends/ and reports/ (in the repository they are siblings of
    gradparity/). It runs cold, about 5 s: a kept cache can outlive a change of install, and mypy
    then trusts it (the files behind the links have not changed) and repeats its old errors."""
    package = installed_package_folder(elsewhere)
    result = run_elsewhere(elsewhere, "-m", "mypy", "--config-file", str(REPOSITORY / "pyproject.toml"),
                           "--cache-dir", str(tmp_path), str(package))
    assert result.returncode == 0, result.stdout + result.stderr
    checked = re.fullmatch(r"Success: no issues found in (\d+) source files\n", result.stdout)
    assert checked and int(checked[1]) == len(list(package.rglob("*.py"))), result.stdout
