"""Shared fixtures; torch is imported before tensorflow wherever both end up in one process
(the other order is known to crash on import)."""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import settings

from gradparity import shutdown

if importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401  (import order: torch before tensorflow)

settings.register_profile("default", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_report_header(config) -> list[str]:
    """The frameworks this run can reach, as array-api-tests puts the library in the header."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("numpy", "jax", "torch", "tensorflow", "keras"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} missing")
    return ["gradparity frameworks: " + ", ".join(found)]


@pytest.fixture
def flower_case():
    from gradparity.core.cases import build_case

    return build_case("seed-2layer")


@pytest.fixture(scope="module", autouse=True)
def warm_workers_end_with_their_module():
    """The backends' workers stay warm between the runs of one test file and end with it, so
    that no file finds another's workers (its timings, set-up and compile included, are its own)
    and idle frameworks do not pile up in a session's memory."""
    yield
    shutdown()


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The documentation site, built once per test process as ``make docs`` builds it."""
    from documented import ROOT, build_site

    folder = tmp_path_factory.mktemp("site")
    built = build_site(ROOT / "mkdocs.yml", folder)
    assert built.returncode == 0, built.stderr
    return folder
