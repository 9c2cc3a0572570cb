"""``import core`` (and the backend registry) must not import any framework."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("jax", "torch", "tensorflow", "keras", "matplotlib", "sklearn")


def test_importing_core_and_the_registry_imports_no_framework():
    code = (
        "import sys, core, core.cli, core.engine, core.compare, core.cases, core.reference, backends;"
        "from core.cases import build_case; build_case('seed-2layer');"
        f"print(' '.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported {result.stdout.strip()}"
