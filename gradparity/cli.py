"""The ``gradparity`` command line: train, gradcheck, check, run, report, explain, bench.

Bad input is one line on stderr and exit status 2; a failed check is exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from gradparity import bench, engine, learner
from gradparity.backends import REGISTRY, missing_requirement, resolve
from gradparity.backends.timing import MIN_SAMPLE_S
from gradparity.core import datasets
from gradparity.core.cases import BENCH_SHAPES, CATALOGUE, Case, build_case, make_case
from gradparity.core.errors import GradparityError
from gradparity.core.gradcheck import gradcheck
from gradparity.core.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec, check_dtype, spec_from_params
from gradparity.core.optimizers import OPTIMIZERS, Training, epoch_means
from gradparity.core.reference import INITS, evaluate, initial_params, train
from gradparity.merge import load_documents, merge
from gradparity.reports import write_report
from gradparity.reports.terminal import print_bench_table, print_check, print_summary
from gradparity.runner import default_parallel

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(GradparityError):
    """A command-line option that cannot be honoured."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2, without the usage dump."""

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def hidden_units(text: str) -> list[int]:
    """``4`` or ``16,8,4`` (spaces allowed) -> the hidden layer sizes."""
    try:
        return [int(part) for part in text.replace(" ", ",").split(",") if part] if text.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden units must be integers like 4 or 16,8,4, got {text!r}") from None


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


def add_network_options(parser: argparse.ArgumentParser, with_dataset: bool = True) -> None:
    """Options shared by train and gradcheck: data, architecture, init and dtype."""
    source = parser.add_mutually_exclusive_group()
    if with_dataset:
        source.add_argument("--dataset", default="flower", choices=datasets.DATASETS, metavar="NAME",
                            help=f"bundled dataset: {', '.join(datasets.DATASETS)} (default: flower)")
    source.add_argument("--data", metavar="FILE", help=".npz with X (n0, m) and Y (nL, m), or .csv with the label last")
    parser.add_argument("--hidden", type=hidden_units, default=[4], metavar="UNITS",
                        help="hidden layer sizes, e.g. 4 or 16,8,4 (default: 4)")
    parser.add_argument("--activation", default="sigmoid", metavar="NAME",
                        help=f"hidden activation: {', '.join(HIDDEN_ACTIVATIONS)} (default: sigmoid)")
    parser.add_argument("--loss", default="bce", metavar="NAME",
                        help=f"output and loss: {', '.join(LOSSES)} (default: bce)")
    parser.add_argument("--init", default="seed", metavar="NAME",
                        help=f"initialisation: {', '.join(INITS)}; seed = the document's (default: seed)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the initialisation (seed: 2, others: 0)")
    parser.add_argument("--dtype", default="float64", choices=DTYPES, help="dtype computed in (default: float64)")


def add_training_options(parser: argparse.ArgumentParser, defaults: Training | None) -> None:
    """--optimizer, --lr, --epochs, --batch-size, --shuffle and the hyper-parameters. With
    ``defaults`` (train) they are its values; without (run), an option left out keeps each
    catalogue case's own set-up and ``Training()``'s for your own network."""
    default = Training() if defaults is None else defaults
    said = (lambda value: f"default: {value}") if defaults else (lambda value: f"default: the case's own; {value} "
                                                                 "for --params networks")
    group = parser.add_argument_group("training (core.optimizers: the reference's optimizers and batch order)")
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


def training_overrides(args: argparse.Namespace) -> dict:
    """The training fields the options set (None where an option was left out)."""
    return {"optimizer": args.optimizer, "learning_rate": args.lr, "epochs": args.epochs,
            "batch_size": args.batch_size, "shuffle": args.shuffle, "momentum": args.momentum,
            "beta1": args.beta1, "beta2": args.beta2, "epsilon": args.epsilon}


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.data:
        return datasets.load_file(args.data, args.loss)
    return datasets.load_dataset(getattr(args, "dataset", None) or "flower", args.loss)


