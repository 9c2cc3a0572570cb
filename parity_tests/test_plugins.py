"""Backends from plugins, through the door a user's package takes: a package folder with its own
pyproject.toml declaring entry points in ``gradparity.backends``, installed with pip (into a
folder of its own, put on PYTHONPATH, so that the test environment stays as it is), then the
``gradparity`` command. The suite's fakes come through that door too: a plugin that fails to
load, lacks a method, answers malformed results or was built for another contract is that
backend's error, with one line naming the cause, and every other backend's result stands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradparity.backends import BackendEntry, Plugin, entry, known, plugin_entry, resolve
from gradparity.core.results import split_requirement
from gradparity.backends.contract import VERSION
from gradparity.core.errors import SpecError

FAKES = Path(__file__).resolve().parent  # fake_backends.py
GRADPARITY = str(Path(sys.executable).with_name("gradparity"))
DESCRIPTIONS = f'''from gradparity.backends import BackendEntry

GOOD = BackendEntry("gradparity_fakes.good", role="framework", seconds=1)
WRONG = BackendEntry("gradparity_fakes.wrong", seconds=1)
BROKEN_IMPORT = BackendEntry("gradparity_fakes.broken_import", seconds=1)
NO_EVALUATE = BackendEntry("gradparity_fakes.no_evaluate", seconds=1)
MALFORMED = BackendEntry("gradparity_fakes.malformed", seconds=1)
FUTURE = BackendEntry("gradparity_fakes.good", contract="{int(VERSION.split('.')[0]) + 1}.0")
NOT_AN_ENTRY = {{"module": "gradparity_fakes.good"}}
'''
ADAPTERS = {
    "good": "from fake_backends import ReferenceAdapter as Adapter\n",  # the reference: passes
    "wrong": "from fake_backends import WrongGradient as Adapter\n",  # a wrong dW1: fails, a result
    "broken_import": "import a_framework_that_is_not_installed\n",
    "no_evaluate": ("class Adapter:\n    def __init__(self, name, device='cpu', allow_tf32=False): pass\n"
                    "    def version(self): return 'none 0'\n    def flags(self): return {}\n"),
    "malformed": "from fake_backends import NotAnEvaluation as Adapter\n",
}
ENTRY_POINTS = {"fake-good": "GOOD", "fake-wrong": "WRONG", "fake-broken-import": "BROKEN_IMPORT",
                "fake-no-evaluate": "NO_EVALUATE", "fake-malformed": "MALFORMED", "fake-future": "FUTURE",
                "fake-not-an-entry": "NOT_AN_ENTRY", "fake-unloadable": "MISSING_ATTRIBUTE", "numpy": "GOOD"}
# Each broken plugin's error, as a piece of its one line.
ERRORS = {
    "fake-broken-import": "ModuleNotFoundError: No module named 'a_framework_that_is_not_installed'",
    "fake-no-evaluate": "Adapter lacks evaluate(), train() of gradparity.backends.contract.Adapter",
    "fake-malformed": "its result could not be compared",
    "fake-future": f"was built for adapter contract {int(VERSION.split('.')[0]) + 1}.0; this gradparity speaks {VERSION}",
    "fake-not-an-entry": "gradparity_fakes:NOT_AN_ENTRY is a dict, not a gradparity.backends.BackendEntry",
    "fake-unloadable": "failed to load gradparity_fakes:MISSING_ATTRIBUTE: AttributeError",
}


def write_plugin(folder: Path) -> Path:
    """The fakes' plugin package, as a user would lay one out: pyproject.toml and a package."""
    package = folder / "gradparity_fakes"
    package.mkdir(parents=True)
    points = "\n".join(f'"{name}" = "gradparity_fakes:{attribute}"' for name, attribute in ENTRY_POINTS.items())
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "gradparity-fakes"\nversion = "0.3"\n\n'
        f'[project.entry-points."gradparity.backends"]\n{points}\n')
    (package / "__init__.py").write_text(DESCRIPTIONS)
    for module, source in ADAPTERS.items():
        (package / f"{module}.py").write_text(source)
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The plugin installed with pip from its folder into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(write_plugin(root / "gradparity-fakes"))], check=True)
    return target


