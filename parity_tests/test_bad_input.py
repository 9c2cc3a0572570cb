"""Bad input, as a user meets it: every row runs the installed ``gradparity`` in a folder of
the user's files and is refused in one line naming the offending value, with exit status 2,
before any work (nothing on stdout, no file written over)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from usage import refused

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "backprop.py"
USERS_FILE = "a user's file"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A user's folder: data and parameter files good and bad, and a file named ``taken``."""
    folder = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    (folder / "bad.csv").write_text("1,2,0\n3,x,1\n")
    (folder / "named.csv").write_text("x1,x2,label\n0.5,-1.2,1\n0.1,0.2,0\n")
    np.savez(folder / "nan.npz", X=np.array([[np.nan, 1.0]]), Y=np.array([[0.0, 1.0]]))
    np.savez(folder / "rows.npz", X=rng.standard_normal((50, 3)), Y=(rng.random((50, 1)) > 0.5).astype(float))
    np.savez(folder / "points.npz", X=rng.standard_normal((2, 20)), Y=(rng.random((1, 20)) > 0.5).astype(float))
    np.savez(folder / "mine.npz", W1=rng.standard_normal((3, 2)), b1=np.zeros((3, 1)),
             W2=rng.standard_normal((1, 3)), b2=np.zeros((1, 1)))
    np.savez(folder / "three.npz", W1=rng.standard_normal((4, 2)), b1=np.zeros((4, 1)),
             W2=rng.standard_normal((3, 4)), b2=np.zeros((3, 1)))
    np.savez(folder / "direction-b2-missing.npz", W1=rng.standard_normal((3, 2)), b1=np.ones((3, 1)),
             W2=rng.standard_normal((1, 3)))
    np.savez(folder / "direction-nan.npz", W1=rng.standard_normal((3, 2)), b1=np.ones((3, 1)),
             W2=np.array([[1.0, np.nan, 0.0]]), b2=np.ones((1, 1)))
    np.savez(folder / "direction-zero.npz", W1=np.zeros((3, 2)), b1=np.zeros((3, 1)), W2=np.zeros((1, 3)),
             b2=np.zeros((1, 1)))
    (folder / "text.npz").write_text("not an archive")
    (folder / "run.json").write_text(json.dumps({"schema": "gradparity/1"}))
    (folder / "taken").write_text(USERS_FILE)
    return folder


def row(named: str, *args: str, id: str):
    """One bad input: the command line and the fragment its error line must name."""
    return pytest.param(list(args), named, id=id)