def network_from_args(args: argparse.Namespace):
    """Data (cast to --dtype), the spec and the initial parameters the options describe."""
    X, Y = load_data(args)
    spec = NetworkSpec((X.shape[0], *args.hidden, Y.shape[0]), args.activation, args.loss)
    datasets.check_data(X, Y, args.loss)
    params = initial_params(spec, args.init, args.seed, args.dtype)
    return X.astype(args.dtype), Y.astype(args.dtype), spec, params


def command_train(args: argparse.Namespace) -> int:
    """Train the reference as the document's model() (or with another optimizer and
    mini-batches): cost lines, accuracy, optional JSON and plots."""
    training = Training(**training_overrides(args))
    X, Y, spec, params = network_from_args(args)
    training.check_batch_size(X.shape[1])
    started = time.perf_counter()
    trained = train(params, X, Y, spec, training)
    seconds = time.perf_counter() - started
    history = [{"iteration": step, "cost": cost} for step, cost in enumerate(trained.costs)][::args.print_every]
    for entry in history:
        print(f"cost after {entry['iteration']} iterations: {entry['cost']}")
    accuracy = evaluate(trained.params, X, Y, spec)
    print(f"accuracy: {accuracy:g}%")
    print(f"trained {spec.describe()} in {args.dtype} with {training.describe()}: {len(trained.costs)} steps "
          f"in {seconds:.3f} s")
    if args.json:
        write_json(args.json, {"network": spec.describe(), "layers": list(spec.layer_sizes), "dtype": args.dtype,
                               "training": training.to_dict(X.shape[1]), "learning_rate": training.learning_rate,
                               "iterations": len(trained.costs), "costs": history, "step_costs": trained.costs,
                               "batch_sizes": trained.batch_sizes,
                               "epoch_costs": epoch_means(trained.costs, trained.batch_sizes, training.epochs),
                               "accuracy": accuracy, "training_seconds": seconds})
    if args.plot:
        from gradparity.reports.training import plot_training

        for path in plot_training(history, trained.params, X, Y, spec, Path(args.plot)):
            print(f"wrote {path}")
    return EXIT_OK


def command_gradcheck(args: argparse.Namespace) -> int:
    """Reference gradients against central differences; exit 1 above the threshold."""
    if args.case:
        case = build_case(args.case)
        X, Y, spec, params = case.X, case.Y, case.spec, case.params
    else:
        X, Y, spec, params = network_from_args(args)
    result = gradcheck(params, X, Y, spec, seed=args.sample_seed)
    worst = result.worst
    print(f"network {spec.describe()}, m = {X.shape[1]}, central differences in float64 (h = 1e-6)")
    print(f"checked {result.checked} of {result.total} parameter entries"
          + (f" (seeded sample of {', '.join(result.sampled)})" if result.sampled else " (all)")
          + (f"; {result.at_kinks} left out: a ReLU kink lies within +-h" if result.at_kinks else ""))
    print(f"relative difference ||g - g_num|| / (||g|| + ||g_num||) = {result.relative_difference:.3e}"
          f" (threshold {args.threshold:g})")
    print(f"worst entry: {worst['parameter']}{tuple(worst['index'])} analytic {worst['analytic']:.12g}"
          f" numerical {worst['numerical']:.12g}")
    passed = result.relative_difference < args.threshold
    print("PASS" if passed else "FAIL")
    return EXIT_OK if passed else EXIT_FAILED


NETWORK_OPTIONS = ("dataset", "data", "params", "hidden", "activation", "loss", "init", "seed")


