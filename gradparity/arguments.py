"""The command line's vocabulary: the argparse parser and help formatter, the option types,
the option groups the subcommands share, and the checks of output paths made before any work.

Bad usage is one ``UsageError`` line; every option's help states its default.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path
from typing import NoReturn

from gradparity.core import datasets
from gradparity.core.cases import CATALOGUE
from gradparity.core.errors import GradparityError
from gradparity.core.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES
from gradparity.core.optimizers import OPTIMIZERS, Training
from gradparity.core.reference import INITS

COMMANDS = ("train", "gradcheck", "check", "run", "report", "explain", "bench")
NETWORK_OPTIONS = ("dataset", "data", "header", "params", "hidden", "activation", "loss", "init", "seed")
DATA_LAYOUT = ("X (n_features, m) and Y (n_outputs, m), one example per column, e.g. X (2, 400) and Y (1, 400) for "
               "400 points of 2 features and a 0/1 label; or .csv with one example per row and the label last, "
               "e.g. 'x1,x2,label' then '0.5,-1.2,1'")


class UsageError(GradparityError):
    """A command-line option that cannot be honoured."""


class HelpFormatter(argparse.HelpFormatter):
    """Help that states every option's default and keeps examples as written: a paragraph
    with indented lines is printed verbatim, any other is filled to the width; an option
    whose help does not say its default gets ``(default: VALUE)``, a flag ``(default: off)``."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(paragraph if "\n  " in paragraph or paragraph.startswith("  ")
                           else textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent,
                                              subsequent_indent=indent)
                           for paragraph in text.split("\n\n"))

    def _get_help_string(self, action: argparse.Action) -> str:
        return with_default(action)