CHECK = ("check", "{example}")
OWN_SECOND_ORDER = ("run", "--data", "points.npz", "--params", "mine.npz", "--order", "2", "--direction")
BAD_INPUT = [
    # option values the parser or the core refuses
    row("'nope'", "train", "--dataset", "nope", id="train-unknown-dataset"),
    row("'swish'", "train", "--activation", "swish", id="train-unknown-activation"),
    row("'hinge'", "train", "--loss", "hinge", id="train-unknown-loss"),
    row("'glorot'", "train", "--init", "glorot", id="train-unknown-init"),
    row("got 0.0", "train", "--lr", "0", id="train-lr-zero"),
    row("got -1.0", "train", "--lr", "-1", id="train-lr-negative"),
    row("got 0", "train", "--iterations", "0", id="train-iterations-zero"),
    row("layer 2 has 0 units", "train", "--hidden", "4,0", id="train-hidden-zero-units"),
    row("'four'", "train", "--hidden", "four", id="train-hidden-not-a-number"),
    row("'4,,2'", "train", "--hidden", "4,,2", id="train-hidden-empty-size"),
    row("'4,'", "train", "--hidden", "4,", id="train-hidden-trailing-comma"),
    row("'rmsprop'", "train", "--optimizer", "rmsprop", id="train-unknown-optimizer"),
    row("got 0", "train", "--batch-size", "0", id="train-batch-size-zero"),
    row("batch size 401", "train", "--batch-size", "401", id="train-batch-larger-than-data"),
    row("got 0", "train", "--epochs", "0", id="train-epochs-zero"),
    row("got 1.0", "train", "--beta1", "1", id="train-beta1-one"),
    row("got -0.5", "train", "--beta2", "-0.5", id="train-beta2-negative"),
    row("got 0.0", "train", "--epsilon", "0", id="train-epsilon-zero"),
    row("got 1.0", "train", "--momentum", "1", id="train-momentum-one"),
    row("'random'", "train", "--shuffle", "random", id="train-unknown-shuffle"),
    row("'nope'", "run", "--backends", "nope", id="run-unknown-backend"),
    row("'nope'", "run", "--case", "nope", id="run-unknown-case"),
    row("'float16'", "run", "--dtype", "float16", id="run-unknown-dtype"),
    row("batch size 1000", "run", "--case", "seed-2layer", "--batch-size", "1000", id="run-batch-larger-than-case"),
    row("'adamw'", "run", "--optimizer", "adamw", id="run-unknown-optimizer"),
    row("got -3", "run", "--timeout", "-3", id="run-timeout-negative"),
    row("got 0", "report", "--timeout", "0", id="report-timeout-zero"),
    row("'0/2'", "run", "--shard", "0/2", id="run-shard-zero"),
    row("'3/2'", "run", "--shard", "3/2", id="run-shard-beyond"),
    row("'1-2'", "run", "--shard", "1-2", id="run-shard-dash"),
    row("'x'", "run", "--shard", "x", id="run-shard-word"),
    row("'nope'", "gradcheck", "--case", "nope", id="gradcheck-unknown-case"),
    row("'nope'", "report", "--case", "nope", "--out", "report", id="report-unknown-case"),
    row("'keras'", "explain", "keras", id="explain-a-group"),
    row("'cube'", "bench", "--shapes", "seed,cube", id="bench-unknown-shape"),
    row("got 0", "bench", "--repeats", "0", id="bench-repeats-zero"),
    row("got 0", "bench", "--threads", "0", id="bench-threads-zero"),
    row("got 0", "bench", "--timeout", "0", id="bench-timeout-zero"),
    row("'float16'", "bench", "--dtype", "float16", id="bench-unknown-dtype"),
    row("'caffe'", "bench", "--backends", "numpy,caffe", id="bench-unknown-backend"),
    # the user's files
    row("/no/such/file.npz", "train", "--data", "/no/such/file.npz", id="train-missing-data"),
    row("line 2", "train", "--data", "bad.csv", id="train-csv-not-a-number"),
    row("NaN", "train", "--data", "nan.npz", id="train-npz-nan"),
    row("'x1'", "train", "--data", "named.csv", "--no-header", id="train-csv-header-read-as-data"),
    row("X.T and Y.T", "train", "--data", "rows.npz", id="train-examples-as-rows"),
    row("run.json", "report", "--bench", "run.json", "--out", "report", id="report-bench-not-a-bench-document"),
    # output paths, checked before any work
    row("/nonexistent/dir", "run", "--case", "seed-2layer", "--json", "/nonexistent/dir/r.json", id="run-json-folder"),
    row("taken", "report", "--case", "seed-2layer", "--out", "taken/report", id="report-out-under-a-file"),
    row("taken", "train", "--plot", "taken", id="train-plot-a-file"),
    row("--json .", "train", "--json", ".", id="train-json-a-folder"),
    row("/nonexistent", "bench", "--json", "/nonexistent/b.json", id="bench-json-folder"),
    row("/nonexistent", *CHECK, "--json", "/nonexistent/c.json", id="check-json-folder"),
    # the learner's code
    row("nowhere.py", "check", "nowhere.py", id="check-missing-file"),
    row("no_such_module", "check", "no_such_module:backprop", id="check-missing-module"),
    row("forwards", "check", "{example}:forwards", id="check-missing-function"),
    row("numpy", *CHECK, "--backends", "numpy", id="check-not-a-framework"),
    # the input resolver's refusals: options that do not go together
    row("--hidden, --loss", *CHECK, "--case", "tanh", "--hidden", "3", "--loss", "mse", id="check-case-and-network"),
    row("--hidden, --activation", "gradcheck", "--case", "seed-2layer", "--hidden", "16,8", "--activation", "relu",
        id="gradcheck-case-and-network"),
    row("--data", "run", "--case", "tanh", "--data", "points.npz", "--params", "mine.npz", id="run-case-and-data"),
    row("--activation", "explain", "numpy", "--case", "tanh", "--activation", "relu", id="explain-case-and-activation"),
    row("--header", "train", "--header", id="train-header-without-data"),
    row("--header", "run", "--no-header", id="run-header-without-data"),
    row("--data", "run", "--data", "points.npz", id="run-data-without-params"),
    row("--params", "run", "--params", "mine.npz", id="run-params-without-data"),
    row("--hidden", "report", "--hidden", "3", id="report-hidden-without-params"),
    row("--loss", "run", "--loss", "mse", id="run-loss-without-params"),
    row("--init", *CHECK, "--params", "mine.npz", "--init", "xavier", id="check-params-and-init"),
    row("--seed", *CHECK, "--params", "mine.npz", "--seed", "3", id="check-params-and-seed"),
    row("--hidden [4]", *CHECK, "--params", "mine.npz", "--hidden", "4", id="check-params-disagree-with-hidden"),
    row("--hidden [4]", "run", "--data", "points.npz", "--params", "mine.npz", "--hidden", "4",
        id="run-params-disagree-with-hidden"),
    row("3 output units", *CHECK, "--params", "three.npz", id="check-params-more-outputs-than-labels"),
    row("1 output unit", "run", "--data", "points.npz", "--params", "mine.npz", "--loss", "softmax-ce",
        id="run-params-fewer-outputs-than-labels"),
    row("missing.npz", "run", "--data", "points.npz", "--params", "missing.npz", id="run-missing-params"),
    row("text.npz", *CHECK, "--params", "text.npz", id="check-params-not-an-archive"),
    # second order: the direction along which the tangents and H V are taken
    row("lacks b2", *OWN_SECOND_ORDER, "direction-b2-missing.npz", id="run-direction-missing-entry"),
    row("W1 of three.npz", *OWN_SECOND_ORDER, "three.npz", id="run-direction-mis-shaped"),
    row("W2 of direction-nan.npz", *OWN_SECOND_ORDER, "direction-nan.npz", id="run-direction-nan"),
    row("zero everywhere", *OWN_SECOND_ORDER, "direction-zero.npz", id="run-direction-zero"),
    row("W2 of three.npz", "run", "--case", "seed-2layer", "--order", "2", "--direction", "three.npz",
        id="run-direction-other-network"),
    row("missing.npz", *OWN_SECOND_ORDER, "missing.npz", id="run-direction-missing-file"),
    row("text.npz", *OWN_SECOND_ORDER, "text.npz", id="run-direction-not-an-archive"),
    row("--order 2", "run", "--case", "tanh", "--direction", "mine.npz", id="run-direction-without-order-2"),
    row("3", "report", "--order", "3", id="report-order-3"),
]


@pytest.mark.parametrize("args, named", BAD_INPUT)
def test_bad_input_is_refused_in_one_line_naming_it(folder, args, named):
    refused(folder, [arg.format(example=EXAMPLE) for arg in args], named)
    assert (folder / "taken").read_text() == USERS_FILE
