"""From the parsed command line to the networks a command works on, with one set of rules for
every command.

A network is a catalogue case (``--case``, which fixes everything but the dtype) or your own:
data (``--data``, or the bundled ``--dataset`` where the command has it) and parameters
(``--params``, or ``--init``/``--seed`` with ``--hidden`` where the command has them). A command
that cannot initialise a network (run, report, explain) runs the catalogue when no parameters
are given. Every refusal of options that do not go together is here, as one ``UsageError`` line.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradparity import learner
from gradparity.arguments import UsageError
from gradparity.core import datasets
from gradparity.core.cases import CATALOGUE, Case, build_case, make_case
from gradparity.core.network import check_dtype, spec_from_params

Layers = tuple[int, ...]


@dataclass(frozen=True)
class Networks:
    """The cases a command runs, and whether the options fixed their networks (False when the
    tool chose the hidden layers itself)."""

    cases: list[Case]
    fixed: bool


def resolve(args: argparse.Namespace, own_layers: tuple[Layers, ...] | None = None) -> Networks:
    """The networks the options describe, in every dtype asked for: the ``--case`` cases, the
    network of ``--params``, your own initialised networks (one per entry of ``own_layers`` when
    --hidden is left out; else --hidden's) or, for a command without --init, the catalogue."""
    for dtype in listed(args.dtype):
        check_dtype(dtype)
    given = given_network_options(args)
    apply_network_defaults(args)
    if args.case:
        refuse_beside_case(listed(args.case), given)
        return Networks(catalogue_cases(listed(args.case), args), True)
    if "--header" in given and not args.data:
        raise UsageError("--header and --no-header apply to a --data .csv file")
    if args.params:
        return Networks(params_cases(args, given), True)
    if args.init is None:
        refuse_without_params(given)
        return Networks(catalogue_cases(list(CATALOGUE), args), True)
    layers = [tuple(args.hidden)]
    if "--hidden" not in given and own_layers:
        layers = list(own_layers)
    data, start = load_data(args), learner.Initialisation(layers, args.init, args.seed)
    cases = [learner.own_networks(data, data_name(args), (args.activation, args.loss), dtype, start)
             for dtype in listed(args.dtype)]
    return Networks([case for group in cases for case in group], "--hidden" in given or not own_layers)


def listed(value: str | list[str]) -> list[str]:
    """An option given once (a string: --case and --dtype of train, gradcheck and check) or
    repeatable (a list: those of run, report and explain) as a list."""
    if isinstance(value, str):
        return [value]
    return value


def catalogue_cases(names: list[str], args: argparse.Namespace) -> list[Case]:
    """The catalogue cases ``names`` in every dtype of --dtype."""
    return [build_case(name, dtype) for name in names for dtype in listed(args.dtype)]


def given_network_options(args: argparse.Namespace) -> list[str]:
    """The network options given on the command line (they default to None until
    ``apply_network_defaults``), as ``--name``."""
    return [f"--{option}" for option in args.network_defaults if getattr(args, option) is not None]


def apply_network_defaults(args: argparse.Namespace) -> None:
    """Give every network option left out its default (None for one the command does not have)."""
    for option, default in args.network_defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, default)


def refuse_beside_case(names: list[str], given: list[str]) -> None:
    """UsageError naming the network options given beside --case, which fixes them all."""
    if given:
        cases = " ".join(f"--case {name}" for name in names)
        raise UsageError(f"{cases} fixes the data and network; drop {', '.join(given)}")


def refuse_without_params(given: list[str]) -> None:
    """UsageError for the options of your own network given to a command that, without
    --params, runs the catalogue (whose cases fix their own data and layers)."""
    if "--data" in given:
        raise UsageError("--data and --params go together: give both to check your own network")
    if given:
        raise UsageError(f"{given[0]} only applies with --params (catalogue cases fix their own layers)")


def data_name(args: argparse.Namespace) -> str:
    """The data as the options name it: the --data file or the bundled --dataset."""
    return args.data or args.dataset


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The --data file (its header as --header says) or the bundled --dataset, labels encoded
    for --loss (bce's for ``auto``: a row for two classes, one-hot for more)."""
    loss = "bce" if args.loss == learner.AUTO else args.loss
    if args.data:
        return datasets.load_file(args.data, loss, header=args.header)
    return datasets.load_dataset(args.dataset, loss)


def params_cases(args: argparse.Namespace, given: list[str]) -> list[Case]:
    """The network of the --params file on the data, in every dtype; UsageError when there is
    no data, when --init or --seed is given too, or when the parameters disagree with the
    labels or with --hidden."""
    if not data_name(args):
        raise UsageError("--data and --params go together: give both to check your own network")
    for option in ("--init", "--seed"):
        if option in given:
            raise UsageError(f"{option} initialises a network; --params already gives its parameters")
    X, Y = load_data(args)
    params = load_params(args.params)
    outputs = params.get(f"W{sum(key.startswith('W') for key in params)}")
    if outputs is not None and outputs.ndim == 2 and outputs.shape[0] != Y.shape[0]:
        raise UsageError(outputs_mismatch(outputs.shape[0], Y.shape[0], data_name(args)))
    spec = spec_from_params(params, learner.default(args.activation, "sigmoid"),
                            learner.default(args.loss, learner.default_loss(Y)))
    if "--hidden" in given and list(spec.layer_sizes[1:-1]) != args.hidden:
        raise UsageError(f"--hidden {args.hidden} disagrees with the parameters' layers {list(spec.layer_sizes)}")
    description = f"{data_name(args)}, {args.params}"
    return [make_case(Path(args.params).stem, description, (X, Y), params, spec, dtype) for dtype in listed(args.dtype)]


def outputs_mismatch(outputs: int, rows: int, data: str) -> str:
    """What to pass when the parameters' output layer and the labels disagree."""
    if outputs > 1:
        return (f"the parameters have {outputs} output units but {data}'s labels have {rows} row(s): a {outputs}-class "
                f"network needs {outputs}-class data: --data FILE.npz with Y one-hot ({outputs}, m) or integer labels, "
                f"or a bundled set with {outputs} classes (blobs has 3), and --loss softmax-ce (or auto)")
    return (f"the parameters have 1 output unit but {data}'s labels have {rows} rows: give two-class data "
            "(--dataset flower, moons, ...) or parameters with one output per class")


def load_params(path: str, what: str = "parameter") -> dict[str, np.ndarray]:
    """``W1, b1, ..., WL, bL`` from an .npz file, as float64 arrays (``what``: the file's name
    in an error: parameter, direction)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name], dtype=np.float64) for name in archive.files}
    except FileNotFoundError:
        raise UsageError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {what} file {path} as .npz: {error}") from None


def second_order(args: argparse.Namespace) -> dict:
    """The run options of ``--order`` and ``--direction``: the order, and the direction's arrays
    and file where one is given (checked against each case's network when the run starts)."""
    if args.direction and args.order != 2:
        raise UsageError("--direction applies with --order 2 (the direction of the second-order quantities)")
    if not args.direction:
        return {"order": args.order}
    return {"order": 2, "direction": load_params(args.direction, "direction"), "direction_source": args.direction}