def gradparity(*arguments: str, plugin: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    """The installed command, from another folder, with the plugin's folder on PYTHONPATH or not."""
    path = [str(plugin), str(FAKES)] if plugin else [str(FAKES)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([GRADPARITY, *arguments], capture_output=True, text=True, cwd=cwd, env=environment, timeout=300)


def rows(plugin: Path | None, cwd: Path) -> list[dict]:
    """``gradparity backends --json``'s rows."""
    done = gradparity("backends", "--json", str(cwd / "backends.json"), plugin=plugin, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads((cwd / "backends.json").read_text())["backends"]


def listed(plugin: Path | None, cwd: Path) -> dict[str, dict]:
    """``gradparity backends --json``'s rows by name (the first of a name listed twice)."""
    found: dict[str, dict] = {}
    for row in rows(plugin, cwd):
        found.setdefault(row["name"], row)
    return found


def test_an_installed_plugin_is_listed_and_an_uninstalled_one_is_not(installed, tmp_path):
    with_plugin, without = listed(installed, tmp_path), listed(None, tmp_path)
    good = with_plugin["fake-good"]
    assert (good["role"], good["origin"], good["runs"]) == ("framework", "gradparity-fakes 0.3", None)
    assert good["frameworks"] == "gradparity-fakes 0.3"  # an engine of its own: the plugin's package
    assert not any(name.startswith("fake-") for name in without)
    assert without["numpy"]["origin"] == "built-in" and without["jax"]["frameworks"].startswith("jax ")
    for name, piece in ERRORS.items():
        if name in ("fake-broken-import", "fake-no-evaluate", "fake-malformed"):  # found only by running them
            assert with_plugin[name]["runs"] is None, with_plugin[name]
        else:
            assert piece in with_plugin[name]["runs"], with_plugin[name]
    clash = [row for row in rows(installed, tmp_path) if row["name"] == "numpy" and row["origin"] != "built-in"]
    assert [row["runs"] for row in clash] == ["refused: a built-in backend is called numpy"]
    unknown = gradparity("run", "--backends", "fake-good", "--case", "seed-2layer", plugin=None, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown backend 'fake-good'" in unknown.stderr, unknown.stderr


def test_a_default_run_includes_the_plugins_and_a_broken_one_is_only_its_own_error(installed, tmp_path):
    """A default run: every installed backend, built-in and plugin, on one case (8 s on an idle
    machine, over 10 s while the suite runs beside it: every framework's worker starts, which is
    what a default run is)."""
    done = gradparity("run", "--case", "seed-2layer", "--dtype", "float64", "--json", "run.json", plugin=installed,
                      cwd=tmp_path)
    document = json.loads((tmp_path / "run.json").read_text())
    [result] = document["results"]
    statuses = {name: backend["status"] for name, backend in result["backends"].items()}
    assert set(known()) <= set(statuses), statuses  # every built-in one (and the suite's own plugins)
    assert statuses["fake-good"] == "pass" and statuses["fake-wrong"] == "fail", statuses
    for name, piece in ERRORS.items():
        reason = result["backends"][name]["reason"]
        assert statuses[name] == "error" and piece in reason and "\n" not in reason, (name, reason)
    intact = {name: status for name, status in statuses.items() if not name.startswith("fake-")}
    assert set(intact.values()) <= {"pass", "known_deviation"}, intact
    assert done.returncode == 1, done.stderr


def test_a_version_requirement_splits_from_its_backend_name():
    assert split_requirement("jax==0.4.30") == ("jax", "==0.4.30")
    assert split_requirement("keras-jax>=3.10,<3.12") == ("keras-jax", ">=3.10,<3.12")
    assert split_requirement("torch") == ("torch", "")
    assert resolve(["jax==0.4.30", "jax"]) == ["jax==0.4.30", "jax"]
    assert entry("keras-jax~=3.10").pinned == "keras~=3.10"  # a Keras backend pins Keras
    assert entry("numpy<2").pinned == "numpy<2"
    with pytest.raises(SpecError, match="'jax==0.4.30=' is not a backend with a version requirement"):
        entry("jax==0.4.30=")
    with pytest.raises(SpecError, match="unknown backend 'jaxx'"):
        resolve(["jaxx==0.4.30"])


def test_a_plugin_description_is_refused_with_the_reason_not_raised():
    refused = plugin_entry(Plugin("nowhere", "no_such_module:BACKEND", "some-plugin", "1.2"))
    assert refused.refused.startswith("plugin nowhere (some-plugin 1.2) failed to load no_such_module:BACKEND: "
                                      "ModuleNotFoundError"), refused.refused
    accepted = plugin_entry(Plugin("numpy-again", "gradparity.backends:REGISTRY", "some-plugin", "1.2"))
    assert "is a dict, not a gradparity.backends.BackendEntry" in accepted.refused
    assert isinstance(accepted, BackendEntry) and accepted.origin == "some-plugin 1.2"


def test_listing_the_backends_imports_no_framework():
    listing = ("import sys; from gradparity.inventory import inventory; inventory(); "
               "print(sorted(set(sys.modules) & {'torch', 'jax', 'tensorflow', 'keras', 'autograd', 'scipy'}))")
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
