"""The command line: the document's training output, JSON, plots, gradcheck, and one-line
errors with exit status 2 for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gradparity.backends import known
from gradparity.cli import exit_status, main
from gradparity.core.results import Summary
from shipped import assert_follows_its_shipped_schema

from rendered import labelled, networks, tally


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess, as a user would meet it."""
    return subprocess.run([sys.executable, "-m", "gradparity", *args], capture_output=True, text=True, timeout=300)


def test_train_prints_the_documents_cost_lines_and_writes_json(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert main(["train", "--iterations", "2000", "--print-every", "500", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cost after 0 iterations: 0.6931")
    assert [line.split()[2] for line in lines[:4]] == ["0", "500", "1000", "1500"]
    document = json.loads(out.read_text())
    assert_follows_its_shipped_schema(document)
    assert [entry["iteration"] for entry in document["costs"]] == [0, 500, 1000, 1500]
    assert document["costs"][0]["cost"] == pytest.approx(0.6931247519503794, rel=1e-12)
    assert 50.0 < document["accuracy"] <= 100.0
    assert any(line.startswith(f"accuracy: {document['accuracy']:g}%") for line in lines)


def test_train_with_adam_on_mini_batches_records_every_step(tmp_path, capsys):
    """400 flower examples in batches of 100 for 3 epochs: 12 steps, each cost on its batch."""
    out = tmp_path / "adam.json"
    assert main(["train", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "100", "--epochs", "3",
                 "--epsilon", "1e-7", "--print-every", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "with adam (learning_rate 0.01, beta1 0.9, beta2 0.999, epsilon 1e-07), batches of 100 (seed shuffle), " \
           "3 epochs: 12 steps" in " ".join(printed.split()) and max(map(len, printed.splitlines())) <= 100
    document = json.loads(out.read_text())
    assert document["training"]["hyperparameters"] == {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999,
                                                       "epsilon": 1e-7}
    assert document["training"]["optimizer"] == "adam" and document["training"]["steps"] == 12
    assert len(document["step_costs"]) == 12 and document["batch_sizes"] == [100] * 12
    assert document["epoch_costs"] == pytest.approx(np.mean(np.reshape(document["step_costs"], (3, 4)), axis=1))
    assert [entry["iteration"] for entry in document["costs"]] == [0, 4, 8]


def test_train_plot_writes_cost_curve_and_decision_boundary(tmp_path):
    assert main(["train", "--iterations", "300", "--plot", str(tmp_path / "plots")]) == 0
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["cost.png", "decision_boundary.png"]
    assert all((tmp_path / "plots" / name).stat().st_size > 5000 for name in files)


def test_train_on_user_csv_with_softmax(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([X, labels]), delimiter=",")
    assert main(["train", "--data", str(path), "--loss", "softmax-ce", "--hidden", "5", "--init", "xavier",
                 "--lr", "0.5", "--iterations", "200", "--print-every", "100"]) == 0
    trained = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trained "))
    assert networks(trained) == [("3-5-3", "sigmoid", "softmax-ce")]  # 3 features, 3 classes


def test_float32_training_is_float32(tmp_path):
    out = tmp_path / "t.json"
    assert main(["train", "--dtype", "float32", "--iterations", "10", "--print-every", "5", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["dtype"] == "float32"


def test_gradcheck_passes_and_fails_by_threshold(capsys):
    assert main(["gradcheck", "--hidden", "8,4", "--activation", "tanh", "--init", "xavier"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"checked (\d+) of (\d+)", out).groups() == ("65", "65") and out.rstrip().endswith("PASS")
    assert main(["gradcheck", "--hidden", "8,4", "--init", "xavier", "--threshold", "1e-14"]) == 1
    lines = capsys.readouterr().out.splitlines()
    why = " ".join(" ".join(lines[5:]).split())
    assert lines[4] == "FAIL" and why.startswith("why:")
    difference = float(re.search(r"= (\S+) \(threshold", lines[2]).group(1))
    noise = float(re.search(r"noise [^(]*about (\S+)", why).group(1))
    threshold = float(re.search(r"--threshold of (\S+)", why).group(1))
    assert threshold == 1e-14 and threshold < difference <= noise  # a failure no correct gradient could avoid


def test_gradcheck_of_a_catalogue_case(capsys):
    assert main(["gradcheck", "--case", "relu"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert networks(first) == [("2-8-4-1", "relu", "bce")] and re.search(r"m = (\d+)", first).group(1) == "400"


def test_gradcheck_samples_large_layers_and_says_so(capsys):
    assert main(["gradcheck", "--dataset", "digits", "--loss", "softmax-ce", "--hidden", "40",
                 "--init", "xavier"]) == 0
    assert "seeded sample of W1" in capsys.readouterr().out


def test_help_explains_every_option():
    for command in ("train", "gradcheck", "run", "report"):
        result = run_cli(command, "--help")
        assert result.returncode == 0
        for option in {"train": ["--dataset", "--hidden", "--activation", "--loss", "--init", "--lr", "--iterations",
                                 "--print-every", "--dtype", "--json", "--plot", "--data"],
                       "gradcheck": ["--threshold", "--hidden"],
                       "run": ["--case", "--backends", "--dtype", "--epochs", "--optimizer", "--batch-size", "--json", "--include-arrays", "--params"],
                       "report": ["--out", "--case", "--backends"]}[command]:
            assert option in result.stdout, (command, option)


def test_shards_run_apart_merge_into_one_report(tmp_path):
    for k in (1, 2):
        done = run_cli("run", "--case", "single-example", "--backends", "numpy,finite-diff", "--shard", f"{k}/2",
                       "--json", str(tmp_path / f"shard{k}.json"))
        assert done.returncode == 0, done.stderr
    merged = run_cli("report", "--merge", str(tmp_path / "shard1.json"), str(tmp_path / "shard2.json"),
                     "--out", str(tmp_path / "report"))
    assert merged.returncode == 0, merged.stderr
    document = json.loads((tmp_path / "report" / "report.json").read_text())
    assert document["summary"]["passed"] == 4 and document["options"]["merged_from"] == ["shard1", "shard2"]


def explained(stdout: str) -> tuple[str, ...]:
    """The backend, its framework version, case, dtype and status of ``gradparity explain``'s
    first line."""
    return re.fullmatch(r"(\S+) \((.+)\) on (\S+) (float\d+): (\w+)", stdout.splitlines()[0]).groups()


def test_explain_names_the_deviating_op_of_an_injected_float32_matmul(tmp_path):
    (tmp_path / "fake_backend_float32matmul.py").write_text("from fake_backends import Float32Matmul as Adapter\n")
    code = ("import sys; from gradparity.backends import REGISTRY, BackendEntry; "
            "REGISTRY['f32'] = BackendEntry('fake_backend_float32matmul'); "
            "from gradparity.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{Path(__file__).parent}"}
    done = subprocess.run([sys.executable, "-c", code, "explain", "f32", "--case", "seed-2layer"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stderr
    assert explained(done.stdout) == ("f32", f"numpy {np.__version__}", "seed-2layer", "float64", "fail")
    assert "deviates: matmul" in done.stdout and "np.dot(tx, ty)" in done.stdout
    [reproducer] = [label for label, _ in labelled(done.stdout) if label.startswith("reproducer")]
    assert "AssertionError" in reproducer  # how the pasted code fails while the defect exists
    prose = done.stdout[:done.stdout.index("  reproducer")].splitlines()
    assert max(map(len, prose)) <= 100, "everything but the pasteable reproducer fits 100 columns"


def test_explain_probes_a_passing_result_too_and_takes_one_backend():
    done = run_cli("explain", "numpy", "--case", "tanh", "--dtype", "float32")
    assert done.returncode == 0, done.stderr
    assert explained(done.stdout) == ("numpy", f"numpy {np.__version__}", "tanh", "float32", "pass")
    said = dict(labelled(done.stdout))
    assert "pattern" in said and "deviates" not in said  # no single operation deviates when probed alone
    assert said["probed alone"].split(", ")[:5] == ["matmul", "add", "tanh", "tanh_grad", "sigmoid"]


def without(tmp_path: Path, *frameworks: str) -> dict[str, str]:
    """An environment in which the command and its workers find none of ``frameworks``
    installed: a ``sitecustomize`` marks them absent before anything runs."""
    folder = tmp_path / "without"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({frameworks}, None))\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def gradparity_command(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed ``gradparity`` entry point, as a user types it."""
    command = Path(sys.executable).with_name("gradparity")
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def skip_line(backend: str, runs: str, extra: str) -> str:
    return f"– {backend} skipped on {runs}: {extra} is not installed (pip install 'gradparity[{extra}]')"


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_framework_asked_for_and_not_installed_says_why_and_exits_3(tmp_path, command):
    """Nothing ran: the reason on the terminal, exit status 3 with a line saying why, the title
    on one line, no time line of zeros."""
    done = gradparity_command(command, "--case", "seed-2layer", "--backends", "torch",
                              env=without(tmp_path, "torch"), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines()[0] == "gradparity: every backend against the NumPy reference"
    assert skip_line("torch", "seed-2layer × float64, float32", "torch") in " ".join(done.stdout.split())
    assert "longest worker" not in done.stdout
    assert done.stderr.strip() == "not verified: every result was skipped: nothing was compared with the reference"


def test_the_frameworks_that_ran_are_reported_and_the_one_that_did_not_exits_3(tmp_path):
    out = tmp_path / "run.json"
    done = gradparity_command("run", "--case", "seed-2layer", "--backends", "numpy,torch", "--json", str(out),
                              env=without(tmp_path, "torch"), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    document = json.loads(out.read_text())
    assert [result["backends"]["numpy"]["status"] for result in document["results"]] == ["pass", "pass"]
    assert skip_line("torch", "seed-2layer × float64, float32", "torch") in " ".join(done.stdout.split())
    assert done.stderr.strip() == "not verified: torch asked for with --backends but ran on no case (skipped above)"


def test_the_default_run_with_frameworks_missing_exits_0_and_names_each_skipped_backend(tmp_path):
    done = gradparity_command("run", "--case", "seed-2layer",
                              env=without(tmp_path, "torch", "tensorflow", "keras", "jax", "autograd"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    frameworks = len(known()) - 2  # all but numpy and finite-diff, the plugins' (autograd) included
    assert tally(said) == {"pass": 4, "known deviation": 0, "stale": 0, "fail": 0, "error": 0, "skipped": 2 * frameworks}
    for backend, extra in [("jax", "jax"), ("torch", "torch"), ("tensorflow", "tensorflow"),
                           ("keras-tensorflow", "keras"), ("keras-jax", "keras"), ("keras-torch", "keras")]:
        assert skip_line(backend, "seed-2layer × float64, float32", extra) in said
    assert done.stderr == ""


def document_of(statuses: dict[str, list[str]], strict: bool = False) -> SimpleNamespace:
    """What the exit status reads of a document whose results have, per backend, these statuses
    (one result per status): each result's backend statuses, the summary, strictness."""
    runs = max(map(len, statuses.values()))
    results = [SimpleNamespace(backends={name: SimpleNamespace(status=seen[i])
                                         for name, seen in statuses.items() if i < len(seen)}) for i in range(runs)]
    summary = Summary.of(results)
    return SimpleNamespace(results=results, summary=summary, options=SimpleNamespace(strict=strict))


@pytest.mark.parametrize("statuses, asked, strict, expected", [
    ({"numpy": ["pass"], "torch": ["skipped"]}, None, False, 0),  # the default run: skips are allowed
    ({"numpy": ["pass"], "torch": ["skipped"]}, ["numpy", "torch"], False, 3),
    ({"numpy": ["pass"], "keras-jax": ["skipped"], "keras-torch": ["pass"]}, ["keras"], False, 3),  # a group's member
    ({"numpy": ["pass", "pass"], "torch": ["pass", "skipped"]}, ["torch"], False, 0),  # it ran on one case
    ({"numpy": ["skipped"], "torch": ["skipped"]}, None, False, 3),  # nothing compared at all
    ({"numpy": ["pass"], "torch": ["fail"], "jax": ["skipped"]}, ["torch", "jax"], False, 1),  # a failure first
    ({"numpy": ["pass"], "jax": ["known_deviation"], "torch": ["skipped"]}, ["jax", "torch"], True, 1),
    ({"numpy": ["pass"], "jax": ["known_deviation"]}, ["jax"], False, 0),
])
def test_exit_status_of_a_run(statuses, asked, strict, expected):
    assert exit_status(document_of(statuses, strict), asked) == expected
