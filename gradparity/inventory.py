"""What ``gradparity backends`` lists: every backend, built-in and plugin, with its framework's
version, its role, where it comes from, whether it can run here and, where not, what to install.
Read from package metadata and the plugins' descriptions: no framework is imported."""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict, dataclass

from rich import box
from rich.console import Console
from rich.table import Table

from gradparity import __version__
from gradparity.backends import (REGISTRY, BackendEntry, entry, install_hint, known, missing_package,
                                 missing_requirement, plugins)

WIDTH = 100


@dataclass(frozen=True)
class BackendInfo:
    """One backend as ``gradparity backends`` shows it: ``runs`` is None where it can run here,
    else why not; ``install`` the command that would make it run, where one would."""

    name: str
    role: str
    frameworks: str
    origin: str
    runs: str | None
    install: str | None


def inventory() -> list[BackendInfo]:
    """Every backend: the built-in ones, each installed plugin's, and any plugin that cannot
    be used (a name a built-in already has, a description that fails to load or is refused)."""
    rows = [describe(name, entry(name)) for name in known()]
    for name, plugin in plugins().items():
        if name in REGISTRY:
            rows.append(BackendInfo(name, "?", "?", f"{plugin.origin} (plugin)",
                                    f"refused: a built-in backend is called {name}", None))
    return rows


def describe(name: str, found: BackendEntry) -> BackendInfo:
    """One backend's row, from its entry."""
    origin = f"gradparity {__version__} (built-in)" if found.origin == "gradparity" else f"{found.origin} (plugin)"
    if found.refused:
        return BackendInfo(name, "?", "?", origin, found.refused, None)
    package = missing_package(found)
    install = install_hint(found, package) if package else None
    return BackendInfo(name, found.role, installed_versions(found), origin, missing_requirement(found), install)


def installed_versions(found: BackendEntry) -> str:
    """The installed version of each package the backend needs (numpy for one that needs none)."""
    packages = found.requires or ("numpy",)
    return ", ".join(f"{package} {version_of(package)}" for package in packages)


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def print_inventory(rows: list[BackendInfo]) -> None:
    """The table: backend, role, framework versions, origin, and whether it runs here."""
    console = Console(width=WIDTH, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for heading in ("backend", "role", "framework", "from", "runs here"):
        table.add_column(heading, overflow="fold")
    for row in rows:
        runs = "yes" if row.runs is None else f"no: {row.runs}"
        table.add_row(row.name, row.role, row.frameworks, row.origin, runs)
    console.print(table)
    hints = [row for row in rows if row.install]
    for row in hints:
        console.print(f"to run {row.name}: {row.install}", soft_wrap=True)


def inventory_document(rows: list[BackendInfo]) -> dict:
    """The rows as JSON data (``gradparity backends --json``)."""
    return {"backends": [asdict(row) for row in rows]}