def with_default(action: argparse.Action) -> str:
    """The help of ``action`` with its default said, unless it says it already or has none."""
    text = action.help or ""
    if "default" in text or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
        return text
    if isinstance(action, argparse._StoreTrueAction):
        return f"{text} (default: off)"
    shown = ",".join(map(str, action.default)) if isinstance(action.default, list) else action.default
    return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """argparse with ``HelpFormatter`` that reports a usage error as one line (exit status 2,
    no usage dump), naming the subcommand (``run: argument --timeout: ...``) but not the
    program, which ``main`` prefixes once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("gradparity").strip()
        if message.startswith("the following arguments are required: COMMAND"):
            message = f"give a command: {', '.join(COMMANDS)} (gradparity --help says what each does)"
        raise UsageError(f"{command}: {message}" if command else message)


def examples(*lines: str) -> str:
    """An epilog of example command lines, kept as written by ``HelpFormatter``."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def hidden_units(text: str) -> list[int]:
    """``4`` or ``16,8,4`` -> the hidden layer sizes; an empty size, as in ``4,,2``, is an error."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"hidden layer sizes are integers separated by commas, like 4 or 16,8,4; "
                                         f"got {text!r}")
    return [int(part) for part in parts]


def shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shard is K/N, such as 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"a shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_network_options(parser: argparse.ArgumentParser, with_case: bool = False) -> None:
    """Options shared by train, gradcheck and check: data, architecture, init and dtype; with
    ``with_case``, --case first, which replaces them all but the dtype."""
    if with_case:
        parser.add_argument("--case", metavar="NAME", help=f"a catalogue case's own data and parameters instead of "
                                                           f"the network options: {', '.join(CATALOGUE)} (default: none)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", default="flower", choices=datasets.DATASETS, metavar="NAME",
                        help=f"bundled dataset: {', '.join(datasets.DATASETS)}")
    source.add_argument("--data", metavar="FILE", help=f"your own data instead: .npz with {DATA_LAYOUT} "
                                                       "(default: none, the bundled --dataset)")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction,
                        help="whether the first line of a --data .csv names the columns (default: detected: a first "
                             "line with a cell that is not a number is a header)")
    parser.add_argument("--hidden", type=hidden_units, default=[4], metavar="UNITS",
                        help="hidden layer sizes, e.g. 4 or 16,8,4")
    parser.add_argument("--activation", default="sigmoid", metavar="NAME",
                        help=f"hidden activation: {', '.join(HIDDEN_ACTIVATIONS)}")
    parser.add_argument("--loss", default="bce", metavar="NAME",
                        help=f"output layer and loss: {', '.join(LOSSES)}")
    parser.add_argument("--init", default="seed", metavar="NAME",
                        help=f"initialisation: {', '.join(INITS)}; seed = the document's randn * 0.01 with seed 2")
    parser.add_argument("--seed", type=int, help="seed of the initialisation (default: 2 for --init seed, 0 for "
                                                 "the others)")
    parser.add_argument("--dtype", default="float64", choices=DTYPES, help="dtype computed in")


def add_training_options(parser: argparse.ArgumentParser, defaults: Training | None) -> None:
    """--optimizer, --lr, --epochs, --batch-size, --shuffle and the hyper-parameters. With
    ``defaults`` (train) they are its values; without (run), an option left out keeps each
    catalogue case's own set-up and ``Training()``'s for your own network."""
    default = Training() if defaults is None else defaults
    said = (lambda value: f"default: {value}") if defaults else (lambda value: f"default: the case's own; {value} "
                                                                 "for --params networks")
    group = parser.add_argument_group("training: the optimizer and the batches (the reference's, core/optimizers.py)")
    keep = lambda value: None if defaults is None else value  # noqa: E731 - None keeps the case's own
    group.add_argument("--optimizer", default=keep(default.optimizer), metavar="NAME",
                       help=f"{', '.join(OPTIMIZERS)}: adam is Kingma & Ba's Algorithm 1, adam-hat their efficient "
                            f"form ({said(default.optimizer)})")
    group.add_argument("--lr", type=float, default=keep(default.learning_rate),
                       help=f"learning rate ({said(default.learning_rate)})")
    group.add_argument("--epochs", type=int, default=keep(default.epochs), metavar="E",
                       help=f"passes over the data; with the full batch, the number of steps ({said(default.epochs)})")
    group.add_argument("--batch-size", type=int, metavar="N",
                       help="examples per step; the last batch of an epoch may be smaller (default: the full batch"
                            + ("" if defaults else ", or the case's own") + ")")
    group.add_argument("--shuffle", default=keep(default.shuffle), metavar="HOW",
                       help=f"batch order: none = data order, seed = a seeded permutation per epoch "
                            f"({said(default.shuffle)})")
    for name, text in (("momentum", "momentum mu"), ("beta1", "Adam's beta1"), ("beta2", "Adam's beta2"),
                       ("epsilon", "Adam's epsilon")):
        group.add_argument(f"--{name}", type=float, default=keep(getattr(default, name)),
                           help=f"{text} ({said(getattr(default, name))})")


def defer_network_defaults(parser: argparse.ArgumentParser, **defaults) -> None:
    """Leave the parser's network options None until ``inputs.resolve`` applies
    ``args.network_defaults``, so that the options given can be named; the help still states
    each default. Every network option and --case the command lacks is None, so that one
    resolver reads every command's arguments. ``defaults`` are further parser defaults (the
    handler)."""
    actions = [action for action in parser._actions if action.dest in NETWORK_OPTIONS]
    for action in actions:
        action.help = with_default(action)
    network_defaults = dict.fromkeys(NETWORK_OPTIONS) | {action.dest: action.default for action in actions}
    parser.set_defaults(network_defaults=network_defaults, **dict.fromkeys(("case", *NETWORK_OPTIONS)), **defaults)


def training_overrides(args: argparse.Namespace) -> dict:
    """The training fields the options set (None where an option was left out)."""
    return {"optimizer": args.optimizer, "learning_rate": args.lr, "epochs": args.epochs,
            "batch_size": args.batch_size, "shuffle": args.shuffle, "momentum": args.momentum,
            "beta1": args.beta1, "beta2": args.beta2, "epsilon": args.epsilon}


def add_selection_options(parser: argparse.ArgumentParser, several_backends: bool = True,
                          dtypes: tuple[str, ...] = ("float64", "float32")) -> None:
    """Options shared by run, report and explain: which cases, backends, dtypes and how to run them."""
    parser.add_argument("--case", action="append", metavar="NAME",
                        help=f"catalogue case, repeatable (default: all): {', '.join(CATALOGUE)}; "
                             "gradparity report describes each")
    if several_backends:
        parser.add_argument("--backends", type=comma_list, metavar="LIST",
                            help="comma-separated backends (default: all installed): numpy, finite-diff, jax, torch, "
                                 "tensorflow, keras-tensorflow, keras-jax, keras-torch, keras (= the three Keras ones), "
                                 "those of installed plugins (gradparity backends lists them); a backend followed by a "
                                 "version requirement (jax==0.4.30) runs from an environment made for it with uv, a "
                                 "column of its own next to the installed one")
    parser.add_argument("--dtype", type=comma_list, default=list(dtypes), metavar="LIST",
                        help="dtypes to run, comma-separated")
    parser.add_argument("--data", metavar="FILE", help=f"your own data, with --params: .npz with {DATA_LAYOUT} "
                                                       "(default: none, the catalogue)")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction,
                        help="whether the first line of a --data .csv names the columns (default: detected)")
    parser.add_argument("--params", metavar="FILE", help="your own parameters, with --data: .npz with W1, b1, ..., "
                                                         "WL, bL, W1 of shape (n1, n_features) (default: none)")
    parser.add_argument("--hidden", type=hidden_units, metavar="UNITS",
                        help="with --params: the hidden sizes they must have (default: whatever they have)")
    parser.add_argument("--activation", default="sigmoid", metavar="NAME", help="with --params: hidden activation")
    parser.add_argument("--loss", default="bce", metavar="NAME", help="with --params: output and loss")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the framework backends")
    parser.add_argument("--allow-tf32", action="store_true", help="on CUDA, let frameworks use TF32 for float32 matmuls")
    parser.add_argument("--timeout", type=positive_seconds, default=600.0, metavar="SECONDS", help="limit per backend")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: worker processes on this machine; ray: one Ray actor per backend on a Ray cluster "
                             "(pip install 'gradparity[ray]')")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="with --executor ray: the cluster to join, auto (the running one) or HOST:PORT "
                             "(default: a local Ray instance started for the run)")
    parser.add_argument("--strict", action="store_true",
                        help="known deviations and stale deviation entries fail the run (exit 1), as xfail strict")
    parser.add_argument("--order", type=int, choices=(1, 2), default=1,
                        help="2: check the second-order modes too (forward-mode tangents and Hessian-vector products "
                             "along a direction), each mode a column of its own")
    parser.add_argument("--direction", metavar="FILE",
                        help="with --order 2: .npz with a direction VW1, Vb1, ... keyed W1, b1, ... like --params "
                             "(default: a seeded N(0, 1) direction per case)")
    parser.add_argument("--shard", type=shard, metavar="K/N",
                        help="run only the K-th of N shares of the case x dtype x backend matrix, for N CI jobs "
                             "whose --json documents gradparity report --merge combines (default: all of it)")
    add_training_options(parser, None)


def check_json_path(path: str | os.PathLike, option: str = "--json") -> Path:
    """``path`` as a Path, or UsageError when a JSON file cannot be written there."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {target} is a directory, not a file")
    if not target.parent.is_dir():
        raise UsageError(f"{option} {target}: directory {target.parent} does not exist")
    writable_folder(target.parent, option, target)
    return target


def check_out_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a Path, or UsageError when a folder cannot be made or written there: a file
    of that name or on the way to it, or a folder without write permission."""
    target = Path(path)
    existing = next(folder for folder in (target, *target.parents) if folder.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {target}: {existing} is a file, not a folder")
    return writable_folder(existing, option, target)


def writable_folder(folder: Path, option: str, target: Path) -> Path:
    """``target`` when files can be created in ``folder``, else UsageError."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {target}: no permission to write in {folder}")
    return target
