"""The house: everything installs under the one name ``gradparity``, in three layers whose imports
point down only (application -> backends, reports -> core), with no import circle, and importing
it imports no framework.

The layer rules are read from the source of every installed module, imports inside functions
included, so an upward or circular import fails here even where it would not fail at run time."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("jax", "torch", "tensorflow", "keras", "matplotlib", "sklearn")
LAYERS = {"gradparity.core": 0, "gradparity.backends": 1, "gradparity.reports": 1, "gradparity": 2}
# core: NumPy and the standard library; scikit-learn only as the optional source of two bundled
# data sets (gradparity[data]), imported inside the loader that reads them.
CORE_MAY_IMPORT = {"numpy", "__future__", "sklearn", *sys.stdlib_module_names}


def package_of(module: str) -> str:
    """The layer package a module belongs to: the longest name in LAYERS that contains it."""
    return max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)


def installed_modules() -> dict[str, Path]:
    """Every module installed under ``gradparity``, by name, found through the import system, so
    that an editable install (whose sub-packages live in core/, backends/, reports/) counts too."""
    modules = {}
    for package in LAYERS:
        folder = Path(importlib.util.find_spec(package).origin).parent
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts[:-1], *(() if parts[-1] == "__init__" else parts[-1:])))
            modules.setdefault(name, path)
    return modules


def imported_names(module: str, path: Path, known: set[str]) -> set[str]:
    """Every module name ``module`` imports, anywhere in its source: ``import a.b`` gives ``a.b``;
    ``from a import b`` gives ``a.b`` when that is a module, else ``a``; relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each installed module -> the names it imports (inside ``gradparity`` and outside)."""
    modules = installed_modules()
    return {name: imported_names(name, path, set(modules)) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle among the modules of ``graph``: its strongly connected components
    with more than one module, or one module importing itself (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node] & graph.keys():
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def house_problems(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the house: upward (a lower layer importing a higher one),
    sideways (backends and reports importing each other), outside NumPy and the standard
    library from core, and every circle."""
    problems = []
    for module, names in sorted(graph.items()):
        home = package_of(module)
        for name in sorted(names):
            if name.split(".")[0] != "gradparity":
                if home == "gradparity.core" and name.split(".")[0] not in CORE_MAY_IMPORT:
                    problems.append(f"{module} imports {name}: core imports NumPy and the standard library only")
                continue
            target = package_of(name)
            if LAYERS[target] > LAYERS[home]:
                problems.append(f"{module} imports {name}: an upward import, from {home} to {target}")
            elif LAYERS[target] == LAYERS[home] and target != home:
                problems.append(f"{module} imports {name}: {home} and {target} never import each other")
    problems += [f"import circle: {' -> '.join(circle)} -> {circle[0]}" for circle in circles(graph)]
    return problems


def test_installed_code_keeps_the_house():
    graph = import_graph()
    assert {"gradparity.core.reference", "gradparity.backends.worker", "gradparity.reports.write",
            "gradparity.cli"} <= graph.keys()
    problems = house_problems(graph)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("graph, problem", [
    ({"gradparity.core.cases": {"gradparity.engine"}, "gradparity.engine": set()},
     "gradparity.core.cases imports gradparity.engine: an upward import, from gradparity.core to gradparity"),
    ({"gradparity.backends.worker": {"gradparity.bench"}, "gradparity.bench": set()},
     "an upward import, from gradparity.backends to gradparity"),
    ({"gradparity.reports.write": {"gradparity.backends"}, "gradparity.backends": set()},
     "gradparity.reports and gradparity.backends never import each other"),
    ({"gradparity.core.compare": {"torch"}}, "gradparity.core.compare imports torch: core imports NumPy"),
    ({"gradparity.cli": {"gradparity.bench"}, "gradparity.bench": {"gradparity.runner"},
      "gradparity.runner": {"gradparity.cli"}},
     "import circle: gradparity.bench -> gradparity.cli -> gradparity.runner -> gradparity.bench"),
    ({"gradparity.reports.render": {"gradparity.reports.render"}},
     "import circle: gradparity.reports.render -> gradparity.reports.render"),
])
def test_the_house_check_catches_what_it_forbids(graph, problem):
    assert any(problem in found for found in house_problems(graph)), house_problems(graph)


def test_the_house_check_allows_what_the_layers_allow():
    graph = {"gradparity.cli": {"gradparity.engine", "gradparity.core.cases", "rich"},
             "gradparity.engine": {"gradparity.backends", "gradparity.core.compare"},
             "gradparity.backends": {"gradparity.core.errors", "jax"},
             "gradparity.core.errors": set(), "gradparity.core.compare": {"numpy", "math"}}
    assert house_problems(graph) == []


def frameworks_imported_by(code: str, python: str = sys.executable, cwd: Path | None = None) -> str:
    """Run ``code`` in a fresh interpreter; the frameworks it left in sys.modules, space-separated."""
    probe = f"{code}\nimport sys; print(' '.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_gradparity_and_its_core_imports_no_framework():
    core = [name for name in installed_modules() if package_of(name) == "gradparity.core"]
    code = f"import {', '.join(core)}; gradparity.core.cases.build_case('seed-2layer')"
    assert frameworks_imported_by(code) == ""
    assert frameworks_imported_by("import gradparity, gradparity.cli, gradparity.backends, gradparity.reports") == ""


def test_this_install_claims_no_generic_name(tmp_path):
    """The environment the suite runs in (an editable install under ``make test``), outside the repository."""
    probe = "import importlib.util as u; print([n for n in ('core', 'backends', 'reports') if u.find_spec(n)])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.slow
def test_a_plain_install_is_gradparity_only(tmp_path):
    """In a fresh virtual environment, after a non-editable ``pip install`` of a copy of the
    repository (by this environment's pip; the dependencies lent from this environment), from
    another folder."""
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "latest"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
                              str(source)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    installed = Path(subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (installed / "lent-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, *args], capture_output=True, text=True, timeout=300, cwd=elsewhere)

    where = run("-c", "import gradparity, gradparity.core; print(gradparity.__file__, gradparity.core.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(Path(path).is_relative_to(installed) for path in where.stdout.split())
    for generic in ("core", "backends", "reports"):
        refused = run("-c", f"import {generic}")
        assert refused.returncode == 1 and f"ModuleNotFoundError: No module named '{generic}'" in refused.stderr
    help_text = run("-m", "gradparity", "--help")
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: gradparity")
    script = subprocess.run([str(venv / "bin" / "gradparity"), "--help"], capture_output=True, text=True,
                            timeout=300, cwd=elsewhere)
    assert script.stdout == help_text.stdout
    assert frameworks_imported_by("import gradparity.core", python, elsewhere) == ""
