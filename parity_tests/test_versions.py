"""One backend at two versions side by side, through the command a user types: the NumPy control
pinned to an older NumPy (``--backends numpy==2.3.5,numpy``), its environment made with uv in a
fresh cache folder and found ready the second time; the result document's two columns and the
between-versions section; an uninstallable requirement as that column's error alone; shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradparity.backends import known
from gradparity.engine import shares
from gradparity.venvs import reason, source_of
from gradparity.merge import load_documents, merge
from gradparity.versions import gap, version_groups

GRADPARITY = str(Path(sys.executable).with_name("gradparity"))
OLDER = "numpy==2.3.5"  # an older NumPy with a wheel for this Python: small, and quick to install
CASES = ("--case", "seed-2layer", "--case", "tanh")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A cache folder of this module's own: the first run makes the environment."""
    return tmp_path_factory.mktemp("cache")


def gradparity(*arguments: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The installed command, from another folder, with ``cache`` as the cache folder."""
    return subprocess.run([GRADPARITY, *arguments], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "GRADPARITY_CACHE_DIR": str(cache)})


@pytest.fixture(scope="module")
def first_run(cache, tmp_path_factory):
    """The first cross-version run: it makes the environment (a download of NumPy where uv's own
    cache lacks it, so this can take over 10 s on a new machine)."""
    folder = tmp_path_factory.mktemp("first")
    done = gradparity("run", "--backends", f"{OLDER},numpy", *CASES, "--json", "run.json", cache=cache, cwd=folder)
    return done, json.loads((folder / "run.json").read_text())


def test_two_versions_are_two_columns_and_their_gap_is_measured(first_run):
    done, document = first_run
    assert done.returncode == 0, done.stderr
    assert f"{OLDER}: making its environment with uv" in done.stderr and "environment ready in" in done.stderr
    frameworks = document["environment"]["frameworks"]
    assert frameworks[OLDER] == "numpy 2.3.5" and frameworks["numpy"] == f"numpy {np.__version__}"
    assert document["options"]["backends"] == [OLDER, "numpy"]
    comparisons = document["versions"]
    assert [(c["case"], c["dtype"]) for c in comparisons] == [(case, dtype) for case in ("seed-2layer", "tanh")
                                                              for dtype in ("float64", "float32")]
    for comparison in comparisons:
        assert comparison["columns"] == [OLDER, "numpy"] and comparison["versions"] == ["numpy 2.3.5", frameworks["numpy"]]
        gaps = {gap_["quantity"]: gap_ for gap_ in comparison["quantities"]}
        assert {"cost", "dW1", "db2", "A1", "A2", "trajectory cost", "trajectory W1"} <= set(gaps)
        for each in gaps.values():  # the control is NumPy itself: a version moves its last digits at most
            assert 0 <= each["ulps"] < 64 and (each["ulps"] == 0) == (each["differing"] == 0), each
        assert {"matmul", "transpose_matmul", "sum"} <= {op["op"] for op in comparison["ops"]}
        bound = 1e-12 if comparison["dtype"] == "float64" else 1e-6  # against NumPy in float64
        for op in comparison["ops"]:
            assert len(op["rel_errors"]) == 2 and all(error < bound for error in op["rel_errors"]), op


def test_the_second_run_finds_the_environment_ready(first_run, cache, tmp_path):
    done = gradparity("run", "--backends", f"{OLDER},numpy", "--case", "seed-2layer", "--dtype", "float64",
                      cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "making its environment" not in done.stderr
    listed = gradparity("envs", "list", cache=cache, cwd=tmp_path)
    assert listed.stdout.startswith(OLDER) and len(listed.stdout.splitlines()) == 1, listed.stdout


def test_shards_keep_a_backends_versions_together_and_merge_their_gaps(first_run, cache, tmp_path):
    for k in (1, 2):
        done = gradparity("run", "--backends", f"{OLDER},numpy", *CASES, "--shard", f"{k}/2", "--json",
                          f"share{k}.json", cache=cache, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    document = merge(load_documents([str(tmp_path / "share1.json"), str(tmp_path / "share2.json")]))
    assert [c.columns for c in document.versions] == [[OLDER, "numpy"]] * len(document.versions)
    pairs = sorted((c.case, c.dtype) for c in document.versions)
    assert pairs == sorted((c["case"], c["dtype"]) for c in first_run[1]["versions"])


def test_an_uninstallable_version_is_its_columns_error_and_the_others_run(cache, tmp_path):
    done = gradparity("run", "--backends", "numpy==0.0.1,numpy", "--case", "seed-2layer", "--dtype", "float64",
                      "--json", "run.json", cache=cache, cwd=tmp_path)
    [result] = json.loads((tmp_path / "run.json").read_text())["results"]
    failed, other = result["backends"]["numpy==0.0.1"], result["backends"]["numpy"]
    assert failed["status"] == "error" and failed["reason"].startswith("numpy==0.0.1: "), failed["reason"]
    assert "numpy==0.0.1" in failed["reason"][len("numpy==0.0.1: "):] and "\n" not in failed["reason"]
    assert other["status"] == "pass" and done.returncode == 1


def test_envs_clear_removes_what_it_names_and_refuses_what_is_not_there(first_run, cache, tmp_path):
    refused = gradparity("envs", "clear", "numpy==1.0", cache=cache, cwd=tmp_path)
    assert refused.returncode == 2 and "no environment 'numpy==1.0' to clear" in refused.stderr
    cleared = gradparity("envs", "clear", OLDER, cache=cache, cwd=tmp_path)
    assert cleared.stdout.startswith("removed 1 environment from"), cleared.stdout
    assert "no environments in" in gradparity("envs", "list", cache=cache, cwd=tmp_path).stdout


def test_the_gap_between_two_numbers_is_counted_in_ulps_of_the_dtype():
    one = np.float64(1.0)
    assert gap("cost", "cost", one, np.nextafter(one, 2), "float64").ulps == 1
    assert gap("cost", "cost", 1.0, 1.0 + 3 * np.spacing(np.float32(1)), "float32").ulps == pytest.approx(3)
    same = gap("dW1", "gradients", np.array([[0.5, np.nan]]), np.array([[0.5, np.nan]]), "float64")
    assert (same.ulps, same.differing, same.total) == (0, 0, 2)
    signed = gap("dW1", "gradients", np.array([0.0, 2.0]), np.array([-0.0, 2.0]), "float64")
    assert signed.differing == 1 and signed.ulps == 0  # -0.0 is another bit pattern, at no distance
    assert gap("A1", "activations", np.zeros((2, 3)), np.zeros((3, 2)), "float64").ulps == np.inf


def test_a_backends_versions_share_a_shard_and_form_a_group():
    backends = ["jax==0.4.30", "numpy", "jax"]
    assert version_groups(backends) == {"jax": ["jax==0.4.30", "jax"]}
    for k in (1, 2, 3):
        assigned = shares(4, backends, k, 3)
        assert assigned["jax==0.4.30"] == assigned["jax"]
    every = [index for k in (1, 2, 3) for index in shares(4, backends, k, 3)["jax"]]
    assert sorted(every) == [0, 1, 2, 3]


def test_uvs_reason_is_one_line():
    said = ["Using Python 3.11.7 environment at: /tmp/x", "error: No solution found when resolving dependencies",
            "cause: Because there is no version of numpy==0.0.1 and you require numpy==0.0.1, we can",
            "      conclude that your requirements are unsatisfiable."]
    assert reason(said) == ("No solution found when resolving dependencies: Because there is no version of "
                            "numpy==0.0.1 and you require numpy==0.0.1, we can conclude that your requirements are "
                            "unsatisfiable.")
    assert reason(["  × No solution found", "  ╰─▶ Because numpy==0.0.1 is missing"]) == ("No solution found: "
                                                                                          "Because numpy==0.0.1 is missing")
    assert reason(["error: Failed to fetch: `https://pypi.org/simple/numpy/`"]) == "Failed to fetch: `https://pypi.org/simple/numpy/`"
    assert reason(["something went wrong", "exit"]) == "exit"


def test_a_source_folders_egg_info_first_on_the_path_does_not_hide_the_install(tmp_path, monkeypatch):
    """``python -m pytest`` in the source folder puts it, with the ``gradparity.egg-info`` that
    setuptools leaves there, first on ``sys.path``: the environment still gets gradparity from
    where it is installed (editable, from this repository, by ``make test``), not
    ``gradparity==0.1.0`` from a registry that does not have it."""
    metadata = tmp_path / "gradparity.egg-info"
    metadata.mkdir()
    (metadata / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: gradparity\nVersion: 0.1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert source_of("gradparity") == ["-e", str(Path(__file__).resolve().parents[1])]


@pytest.mark.autograd
def test_a_plugins_backend_at_another_version_runs_with_the_plugin_installed_beside_it(cache, tmp_path):
    """The pinned environment gets the plugin's package from where it is installed here (5 s with
    uv's downloads cached; on a new machine uv downloads autograd 1.7.0, NumPy and SciPy first)."""
    if "autograd" not in known():
        pytest.skip("the autograd plugin is not installed (make installs plugins/gradparity-autograd)")
    done = gradparity("run", "--backends", "autograd==1.7.0,autograd", "--case", "seed-2layer", "--dtype", "float64",
                      "--json", "run.json", cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "run.json").read_text())
    assert document["environment"]["frameworks"]["autograd==1.7.0"].startswith("autograd 1.7.0 (numpy ")
    [comparison] = document["versions"]
    assert comparison["columns"] == ["autograd==1.7.0", "autograd"] and comparison["quantities"]
