"""What ``gradparity backends`` lists: every backend, built-in and plugin, with its framework's
version, its role, where it comes from, whether it can run here and, where not, what to install.
Read from package metadata and the plugins' descriptions: no framework is imported."""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict, dataclass

from gradparity.backends import (REGISTRY, BackendEntry, entry, install_hint, known, missing_package,
                                 missing_requirement, plugins)

HEADINGS = ("backend", "role", "framework", "from", "runs")


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
            rows.append(BackendInfo(name, "?", "?", plugin.origin,
                                    f"refused: a built-in backend is called {name}", None))
    return rows


def describe(name: str, found: BackendEntry) -> BackendInfo:
    """One backend's row, from its entry."""
    origin = "built-in" if found.origin == "gradparity" else found.origin
    if found.refused:
        return BackendInfo(name, "?", "?", origin, found.refused, None)
    package = missing_package(found)
    install = install_hint(found, package) if package else None
    return BackendInfo(name, found.role, installed_versions(found), origin, missing_requirement(found), install)


def installed_versions(found: BackendEntry) -> str:
    """The installed version of each package the backend needs, or of its own engine's."""
    packages = found.requires or (found.framework,)
    return ", ".join(f"{package} {version_of(package)}" for package in packages)


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def print_inventory(rows: list[BackendInfo]) -> None:
    """The table (backend, role, framework versions, origin, whether it runs here), then for
    each backend that cannot run why not, and what to install where that would help."""
    table = [HEADINGS] + [(row.name, row.role, row.frameworks, row.origin, "yes" if row.runs is None else "no")
                          for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADINGS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    print("\n".join([lines[0], "─" * len(lines[0]), *lines[1:]]))
    for row in rows:
        if row.runs is not None:
            hint = f"; to run it: {row.install}" if row.install else ""
            print(f"{row.name}: {row.runs}{hint}")


def inventory_document(rows: list[BackendInfo]) -> dict:
    """The rows as JSON data (``gradparity backends --json``)."""
    return {"backends": [asdict(row) for row in rows]}