def command_check(args: argparse.Namespace) -> int:
    """A learner's backprop against the reference (which decides), finite differences and the
    frameworks; exit 1 when a quantity is wrong."""
    if args.json:
        check_json_path(args.json)
    backends = [] if args.backends == ["none"] else learner.frameworks(args.backends)
    backprop = learner.load_backprop(args.target)
    case, data = learner_case(args)
    with progress_bar(1, backends) if backends else contextlib.nullcontext(None) as progress:
        result = learner.check_case(backprop, case, backends, progress, data)
    document = result.to_dict()
    print_check(document)
    if args.json:
        write_json(args.json, document)
        print(f"wrote {args.json}")
    return EXIT_OK if result.passed else EXIT_FAILED


def learner_case(args: argparse.Namespace) -> tuple[Case, str]:
    """The case ``check`` calls the learner's function on, and its data in words: a catalogue
    case (which fixes everything but the dtype), or the data with --params or a fresh network."""
    given = [f"--{option}" for option in NETWORK_OPTIONS if getattr(args, option) is not None]
    if args.case:
        if given:
            raise UsageError(f"--case {args.case} fixes the data and network; drop {', '.join(given)}")
        return build_case(args.case, args.dtype), f"case {args.case}"
    for option, default in args.network_defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, default)
    data = args.data or args.dataset
    if not args.params:
        X, Y, spec, params = network_from_args(args)
        return make_case("your-network", data, X, Y, params, spec, args.dtype), data
    for option in ("--init", "--seed"):
        if option in given:
            raise UsageError(f"{option} initialises a network; --params already gives its parameters")
    X, Y = load_data(args)
    params, spec = network_from_params(args.params, args.activation, args.loss,
                                       args.hidden if "--hidden" in given else None)
    return make_case(Path(args.params).stem, data, X, Y, params, spec, args.dtype), f"{data}, {args.params}"


def check_json_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or UsageError when a JSON file cannot be written there."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory, not a JSON file")
    if not target.parent.exists():
        raise UsageError(f"directory {target.parent} does not exist")
    return target


def write_json(path: str | os.PathLike, document: dict) -> None:
    """Write ``document`` to ``path`` atomically: a temporary file beside it, then a rename."""
    target = check_json_path(path)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=1, allow_nan=True) + "\n")
    temporary.replace(target)


def add_selection_options(parser: argparse.ArgumentParser, several_backends: bool = True,
                          dtypes: tuple[str, ...] = ("float64", "float32")) -> None:
    """Options shared by run, report and explain: which cases, backends, dtypes and how to run them."""
    parser.add_argument("--case", action="append", metavar="NAME",
                        help=f"catalogue case (repeatable; default: all): {', '.join(CATALOGUE)}")
    if several_backends:
        parser.add_argument("--backends", type=comma_list, metavar="LIST",
                            help="comma-separated backends (default: all installed): numpy, finite-diff, jax, torch, "
                                 "tensorflow, keras-tensorflow, keras-jax, keras-torch, keras (= the three Keras ones)")
    parser.add_argument("--dtype", type=comma_list, default=list(dtypes), metavar="LIST",
                        help=f"dtypes to run, comma-separated (default: {','.join(dtypes)})")
    parser.add_argument("--data", metavar="FILE", help="your own data: .npz with X, Y (or .csv); needs --params")
    parser.add_argument("--params", metavar="FILE", help="your own parameters: .npz with W1, b1, ..., WL, bL; needs --data")
    parser.add_argument("--hidden", type=hidden_units, metavar="UNITS", help="with --params: sizes they must have")
    parser.add_argument("--activation", default="sigmoid", metavar="NAME", help="with --params: hidden activation")
    parser.add_argument("--loss", default="bce", metavar="NAME", help="with --params: output and loss")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the framework backends")
    parser.add_argument("--allow-tf32", action="store_true", help="on CUDA, let frameworks use TF32 for float32 matmuls")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="limit per backend (default: 600)")
    parser.add_argument("--strict", action="store_true",
                        help="known deviations and stale deviation entries fail the run (exit 1), as xfail strict")
    parser.add_argument("--shard", type=shard, metavar="K/N",
                        help="run only the K-th of N shares of the case x dtype x backend matrix (for N CI jobs; "
                             "combine their --json documents with gradparity report --merge)")
    add_training_options(parser, None)


