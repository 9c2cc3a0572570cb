"""The public API: what ``import gradparity`` offers, and the README's example, run as written
and checked against what its comments say it prints."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

import gradparity

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    """The first ``python`` code block after the README's "Python API" heading."""
    text = README.read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_public_names_are_the_documented_ones():
    assert sorted(gradparity.__all__) == sorted(
        ["CATALOGUE", "BackendEntry", "BackpropCheck", "BackpropError", "Case", "GradparityError", "NetworkSpec",
         "RunOptions", "Training", "__version__", "assert_backprop_matches", "build_case", "check", "initial_params",
         "make_case", "run", "validate_document", "write_report"])
    assert all(hasattr(gradparity, name) for name in gradparity.__all__)
    assert gradparity.run is gradparity.engine.run and gradparity.build_case is gradparity.core.cases.build_case


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.skipif(not (importlib.util.find_spec("jax") and importlib.util.find_spec("torch")),
                    reason="the README's example runs jax and torch, and one is not installed")
def test_the_readme_example_prints_what_it_says(tmp_path, monkeypatch):
    code = readme_example()
    expected = [line.split("#")[-1].strip() for line in code.splitlines() if line.startswith("print(")]
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), {})
    assert printed.getvalue().splitlines() == expected
    report = tmp_path / "parity-report"
    assert {"report.html", "report.md", "report.json"} <= {path.name for path in report.iterdir()}
    assert "mine" in (report / "report.md").read_text()
