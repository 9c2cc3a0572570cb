"""What editors and static analysers see of the installed package, which they read as files,
never running the import hooks an editable install may rely on: every layer's names resolve to
their files in the repository; mypy finds no error in the package at the level that
``pyproject.toml`` sets, whose baseline of old errors holds none that is gone.

Both run as a user's tools do: with this environment's Python, in a subprocess, from a folder
outside the repository (jedi as an editor's "go to definition"; mypy over the installed package)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
# One name of each layer: the code an editor shows, ending in the name, and its file in the repository.
DEFINITIONS = {
    "gradparity.core.reference.train": ("import gradparity.core.reference as r; r.train", "core/reference.py"),
    "gradparity.backends.contract.Adapter": ("from gradparity.backends.contract import Adapter",
                                             "backends/contract.py"),
    "gradparity.reports.write.write_report": ("from gradparity.reports import write; write.write_report",
                                              "reports/write.py"),
    "gradparity.engine.run": ("import gradparity; gradparity.run", "gradparity/engine.py"),
}
GO_TO_DEFINITION = """
import json, sys
import jedi

environment = jedi.create_environment(sys.executable, safe=False)
project = jedi.Project(sys.argv[2])
found = {}
for code in json.loads(sys.argv[1]):
    names = jedi.Script(code, environment=environment, project=project).goto(1, len(code), follow_imports=True)
    found[code] = [[name.full_name, str(name.module_path)] for name in names]
print(json.dumps(found))
"""


def run_elsewhere(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """This environment's Python run with ``args`` in ``folder``, away from the repository."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=folder)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """An empty folder outside the repository, where the tools run."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module", params=["opened-elsewhere", "opened-at-the-root"])
def definitions_found(request, elsewhere) -> dict[str, list[list[str]]]:
    """What jedi's "go to definition" finds for the last name of each code in DEFINITIONS, in an
    editor opened in another folder or at the repository's root (where the repository's own
    gradparity/ folder comes first): code -> [full name, file] of every definition."""
    project = elsewhere if request.param == "opened-elsewhere" else REPOSITORY
    codes = [code for code, _ in DEFINITIONS.values()]
    result = run_elsewhere(elsewhere, "-c", GO_TO_DEFINITION, json.dumps(codes), str(project))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", DEFINITIONS)
def test_an_editor_goes_to_the_definition_in_the_repository(name, definitions_found):
    code, file = DEFINITIONS[name]
    found = definitions_found[code]
    assert [(full_name, Path(path).resolve()) for full_name, path in found] == [(name, REPOSITORY / file)], found


@pytest.fixture(scope="module")
def installed_package(elsewhere) -> Path:
    """The folder Python imports ``gradparity`` from outside the repository, found without importing it.
    There gradparity.core, .backends and .reports are the sub-folders core/, backends/ and reports/
    (in the repository they are siblings of gradparity/), so mypy is given this folder."""
    probe = "import importlib.util as u; print(u.find_spec('gradparity').submodule_search_locations[0])"
    result = run_elsewhere(elsewhere, "-c", probe)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory) -> Path:
    """mypy's cache for this module's runs only: a cache kept longer can outlive a change of install,
    and mypy then trusts it (the files behind the links have not changed) and repeats its old errors."""
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(config: Path, package: Path, cache: Path, elsewhere: Path) -> subprocess.CompletedProcess:
    """mypy with ``config`` over the installed package's folder."""
    return run_elsewhere(elsewhere, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(cache), str(package))


def test_mypy_finds_no_error_in_any_module_of_the_package(installed_package, mypy_cache, elsewhere):
    """About 5 s (mypy runs cold; see ``mypy_cache``)."""
    result = run_mypy(REPOSITORY / "pyproject.toml", installed_package, mypy_cache, elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = re.fullmatch(r"Success: no issues found in (\d+) source files\n", result.stdout)
    assert checked and int(checked[1]) == len(list(installed_package.rglob("*.py"))), result.stdout


def mypy_options() -> dict:
    """The ``[tool.mypy]`` table of pyproject.toml."""
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["mypy"]


def is_baseline(override: dict) -> bool:
    """Whether a per-module entry of the mypy options is part of the baseline of today's errors."""
    return "disable_error_code" in override


def as_toml(options: dict) -> str:
    """mypy ``options`` (strings, booleans and lists of them) as a pyproject.toml, one table per override."""
    lines = ["[tool.mypy]", *(f"{key} = {json.dumps(value)}" for key, value in options.items() if key != "overrides")]
    for override in options["overrides"]:
        lines += ["[[tool.mypy.overrides]]", *(f"{key} = {json.dumps(value)}" for key, value in override.items())]
    return "\n".join(lines) + "\n"


def errors_by_module_and_code(report: str, package: Path) -> set[tuple[str, str]]:
    """(module, error code) of every error in mypy's ``report`` on the package in folder ``package``."""
    found = set()
    for path, code in re.findall(r"^(.+?):\d+: error: .*\[([a-z-]+)\]$", report, re.MULTILINE):
        parts = Path(path).relative_to(package.parent).with_suffix("").parts
        found.add((".".join(parts).removesuffix(".__init__"), code))
    return found


def test_every_entry_of_the_mypy_baseline_is_still_needed(installed_package, mypy_cache, elsewhere, tmp_path):
    """The baseline of pyproject.toml lists, by module, the error codes that module had when mypy
    came; an entry whose errors are fixed must go (as a deviation that no longer happens is stale),
    so the baseline only shrinks. mypy runs without it, warm from the test above."""
    options = mypy_options()
    baseline = {(entry["module"], code) for entry in options["overrides"] if is_baseline(entry)
                for code in entry["disable_error_code"]}
    without_baseline = tmp_path / "pyproject.toml"
    kept = [override for override in options["overrides"] if not is_baseline(override)]
    without_baseline.write_text(as_toml({**options, "overrides": kept}))
    result = run_mypy(without_baseline, installed_package, mypy_cache, elsewhere)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: errors found; 2: mypy could not run
    stale = baseline - errors_by_module_and_code(result.stdout, installed_package)
    assert not stale, f"no longer needed in pyproject.toml's mypy baseline: {sorted(stale)}"


MAX_PARAMETERS = 7  # the design's "no long parameter lists": beyond this, pass an options object
LAYERS = ("core", "backends", "reports", "gradparity")


def parameter_counts() -> dict[str, int]:
    """``file:function`` -> its parameters (positional-only, ordinary, keyword-only, ``*args``
    and ``**kwargs``; ``self`` and ``cls`` left out) for every function, nested ones included,
    in the four layers."""
    counts = {}
    for layer in LAYERS:
        for path in sorted((REPOSITORY / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    arguments = node.args
                    named = [*arguments.posonlyargs, *arguments.args]
                    count = len(named) + len(arguments.kwonlyargs) + bool(arguments.vararg) + bool(arguments.kwarg)
                    if named and named[0].arg in ("self", "cls"):
                        count -= 1
                    key = f"{path.relative_to(REPOSITORY).as_posix()}:{node.name}"
                    counts[key] = max(count, counts.get(key, 0))
    return counts


def test_no_function_takes_more_than_seven_parameters():
    counts = parameter_counts()
    long = {key: count for key, count in counts.items() if count > MAX_PARAMETERS}
    offenders = sorted(f"{key} ({count})" for key, count in long.items())
    assert not offenders, f"more than {MAX_PARAMETERS} parameters (pass an options object): {offenders}"