def cases_from_args(args: argparse.Namespace) -> list:
    """The catalogue cases (or the user's own network) in every requested dtype."""
    for dtype in args.dtype:
        check_dtype(dtype)
    if bool(args.data) != bool(args.params):
        raise UsageError("--data and --params go together: give both to check your own network")
    if not args.data:
        if args.hidden is not None:
            raise UsageError("--hidden only applies with --params (catalogue cases fix their own layers)")
        return [build_case(name, dtype, **training_overrides(args)) for name in (args.case or CATALOGUE)
                for dtype in args.dtype]
    if args.case:
        raise UsageError("--case and --data/--params exclude each other")
    X, Y = datasets.load_file(args.data, args.loss)
    params, spec = network_from_params(args.params, args.activation, args.loss, args.hidden)
    name = Path(args.params).stem
    given = {field: value for field, value in training_overrides(args).items() if value is not None}
    return [make_case(name, f"Your network from {args.params} on {args.data}", X, Y, params, spec, dtype,
                      Training(**given)) for dtype in args.dtype]


def network_from_params(path: str, activation: str, loss: str, hidden: list[int] | None) -> tuple[dict, NetworkSpec]:
    """The parameters in ``path`` and the spec they imply; UsageError when ``hidden`` is given
    and disagrees with their layers."""
    params = load_params(path)
    spec = spec_from_params(params, activation, loss)
    if hidden is not None and list(spec.layer_sizes[1:-1]) != hidden:
        raise UsageError(f"--hidden {hidden} disagrees with the parameters' layers {list(spec.layer_sizes)}")
    return params, spec


def load_params(path: str) -> dict[str, np.ndarray]:
    """``W1, b1, ..., WL, bL`` from an .npz file, as float64 arrays."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name], dtype=np.float64) for name in archive.files}
    except FileNotFoundError:
        raise UsageError(f"parameter file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read parameter file {path} as .npz: {error}") from None


def run_parity(args: argparse.Namespace, decision_boundaries: bool = False, probe_all: bool = False) -> dict:
    """Run the selected cases on the selected backends, with a progress bar on a terminal."""
    cases = cases_from_args(args)
    options = engine.RunOptions(backends=args.backends, device=args.device, allow_tf32=args.allow_tf32,
                                timeout=args.timeout, include_arrays=getattr(args, "include_arrays", False),
                                decision_boundaries=decision_boundaries, strict=args.strict,
                                shard=getattr(args, "shard", None), probe_all=probe_all)
    with progress_bar(len(cases), options.backends) as progress:
        return engine.run(cases, options, progress)


def progress_bar(case_count: int, backends: list[str] | None):
    """A rich progress bar over (backend, case) pairs on a terminal, a no-op elsewhere."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import Progress

    runnable = [name for name in resolve(backends) if not missing_requirement(REGISTRY[name])]

    @contextlib.contextmanager
    def bar():
        with Progress(transient=True) as progress:
            task = progress.add_task("running backends", total=case_count * max(len(runnable), 1))
            yield lambda backend, case: progress.update(task, advance=1, description=f"{backend}: {case}")

    return bar()


def exit_status(document: dict) -> int:
    """0 when everything passed or is a known deviation (skips and stale entries allowed), 1 on a
    failure or error; under ``--strict`` known deviations and stale entries are failures too."""
    summary = document["summary"]
    strict = document["options"].get("strict") and (summary["known_deviations"] or summary.get("stale"))
    return EXIT_FAILED if summary["failed"] or summary["errors"] or strict else EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    """The parity matrix: summary table, optional JSON document."""
    document = run_parity(args)
    print_summary(document)
    if args.json:
        write_json(args.json, document)
        print(f"wrote {args.json}")
    return exit_status(document)


