"""The command line as a newcomer meets it: each command quoted in the issue, run again, gives
the improved behaviour (explained numbers, forgiving data input, options that fail fast, help
with defaults and examples)."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from gradparity import __version__
from gradparity.cli import build_parser, divergence, gradcheck_failure, main
from gradparity.core.datasets import load_dataset
from gradparity.core.gradcheck import GradcheckResult
from gradparity.core.optimizers import Training
from usage import refused


def test_the_error_prefix_is_said_once_and_version_prints(tmp_path):
    assert refused(tmp_path, [], "give a command") == (
        "gradparity: error: give a command: train, gradcheck, check, run, report, explain, bench (gradparity --help "
        "says what each does)")
    assert refused(tmp_path, ["run", "--timeout", "0"], "got 0").startswith("gradparity: error: run: argument --timeout")
    version = subprocess.run([sys.executable, "-m", "gradparity", "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"gradparity {__version__}"


def test_gradcheck_explains_a_failure_by_tiny_seed_gradients(capsys):
    assert main(["gradcheck", "--hidden", "16,8", "--activation", "tanh"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[4] == "FAIL" and lines[5].startswith("why: the difference is no larger than the rounding noise")
    assert re.findall(r"--init (\w+)", " ".join(lines[5:])) == ["seed", "xavier"]  # the one used, the one to use
    assert max(map(len, lines)) <= 100
    assert main(["gradcheck", "--hidden", "16,8", "--activation", "tanh", "--init", "xavier"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")


def test_gradcheck_names_a_difference_above_the_noise_as_a_disagreement():
    result = GradcheckResult(1e-3, {}, 10, 0, 10, [], {}, {}, noise_floor=1e-9, gradient_norm=0.5)
    assert not result.within_noise
    assert gradcheck_failure(result, argparse.Namespace(case=None, init="xavier", threshold=1e-7)) == (
        "the difference is 1000000× the rounding noise of central differences here (1.0e-09): the analytic and "
        "numerical gradients disagree")


def test_gradcheck_of_a_case_names_the_dtype(capsys):
    assert main(["gradcheck", "--case", "seed-2layer", "--dtype", "float32"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "network 2-4-1 sigmoid/bce, m = 400: central differences in float64 (h = 1e-06), of the parameters and data "
        "rounded to float32")
    assert main(["gradcheck", "--hidden", "8", "--init", "xavier"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("central differences in float64 (h = 1e-06)")


def write_csv(path, X: np.ndarray, labels: np.ndarray, header: str | None) -> None:
    rows = "\n".join(",".join(repr(float(value)) for value in row) for row in np.column_stack([X.T, labels]))
    path.write_text((f"{header}\n" if header else "") + rows + "\n")


def test_train_reads_a_csv_with_a_header_row(tmp_path, capsys):
    X, Y = load_dataset("moons", "bce")
    write_csv(tmp_path / "named.csv", X, Y[0], "x1,x2,label")
    write_csv(tmp_path / "bare.csv", X, Y[0], None)
    outputs = []
    for name in ("named.csv", "bare.csv"):
        assert main(["train", "--data", str(tmp_path / name), "--iterations", "50", "--print-every", "50"]) == 0
        outputs.append(capsys.readouterr().out.splitlines()[:3])  # the costs and the accuracy
    assert outputs[0] == outputs[1] and outputs[0][0].startswith("cost after 0 iterations: 0.693")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", ["train", "gradcheck", "check", "run", "report", "explain", "bench"])
def test_every_help_states_every_default_and_ends_with_examples_that_parse(name):
    parser = subcommands()[name]
    text = parser.format_help()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert "default" in parser._get_formatter()._get_help_string(action), (name, action.option_strings)
    examples = text[text.rindex("examples:"):].splitlines()[1:]
    assert 2 <= len(examples) <= 3 and all(line.startswith(f"  gradparity {name}") for line in examples)
    for line in examples:
        assert build_parser().parse_args(shlex.split(line)[1:]).command == name


def action(parser: argparse.ArgumentParser, option: str) -> argparse.Action:
    return next(action for action in parser._actions if option in action.option_strings)


def option_help(parser: argparse.ArgumentParser, option: str) -> str:
    """The help ``--help`` prints for ``option``, its default filled in, on one line."""
    return " ".join(parser._get_formatter()._expand_help(action(parser, option)).split())


def default_in(text: str) -> str:
    """What an option's help says its default is: the ``(default: …)`` it ends with."""
    return re.search(r"\(default: (.*)\)$", text).group(1)


