"""The public API: what ``import gradparity`` offers, and a learner's script, run as a user runs
it (a file, ``python -c``, in a subprocess) and checked against what it says it prints. The
Python API's example script and the pytest one-liner are run by the documentation's executed
commands (docs/how-to/pytest-and-api.md, through test_docs.py)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gradparity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_public_names_are_the_documented_ones():
    assert sorted(gradparity.__all__) == sorted(
        ["CATALOGUE", "BackendEntry", "BackpropCheck", "BackpropError", "Case", "GradparityError", "NetworkSpec",
         "RunOptions", "Training", "__version__", "assert_backprop_matches", "build_case", "check", "default_direction",
         "hessian_vector_product", "initial_params", "make_case", "run", "shutdown", "validate_document", "write_report"])
    assert all(hasattr(gradparity, name) for name in gradparity.__all__)
    assert gradparity.run is gradparity.engine.run and gradparity.build_case is gradparity.core.cases.build_case


# A learner's script: their backprop beside it, gradparity.check at module level, no __main__ guard.
CHECK_SCRIPT = """\
import numpy as np
import gradparity
from backprop import backprop

X = np.random.default_rng(1).standard_normal((2, 8))
Y = (X[0] > X[1]).astype(float)[np.newaxis, :]
parameters = gradparity.initial_params(gradparity.NetworkSpec((2, 4, 1), "sigmoid", "bce"), "xavier")
result = gradparity.check(backprop, X, Y, parameters, backends=["torch"])
print(result.verdict, result.corroboration["torch"]["status"])
"""


@pytest.fixture
def learner_folder(tmp_path) -> Path:
    """A folder holding the learner's ``backprop.py`` (the repository's example)."""
    shutil.copy(EXAMPLES / "backprop.py", tmp_path / "backprop.py")
    return tmp_path


@pytest.mark.torch
@pytest.mark.skipif(not importlib.util.find_spec("torch"), reason="torch is not installed")
@pytest.mark.parametrize("how", ["script", "-c"])
def test_check_at_a_scripts_top_level_runs_its_framework(learner_folder, how):
    """The same lines as ``python check.py`` and as ``python -c``: torch's worker runs and agrees."""
    if how == "script":
        (learner_folder / "check.py").write_text(CHECK_SCRIPT)
        done = run_python("check.py", cwd=learner_folder)
    else:
        done = run_python("-c", CHECK_SCRIPT, cwd=learner_folder)
    assert done.stdout.split() == ["pass", "pass"], done.stderr


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """This environment's interpreter with ``args``, in ``cwd``."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