def command_explain(args: argparse.Namespace) -> int:
    """One backend on the chosen cases, every op of every result probed: the verdict, the
    diagnosis and the reproducer of each; exit status as for run."""
    if args.backend not in REGISTRY:
        raise UsageError(f"unknown backend {args.backend!r}; explain takes one of {', '.join(REGISTRY)}")
    missing = missing_requirement(REGISTRY[args.backend])
    if missing:
        raise UsageError(f"cannot explain {args.backend}: {missing}")
    args.backends = [args.backend]
    document = run_parity(args, probe_all=True)
    for result in document["results"]:
        print(explanation(args.backend, result))
    return exit_status(document)


def explanation(backend: str, result: dict) -> str:
    """What ``explain`` prints for one case: the verdict, then the diagnosis and reproducer."""
    outcome = result["backends"][backend]
    title = f"{backend} on {result['case']} {result['dtype']}: {outcome['status'].replace('_', ' ')}"
    diagnosis = outcome.get("diagnosis")
    if not diagnosis:
        return f"{title}\n  {outcome['reason']}\n"
    lines = [title, f"  pattern: {diagnosis['pattern']}"]
    names = {check["deviation"]["name"]: check["deviation"]["cause"] for check in outcome["checks"] if check["deviation"]}
    lines += [f"  registered deviation {name}: {cause}" for name, cause in names.items()]
    lines.append(f"  probed alone: {', '.join(diagnosis['probed']) or 'nothing (no primitives table)'}")
    for op in diagnosis["ops"]:
        error = "n/a" if op["rel_error"] is None else f"{op['rel_error']:.2g}"
        lines.append(f"  deviates: {op['op']:<26} {op['input_dtype']} -> {op['output_dtype']}  relative error {error} "
                     f"(allowed {op['tolerance']:.2g})  {op['source'].splitlines()[-1]}")
    if diagnosis["reproducer"]:
        lines += ["  reproducer (fails with AssertionError while the defect exists):", "",
                  *("    " + line for line in diagnosis["reproducer"].splitlines()), ""]
    return "\n".join(lines)