def test_help_says_what_a_newcomer_asked(capsys):
    helps = {name: " ".join(parser.format_help().split()) for name, parser in subcommands().items()}
    assert ("By default it is model() of the document (the derivation of backpropagation gradparity starts from): "
            "full-batch gradient descent on a 2-4-1 sigmoid network and the flower data") in helps["train"]
    run, report, train = (subcommands()[name] for name in ("run", "report", "train"))
    learning_rate = option_help(run, "--lr")
    assert "case" in default_in(learning_rate)  # the case's own, unless the network is the learner's
    assert re.search(r"([\d.]+) for (--\w+)", default_in(learning_rate)).groups() == ("0.5", "--params")
    assert default_in(option_help(run, "--device")) == action(run, "--device").default == "cpu"
    assert "framework" in option_help(run, "--device")
    assert default_in(option_help(run, "--activation")) == "sigmoid" and "hidden" in option_help(run, "--activation")
    assert "current directory" in option_help(report, "--out")  # what the folder is relative to
    assert re.findall(r"([XY]) \((\w+), (\w+)\)", option_help(train, "--data")) == [
        ("X", "n_features", "m"), ("Y", "n_outputs", "m"), ("X", "2", "400"), ("Y", "1", "400")]  # then an example
    assert "example per column" in option_help(train, "--data")


def test_a_diverging_training_says_so_and_exits_1(capsys):
    assert main(["train", "--lr", "1e6", "--iterations", "50", "--print-every", "25"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("final cost after 50 iterations: 369455.")
    assert lines[-1] == "DIVERGED: the cost grew from 0.693125 to 369456; lower --lr (now 1e+06)"
    assert divergence([0.7, float("nan")], Training()) == "the final cost is nan; lower --lr (now 0.5)"
    assert divergence([0.7, float("inf"), 0.1], Training()) == "the cost of epoch 2 is inf; lower --lr (now 0.5)"
    assert divergence([0.7, 0.3], Training()) is None


def test_train_prints_and_plots_the_final_cost_and_notes_a_skipped_boundary(tmp_path, capsys):
    assert main(["train", "--iterations", "30", "--print-every", "10", "--plot", str(tmp_path / "flower")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == [
        "cost after 0 iterations", "cost after 10 iterations", "cost after 20 iterations",
        "final cost after 30 iterations"]
    assert sorted(p.name for p in (tmp_path / "flower").iterdir()) == ["cost.png", "decision_boundary.png"]
    assert main(["train", "--dataset", "breast-cancer", "--init", "xavier", "--iterations", "5",
                 "--plot", str(tmp_path / "cancer")]) == 0
    assert ("note: decision boundary not drawn: the data has 30 features; it is drawn for 2 features only"
            in capsys.readouterr().out.splitlines())
    assert [p.name for p in (tmp_path / "cancer").iterdir()] == ["cost.png"]


def test_run_summary_cells_say_the_share_of_tolerance_and_the_quantity(capsys):
    """A real run: the control is bit for bit (``✓ 0``, no quantity); finite differences give
    their share of tolerance with the quantity closest to it on the line below."""
    assert main(["run", "--case", "seed-2layer", "--backends", "numpy,finite-diff", "--dtype", "float64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("seed-2layer"))
    control, finite_diff = lines[at].split()[2:4], lines[at].split()[4:]
    assert control == ["✓", "0"] and finite_diff[0] == "✓" and finite_diff[1].endswith("×")
    assert 0 < float(finite_diff[1].rstrip("×")) < 1
    assert lines[at + 1].split() in (["dW1"], ["db1"], ["dW2"], ["db2"], ["cost"])
    assert max(map(len, lines)) <= 100


def test_output_piped_into_head_stops_quietly():
    """``gradparity train | head -1``: the reader leaves early; no traceback, the pipe's status."""
    train = subprocess.Popen([sys.executable, "-m", "gradparity", "train", "--iterations", "3000", "--print-every", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert train.stdout.readline().startswith(b"cost after 0 iterations")
    train.stdout.close()
    assert train.wait(timeout=120) == 141 and train.stderr.read() == b""