def command_report(args: argparse.Namespace) -> int:
    """The parity matrix written as report.html, report.md, report.json and plots."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    timings = json.loads(Path(args.bench).read_text()) if args.bench else None
    document = merge(load_documents(args.merge)) if args.merge else run_parity(args, decision_boundaries=True)
    print_summary(document)
    paths = write_report(document, out, timings)
    print(f"report: {paths['report.html']}")
    return exit_status(document)


def command_bench(args: argparse.Namespace) -> int:
    """Time the shapes on the backends, print the table and write the optional JSON document.
    Exit 0 when every installed backend ran; 1 when one failed to load, crashed or timed out."""
    repeats = bench.check_positive("--repeats", args.repeats)
    threads = bench.check_positive("--threads", default_parallel() if args.threads is None else args.threads)
    cases = bench.bench_cases(args.shapes, args.dtype)
    names = bench.backend_names(args.backends)
    with progress_bar(len(cases), names) as progress:
        outcomes = bench.run_bench(cases, names, threads, repeats, args.device, args.timeout, progress)
    document = bench.bench_document(cases, outcomes, threads, repeats, args.device, args.bandwidth)
    print_bench_table(document)
    if args.json:
        write_json(args.json, document)
        print(f"wrote {args.json}")
    failed = bench.failed_backends(outcomes)
    if failed:
        print(f"failed: {', '.join(failed)} (see the notes)", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity bench`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "bench", help="time one training step per backend and mode against the NumPy reference",
        description="Time ONE full training step (forward, backward, parameter update) per backend, eagerly and "
                    "compiled where the framework has a compiler, each backend in its own process, one at a time, "
                    "all with the same thread count. Reports the median and min-max per step over --repeats "
                    f"samples (each >= {MIN_SAMPLE_S * 1e3:g} ms of steps, after warm-up), the one-off compile time "
                    "(first call - median step) and the ratio to the NumPy reference (numpy, eager, always run, "
                    "on the CPU). Exit 0: every installed backend ran; 1: one failed; 2: bad usage.")
    parser.add_argument("--shapes", type=comma_list, default=list(BENCH_SHAPES), metavar="LIST",
                        help="networks to time, comma-separated (default: all): seed = 2-4-1 sigmoid/bce flower m=400, "
                             "deep = 20-16-8-4-1 sigmoid/bce m=400, digits = 64-25-12-10 relu/softmax-ce m=1797, "
                             "signs = 12288-25-12-6 relu/softmax-ce m=1080")
    parser.add_argument("--backends", type=comma_list, metavar="LIST",
                        help="comma-separated backends (default: every installed one that trains): numpy, jax, torch, "
                             "tensorflow, keras-tensorflow, keras-jax, keras-torch, keras; numpy is always added")
    parser.add_argument("--dtype", type=comma_list, default=list(DTYPES), metavar="LIST",
                        help="dtypes, comma-separated (default: float64,float32)")
    parser.add_argument("--repeats", type=int, default=bench.DEFAULT_REPEATS, metavar="N",
                        help=f"timed samples per mode (default: {bench.DEFAULT_REPEATS})")
    parser.add_argument("--threads", type=int, metavar="N", help="threads for every backend (default: all cores)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the framework backends")
    parser.add_argument("--timeout", type=float, default=bench.DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"limit per backend (default: {bench.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--bandwidth", action="store_true",
                        help="also measure NumPy's read bandwidth and compare the signs step with reading X twice")
    parser.add_argument("--json", metavar="FILE", help="write the gradparity-bench/1 document")
    parser.set_defaults(handler=command_bench)


def add_check_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity check`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "check", help="check your own backprop(X, Y, parameters) against the reference",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
                    "Call your function backprop(X, Y, parameters) -> (cost, grads) on a network and its data "
                    "and compare the cost and every gradient dW1, db1, ... with the hand-derived reference "
                    "(which decides), with central differences and with every installed framework. Names the "
                    "wrong quantities, the first wrong gradient counted from the output, and the classic mistake "
                    "it matches. Layout: X (n0, m), Y (nL, m), parameters {'W1': (n1, n0), 'b1': (n1, 1), ...}, "
                    "grads {'dW1': ..., 'db1': ..., ...}. Exit 0: right; 1: a quantity is wrong (NaN and wrong "
                    "shapes included); 2: bad usage, or your function raised or returned something unreadable.",
                    80),
        epilog="examples:\n"
               "  gradparity check examples/backprop.py:backprop\n"
               "  gradparity check my_backprop.py --dtype float32 --backends torch,jax\n"
               "  gradparity check mypackage.nn:backprop --hidden 8,4 --activation tanh --json check.json")
    parser.add_argument("target", metavar="FILE.py:FUNCTION",
                        help="your function: FILE.py:FUNCTION or package.module:FUNCTION (FUNCTION defaults to backprop)")
    parser.add_argument("--case", metavar="NAME", help=f"a catalogue case's data and network instead: "
                                                        f"{', '.join(CATALOGUE)}")
    add_network_options(parser)
    parser.add_argument("--params", metavar="FILE", help=".npz with W1, b1, ..., WL, bL: your own parameters "
                                                         "(instead of --init and --hidden)")
    parser.add_argument("--backends", type=comma_list, metavar="LIST",
                        help=f"frameworks to corroborate with (default: every installed one of "
                             f"{', '.join(learner.FRAMEWORKS)}); none: the reference and finite differences only")
    parser.add_argument("--json", metavar="FILE", help="write the result: verdict, wrong, first_wrong, hint, checks")
    network_defaults = {option: parser.get_default(option) for option in NETWORK_OPTIONS}
    parser.set_defaults(handler=command_check, network_defaults=network_defaults,
                        **{option: None for option in NETWORK_OPTIONS})


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gradparity", description=(
        "Prove that a hand-derived NumPy backprop and the autodiff of JAX, PyTorch, TensorFlow and Keras "
        "compute the same costs and gradients for the same network, and report how closely."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    train = commands.add_parser("train", help="train the reference network as the document's model() does",
                                description="Train with the hand-derived NumPy backprop: by default full-batch "
                                            "gradient descent as the document's model(); --optimizer and "
                                            "--batch-size for momentum, Adam and mini-batches.")
    add_network_options(train)
    add_training_options(train, Training(learning_rate=1.2, epochs=10000))
    train.add_argument("--iterations", type=positive_int, dest="epochs", metavar="K",
                       help="the document's name for --epochs with the full batch")
    train.add_argument("--print-every", type=positive_int, default=1000, metavar="N",
                       help="print and record the cost every N steps (default: 1000)")
    train.add_argument("--json", metavar="FILE", help="write the training set-up, every step's cost (taken on its "
                                                     "batch before the update), epoch means and accuracy as JSON")
    train.add_argument("--plot", metavar="DIR", help="write the cost curve and, for 2-D data, the decision boundary")
    train.set_defaults(handler=command_train)

    check = commands.add_parser("gradcheck", help="reference gradients against central finite differences",
                                description="Central differences in float64 over every parameter entry "
                                            "(a seeded sample of 400 for parameters with more than 2000).")
    add_network_options(check)
    check.add_argument("--case", metavar="NAME", help="check a catalogue case's own data and parameters instead "
                                                      "(see gradparity run --help)")
    check.add_argument("--threshold", type=float, default=1e-7, help="largest relative difference allowed (default: 1e-7)")
    check.add_argument("--sample-seed", type=int, default=0, help="seed of the sampled entries (default: 0)")
    check.set_defaults(handler=command_gradcheck)

    add_check_parser(commands)

    run = commands.add_parser("run", help="run the parity matrix: cases x backends x dtypes",
                              description="Every case on every backend, each in its own worker process, "
                                          "compared with the reference. Exit 0: all pass or known deviations; "
                                          "1: a check failed or a backend errored; 2: bad usage or input.")
    add_selection_options(run)
    run.add_argument("--json", metavar="FILE", help="write the gradparity/1 result document")
    run.add_argument("--include-arrays", action="store_true", help="put the gradients themselves in the JSON")
    run.set_defaults(handler=command_run)

    report = commands.add_parser("report", help="run the parity matrix and write HTML, Markdown, JSON and plots",
                                 description="As run, then write report.html (self-contained), report.md, "
                                             "report.json and plots/ into --out, atomically.")
    add_selection_options(report)
    report.add_argument("--out", default="reports/latest", metavar="DIR", help="output folder (default: reports/latest)")
    report.add_argument("--bench", metavar="FILE", help="a gradparity bench --json document to add as a performance section")
    report.add_argument("--merge", nargs="+", metavar="JSON",
                        help="instead of running, combine result documents (run --json: shards, or runs on "
                             "other machines or framework versions) into one report")
    report.set_defaults(handler=command_report)
    explain = commands.add_parser("explain", help="why one backend fails or deviates: the ops and a reproducer",
                                  description="Runs one backend on the chosen cases and probes every operation "
                                              "of the network alone against NumPy in float64; prints the ops that "
                                              "deviate and a standalone reproducer. Example: gradparity explain "
                                              "keras-jax --case tanh --dtype float64")
    explain.add_argument("backend", metavar="BACKEND", help=f"one of {', '.join(REGISTRY)}")
    add_selection_options(explain, several_backends=False, dtypes=("float64",))
    explain.set_defaults(handler=command_explain)
    add_bench_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradparity`` console script."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except GradparityError as error:
        print(f"gradparity: error: {error}", file=sys.stderr)
        if getattr(error, "traceback", None):  # the learner's own code raised (gradparity check)
            print(error.traceback, file=sys.stderr, end="")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gradparity: interrupted", file=sys.stderr)
        return 130

