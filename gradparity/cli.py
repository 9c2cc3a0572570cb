"""The ``gradparity`` command line: train, gradcheck, check, run, report, explain, bench, backends,
envs.

Bad input is one line on stderr and exit status 2; a failed check is exit status 1. Output
paths are checked before any work starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from gradparity import __version__, bench, cluster, engine, inputs, learner, venvs
from gradparity.arguments import (Parser, UsageError, add_network_options, add_selection_options, add_training_options,
                                  check_json_path, check_out_dir, comma_list, defer_network_defaults, examples,
                                  positive_int, positive_seconds, training_overrides)
from gradparity.backends import entry, known, missing_requirement, resolve
from gradparity.backends.timing import MIN_SAMPLE_S
from gradparity.core.cases import BENCH_SHAPES
from gradparity.conventions import CONVENTIONS
from gradparity.core.errors import GradparityError
from gradparity.core.gradcheck import STEP, GradcheckResult, gradcheck
from gradparity.core.network import DTYPES
from gradparity.core.optimizers import Training, epoch_means
from gradparity.core.reference import cost, evaluate, forward, train
from gradparity.core.results import (BENCH_SCHEMA, TRAIN_SCHEMA, BenchDocument, CheckDocument, CostAt, Document,
                                     TrainDocument, TrainingRecord, split_requirement)
from gradparity.merge import load_documents, merge
from gradparity.reports import validate_bench, write_report
from gradparity.inventory import inventory, inventory_document, print_inventory
from gradparity.reports.terminal import explanation, print_bench_table, print_check_document, print_summary
from gradparity.runner import default_parallel

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUN = 0, 1, 2, 3
EXIT_STATUSES = ("Exit 0: all pass or known deviations; 1: a check failed or a backend errored; 2: bad usage or "
                 "input; 3: nothing was verified that was asked for: a backend named in --backends ran on no case, "
                 "or every result was skipped.")
MODEL = ("full-batch gradient descent on a 2-4-1 sigmoid network and the flower data, learning rate 1.2, 10000 "
         "iterations, the cost printed every 1000")


def command_train(args: argparse.Namespace) -> int:
    """Train the reference as the document's model() (or with another optimizer and
    mini-batches): cost lines and the final cost, accuracy, optional JSON and plots; exit 1
    when the cost diverges."""
    json_path = args.json and check_json_path(args.json)
    plot_dir = args.plot and check_out_dir(args.plot, "--plot")
    training = Training(**training_overrides(args))
    [case] = inputs.resolve(args).cases
    X, Y, spec = case.X, case.Y, case.spec
    training.check_batch_size(X.shape[1])
    started = time.perf_counter()
    trained = train(case.params, X, Y, spec, training)
    seconds = time.perf_counter() - started
    final = forward(trained.params, X, spec)
    final_cost = cost(final.Z[-1], final.A[-1], Y, spec.loss)
    history = [CostAt(step, cost) for step, cost in enumerate(trained.costs)][::args.print_every]
    for entry in history:
        print(f"cost after {entry.iteration} iterations: {entry.cost}")
    print(f"final cost after {len(trained.costs)} iterations: {final_cost}")
    accuracy = evaluate(trained.params, X, Y, spec)
    print(f"accuracy: {accuracy:.4g}%")
    print(textwrap.fill(f"trained {spec.describe()} in {args.dtype} with {training.describe()}: "
                        f"{len(trained.costs)} steps in {seconds:.3f} s", 100, subsequent_indent="  "))
    epoch_costs = epoch_means(trained.costs, trained.batch_sizes, training.epochs)
    diverged = divergence(epoch_costs + [final_cost], training)
    if json_path:
        write_json(json_path, TrainDocument(
            TRAIN_SCHEMA, spec.describe(), list(spec.layer_sizes), args.dtype,
            TrainingRecord.from_dict(training.to_dict(X.shape[1])), training.learning_rate, len(trained.costs), history,
            list(trained.costs), list(trained.batch_sizes), epoch_costs, float(final_cost), diverged, float(accuracy),
            seconds).to_dict())
    if plot_dir:
        from gradparity.reports.training import plot_training

        paths, notes = plot_training(trained.costs + [final_cost], trained.params, X, Y, spec, plot_dir)
        for line in [f"wrote {path}" for path in paths] + [f"note: {note}" for note in notes]:
            print(line)
    if diverged:
        print(f"DIVERGED: {diverged}")
    return EXIT_FAILED if diverged else EXIT_OK


def divergence(costs: list[float], training: Training) -> str | None:
    """Why training diverged, or None: a cost (an epoch's mean, then the final one) that is not
    finite, or a final cost above the first."""
    bad = next((epoch for epoch, cost in enumerate(costs) if not np.isfinite(cost)), None)
    if bad is not None:
        where = "the final cost" if bad == len(costs) - 1 else f"the cost of epoch {bad + 1}"
        return f"{where} is {costs[bad]}; lower --lr (now {training.learning_rate:g})"
    if costs[-1] > costs[0]:
        return (f"the cost grew from {costs[0]:.6g} to {costs[-1]:.6g}; lower --lr (now {training.learning_rate:g})")
    return None


def command_gradcheck(args: argparse.Namespace) -> int:
    """Reference gradients against central differences; exit 1 above the threshold, with the
    reason when rounding noise explains the difference."""
    [case] = inputs.resolve(args).cases
    X, spec = case.X, case.spec
    result = gradcheck(case.params, X, case.Y, spec, seed=args.sample_seed)
    worst = result.worst
    rounded = "" if args.dtype == "float64" else f", of the parameters and data rounded to {args.dtype}"
    print(f"network {spec.describe()}, m = {X.shape[1]}: central differences in float64 (h = {STEP:g}){rounded}")
    print(f"checked {result.checked} of {result.total} parameter entries"
          + (f" (seeded sample of {', '.join(result.sampled)})" if result.sampled else " (all)")
          + (f"; {result.at_kinks} left out: a ReLU kink lies within +-h" if result.at_kinks else ""))
    print(f"relative difference ||g - g_num|| / (||g|| + ||g_num||) = {result.relative_difference:.3e}"
          f" (threshold {args.threshold:g})")
    print(f"worst entry: {worst['parameter']}{tuple(worst['index'])} analytic {worst['analytic']:.12g}"
          f" numerical {worst['numerical']:.12g}")
    passed = result.relative_difference < args.threshold
    print("PASS" if passed else "FAIL")
    if not passed:
        print(textwrap.fill(gradcheck_failure(result, args), 100, subsequent_indent="  "))
    return EXIT_OK if passed else EXIT_FAILED


def gradcheck_failure(result: GradcheckResult, args: argparse.Namespace) -> str:
    """Why a gradcheck failed, in words: a real disagreement when the relative difference is
    above the rounding noise of the differences; else that noise, and the way out (larger
    initial weights for the document's tiny ``seed`` init, else a threshold above the noise)."""
    floor = f"{result.noise_floor:.1e}"
    if not result.within_noise:
        return (f"the difference is {result.relative_difference / result.noise_floor:.0f}× the rounding noise of "
                f"central differences here ({floor}): the analytic and numerical gradients disagree")
    why = (f"why: the difference is no larger than the rounding noise of central differences here, about {floor} "
           f"(each difference carries an error of about eps |J| / h, and the gradients are small: "
           f"||g|| = {result.gradient_norm:.1e}), so it does not show a wrong gradient.")
    if not args.case and args.init == "seed":
        return (f"{why} The document's --init seed draws every weight as randn * 0.01, which makes the gradients "
                "this small: --init xavier gives gradients large enough to check.")
    return f"{why} A --threshold of {args.threshold:g} lies below that noise: no correct gradient can pass it."


def command_check(args: argparse.Namespace) -> int:
    """A learner's backprop against the reference (which decides), central differences of
    their own cost and the frameworks; exit 1 when a quantity is wrong. With --json, a
    document is written whatever happens once the path is valid: on exit 2 its verdict is
    ``error`` with the one-line message and the learner's traceback."""
    json_path = args.json and check_json_path(args.json)
    try:
        document = checked_document(args)
    except GradparityError as error:
        if json_path:
            write_json(json_path, learner.error_document(error, source=args.target).to_dict())
        raise
    print_check_document(document)
    if json_path:
        write_json(json_path, document.to_dict())
    return EXIT_OK if document.verdict == "pass" else EXIT_FAILED


def checked_document(args: argparse.Namespace) -> CheckDocument:
    """Load the learner's code, choose the networks and check it: the ``gradparity-check/2`` document."""
    backends = [] if args.backends == ["none"] else learner.frameworks(args.backends)
    calls, source = learner.load_code(args.target, args.convention)
    networks = inputs.resolve(args, own_layers=learner.OWN_HIDDEN)
    cases = networks.cases
    network = (args.activation, args.loss)
    if args.case:
        cases = [replace(case, description=f"case {case.name}") for case in cases]
        network = (cases[0].spec.hidden_activation, cases[0].spec.loss)
    with progress_bar(len(cases), backends) if backends else contextlib.nullcontext(None) as progress:
        result = learner.check_code(calls, cases, backends, progress, network, networks.fixed, source)
    return result.record()


def write_json(path: str | os.PathLike, document: dict) -> None:
    """Write ``document`` to ``path`` atomically (a temporary file beside it, then a rename) and
    print ``wrote PATH``."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    temporary.replace(target)
    print(f"wrote {path}")


def run_parity(args: argparse.Namespace, decision_boundaries: bool = False, probe_all: bool = False) -> Document:
    """Run the selected cases on the selected backends, with a progress bar on a terminal; an
    unknown backend or a training setting out of range is refused before any case is built."""
    resolve(args.backends)
    address = ray_address(args)
    overrides = training_overrides(args)
    Training(**{name: value for name, value in overrides.items() if value is not None})  # refused before any case
    cases = [case.with_training(**overrides) for case in inputs.resolve(args).cases]
    options = engine.RunOptions(backends=args.backends, device=args.device, allow_tf32=args.allow_tf32,
                                timeout=args.timeout, include_arrays=getattr(args, "include_arrays", False),
                                decision_boundaries=decision_boundaries, strict=args.strict,
                                shard=getattr(args, "shard", None), probe_all=probe_all, executor=args.executor,
                                ray_address=address, **inputs.second_order(args))
    with progress_bar(len(cases), options.backends) as progress:
        return engine.run(cases, options, progress)


def ray_address(args: argparse.Namespace) -> str | None:
    """The ``--ray-address``, refused without ``--executor ray``; with it, Ray must be
    installed (a one-line install hint where it is not, before any case is built)."""
    if args.executor != "ray":
        if args.ray_address:
            raise UsageError("--ray-address needs --executor ray")
        return None
    cluster.ray_module()
    return args.ray_address


def progress_bar(case_count: int, backends: list[str] | None):
    """A rich progress bar over (backend, case) pairs on a terminal, a no-op elsewhere."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import Progress

    runnable = [name for name in resolve(backends) if not missing_requirement(entry(name))]

    @contextlib.contextmanager
    def bar():
        with Progress(transient=True) as progress:
            task = progress.add_task("running backends", total=case_count * max(len(runnable), 1))
            yield lambda backend, case: progress.update(task, advance=1, description=f"{backend}: {case}")

    return bar()


def exit_status(document: Document, asked: list[str] | None = None) -> int:
    """0 when everything passed or is a known deviation (skips and stale entries allowed), 1 on a
    failure or error; under ``--strict`` known deviations and stale entries are failures too.
    Short of a failure, 3 (``not_verified``) when a backend ``asked`` for by name ran on no case,
    or when every result was skipped."""
    summary = document.summary
    strict = document.options.strict and (summary.known_deviations or summary.stale)
    if summary.failed or summary.errors or strict:
        return EXIT_FAILED
    return EXIT_NOT_RUN if not_verified(document, asked) else EXIT_OK


def not_verified(document: Document, asked: list[str] | None) -> str | None:
    """Why a run verified less than it was asked to, or None: the backends of ``asked`` (names and
    groups, as ``--backends`` takes them) whose every result was skipped, or that every result was."""
    statuses: dict[str, set[str]] = {}
    for result in document.results:
        for name, backend in result.backends.items():
            statuses.setdefault(name, set()).add(backend.status)
    if all(seen == {"skipped"} for seen in statuses.values()):
        return "every result was skipped: nothing was compared with the reference"
    unrun = [name for name in resolve(asked) if statuses.get(name) == {"skipped"}] if asked else []
    if unrun:
        return f"{', '.join(unrun)} asked for with --backends but ran on no case (skipped above)"
    return None


def finish(document: Document, args: argparse.Namespace) -> int:
    """The exit status of a run or report (``exit_status``), saying on stderr why when it is 3."""
    status = exit_status(document, args.backends)
    if status == EXIT_NOT_RUN:
        print(f"not verified: {not_verified(document, args.backends)}", file=sys.stderr)
    return status


def command_run(args: argparse.Namespace) -> int:
    """The parity matrix: summary table, optional JSON document."""
    json_path = args.json and check_json_path(args.json)
    document = run_parity(args)
    print_summary(document)
    if json_path:
        write_json(json_path, document.to_dict())
    return finish(document, args)


def command_explain(args: argparse.Namespace) -> int:
    """One backend on the chosen cases, every op of every result probed: the verdict, the
    diagnosis and the reproducer of each; exit status as for run."""
    if split_requirement(args.backend)[0] not in known():
        raise UsageError(f"unknown backend {args.backend!r}; explain takes one of {', '.join(known())}")
    missing = missing_requirement(entry(args.backend))
    if missing:
        raise UsageError(f"cannot explain {args.backend}: {missing}")
    args.backends = [args.backend]
    document = run_parity(args, probe_all=True)
    for result in document.results:
        print(explanation(args.backend, result))
    return finish(document, args)


def command_report(args: argparse.Namespace) -> int:
    """The parity matrix written as report.html, report.md, report.json and plots."""
    out = check_out_dir(args.out, "--out")
    timings = load_bench(args.bench) if args.bench else None
    document = merge(load_documents(args.merge)) if args.merge else run_parity(args, decision_boundaries=True)
    print_summary(document)
    paths = write_report(document, out, timings, processes=default_parallel())
    print(f"report: {paths['report.html'].resolve()}")
    return finish(document, args)


def command_backends(args: argparse.Namespace) -> int:
    """Every backend, built-in and plugin: framework version, role, origin, whether it runs here."""
    rows = inventory()
    if args.json:
        write_json(check_json_path(args.json), inventory_document(rows))
    else:
        print_inventory(rows)
    return EXIT_OK


def command_envs(args: argparse.Namespace) -> int:
    """The environments of pinned backends: list them, or clear them (all, or those named)."""
    if args.action == "list" and args.names:
        raise UsageError("envs list takes no names (gradparity envs clear NAME removes one)")
    if args.action == "list":
        print_environments(venvs.kept(), venvs.folder())
        return EXIT_OK
    removed = venvs.clear(args.names)
    print(f"removed {len(removed)} environment{'s' if len(removed) != 1 else ''} from {venvs.folder()}")
    return EXIT_OK


def print_environments(kept: list[venvs.Kept], folder: Path) -> None:
    """One line per kept environment: requirement, Python, size, when made and in how long."""
    if not kept:
        print(f"no environments in {folder} (gradparity run --backends jax==0.4.30 makes one)")
    for environment in kept:
        print(f"{environment.requirement:<24} {environment.size() / 2**20:7.0f} MiB  {environment.python}  "
              f"made {environment.created} in {environment.seconds:.0f} s  {environment.path.name}")


def load_bench(path: str) -> BenchDocument:
    """A ``gradparity bench --json`` document, or UsageError saying why it cannot be read."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read --bench {path} as JSON: {error}") from None
    if not isinstance(document, dict) or document.get("schema") != BENCH_SCHEMA:
        raise UsageError(f"--bench {path} is not a {BENCH_SCHEMA} document (write one with gradparity bench --json)")
    problems = validate_bench(document)
    if problems:
        raise UsageError(f"--bench {path} is not a valid {BENCH_SCHEMA} document: {problems[0]}")
    return BenchDocument.from_dict(document)


def command_bench(args: argparse.Namespace) -> int:
    """Time the shapes on the backends, print the table and write the optional JSON document.
    Exit 0 when every installed backend ran; 1 when one failed to load, crashed or timed out."""
    json_path = args.json and check_json_path(args.json)
    repeats, threads = args.repeats, args.threads or default_parallel()
    cases = bench.bench_cases(args.shapes, args.dtype)
    names = bench.backend_names(args.backends)
    with progress_bar(len(cases), names) as progress:
        outcomes = bench.run_bench(cases, names, threads, repeats, args.device, args.timeout, progress)
    document = bench.bench_document(cases, outcomes, threads, repeats, args.device, args.bandwidth)
    print_bench_table(document)
    if json_path:
        write_json(json_path, document.to_dict())
    failed = bench.failed_backends(outcomes)
    if failed:
        print(f"failed: {', '.join(failed)} (see the notes)", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity train`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "train", help="train the reference network as the document's model() does",
        description="Train with the hand-derived NumPy backprop and print the cost as it goes, the final cost and "
                    "the accuracy. By default it is model() of the document (the derivation of backpropagation "
                    f"gradparity starts from): {MODEL}. "
                    "--optimizer and --batch-size give momentum, Adam and mini-batches. Exit 0: trained; 1: the "
                    "cost diverged (grew past its start or became NaN or infinite); 2: bad usage or data.",
        epilog=examples("gradparity train",
                        "gradparity train --hidden 16,8 --activation tanh --init xavier --plot plots",
                        "gradparity train --data points.csv --optimizer adam --lr 0.01 --batch-size 64 --epochs 20"))
    add_network_options(parser)
    add_training_options(parser, Training(learning_rate=1.2, epochs=10000))
    parser.add_argument("--iterations", type=positive_int, dest="epochs", metavar="K",
                        help="the document's name for --epochs with the full batch (default: 10000)")
    parser.add_argument("--print-every", type=positive_int, default=1000, metavar="N",
                        help="print and record the cost every N steps")
    parser.add_argument("--json", metavar="FILE", help="write the training set-up, every step's cost (taken on its "
                                                       "batch before the update), epoch means, the final cost and "
                                                       "the accuracy as JSON (default: not written)")
    parser.add_argument("--plot", metavar="DIR", help="write cost.png (every step's cost) and, for 2-feature data, "
                                                      "decision_boundary.png into DIR, created if needed (default: "
                                                      "no plots)")
    defer_network_defaults(parser, handler=command_train)


def add_gradcheck_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity gradcheck`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "gradcheck", help="reference gradients against central finite differences",
        description=f"Central differences (J(theta + h) - J(theta - h)) / 2h in float64, h = {STEP:g}, over every "
                    "parameter entry (a seeded sample of 400 for parameters with more than 2000), compared with the "
                    "reference's hand-derived gradients. With --dtype float32 the parameters and data are rounded "
                    "to float32 first and still differenced in float64. A failure says whether the rounding noise "
                    "of the differences explains it. Exit 0: within --threshold; 1: above it; 2: bad usage.",
        epilog=examples("gradparity gradcheck",
                        "gradparity gradcheck --hidden 16,8 --activation tanh --init xavier",
                        "gradparity gradcheck --case relu --dtype float32"))
    add_network_options(parser, with_case=True)
    parser.add_argument("--threshold", type=float, default=1e-7,
                        help="largest relative difference ||g - g_num|| / (||g|| + ||g_num||) allowed")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the sampled entries")
    defer_network_defaults(parser, handler=command_gradcheck)


def add_check_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity check`` to the CLI's subcommands."""
    forms = "; ".join(f"{convention.name}: {convention.summary}" for convention in CONVENTIONS)
    parser = commands.add_parser(
        "check", help="check your own backprop against the reference: a .py, a module or a notebook",
        description="Call your backprop code on networks and their data and compare the cost and every gradient "
                    "dW1, db1, ... with the hand-derived reference (which decides), with central differences of your "
                    "own cost and with every installed framework. Your code is found by its functions' names and "
                    f"signatures, in one of these forms ({forms}); a notebook contributes its definitions only. "
                    "Without --hidden, --params or --case it is checked on networks of 1, 2 and 3 hidden layers, and "
                    "the network it computes (hidden activation, output and loss) is read from its own cost. Names "
                    "the wrong quantities, the first wrong gradient counted from the output, and the classic mistake "
                    "it matches. Layout: X (n0, m), Y (nL, m), parameters {'W1': (n1, n0), 'b1': (n1, 1), ...}, "
                    "grads {'dW1': ..., 'db1': ..., ...}. Exit 0: right; 1: a quantity is wrong (NaN and wrong shapes "
                    "included); 2: bad usage, or your code raised or returned something unreadable.",
        epilog=examples("gradparity check examples/backprop.py",
                        "gradparity check my_notebook.ipynb --backends none --json check.json",
                        "gradparity check my_backprop.py:backprop --hidden 8,4 --activation tanh --dtype float32"))
    parser.add_argument("target", metavar="FILE",
                        help="your code: FILE.py, FILE.ipynb or package.module, each optionally :FUNCTION for a "
                             "backprop(X, Y, parameters) function of another name")
    parser.add_argument("--convention", choices=[convention.name for convention in CONVENTIONS], metavar="NAME",
                        help=f"the form your code follows: {', '.join(c.name for c in CONVENTIONS)} (default: found "
                             "by its functions' names and signatures)")
    add_network_options(parser, with_case=True)
    for action in parser._actions:
        if action.dest in ("activation", "loss"):
            action.default = learner.AUTO
            action.help += "; auto: the network read from your own cost"
    parser.add_argument("--params", metavar="FILE", help=".npz with W1, b1, ..., WL, bL: your own parameters, "
                                                         "instead of --init and --hidden (default: none)")
    parser.add_argument("--backends", type=comma_list, metavar="LIST",
                        help=f"frameworks to corroborate with (default: every installed one of "
                             f"{', '.join(learner.FRAMEWORKS)}); none: the reference and finite differences only")
    parser.add_argument("--json", metavar="FILE", help="write the result: verdict, wrong, first_wrong, hint, every "
                                                       "network's checks; on an error, the message and your traceback "
                                                       "(default: not written)")
    defer_network_defaults(parser, handler=command_check)


def add_run_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity run`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "run", help="run the parity matrix: cases x backends x dtypes",
        description="Every case on every backend, each backend in its own worker process, compared with the "
                    "reference: cost, gradients, activations and a short training run. The summary gives each "
                    "result's share of its tolerance and the quantity closest to it, and why each skipped result "
                    "was skipped. " + EXIT_STATUSES,
        epilog=examples("gradparity run",
                        "gradparity run --case tanh --case relu --backends torch,jax --dtype float32",
                        "gradparity run --data data.npz --params params.npz --activation relu --json run.json"))
    add_selection_options(parser)
    parser.add_argument("--json", metavar="FILE", help="write the gradparity/2 result document (default: not written)")
    parser.add_argument("--include-arrays", action="store_true", help="put the gradients themselves in the JSON")
    defer_network_defaults(parser, handler=command_run)


def add_report_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity report`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "report", help="run the parity matrix and write HTML, Markdown, JSON and plots",
        description="As run, then write report.html (self-contained), report.md, report.json and plots/ into "
                    "--out, each file replaced atomically. Exit statuses as for run.",
        epilog=examples("gradparity report",
                        "gradparity report --case seed-2layer --backends torch --out my-report",
                        "gradparity report --merge shard1.json shard2.json --bench bench.json"))
    add_selection_options(parser)
    parser.add_argument("--out", default="reports/latest", metavar="DIR",
                        help="output folder, relative to the current directory, created if needed (default: "
                             "reports/latest)")
    parser.add_argument("--bench", metavar="FILE",
                        help="a gradparity bench --json document to add as a performance section (default: none)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="instead of running, combine result documents (run --json: shards, or runs on other "
                             "machines or framework versions) into one report (default: run)")
    defer_network_defaults(parser, handler=command_report)


def add_explain_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity explain`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "explain", help="why one backend fails or deviates: the ops and a reproducer",
        description="Run one backend on the chosen cases and probe every operation of the network alone against "
                    "NumPy in float64; print each result's verdict, the ops that deviate and a standalone "
                    "reproducer. Exit statuses as for run.",
        epilog=examples("gradparity explain keras-jax --case tanh",
                        "gradparity explain keras-torch --case seed-2layer --dtype float64,float32",
                        "gradparity explain torch --case relu --dtype float32"))
    parser.add_argument("backend", metavar="BACKEND", help=f"one of {', '.join(known())}, or one of them with a "
                                                           "version requirement (jax==0.4.30)")
    add_selection_options(parser, several_backends=False, dtypes=("float64",))
    defer_network_defaults(parser, handler=command_explain)


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity bench`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "bench", help="time one training step per backend and mode against the NumPy reference",
        description="Time ONE full training step (forward, backward, parameter update) per backend, eagerly and "
                    "compiled where the framework has a compiler, each backend in its own process, one at a time, "
                    "all with the same thread count. Reports the median and min-max per step over --repeats "
                    f"samples (each >= {MIN_SAMPLE_S * 1e3:g} ms of steps, after warm-up), the one-off compile time "
                    "(first call - median step) and how each compares with the NumPy reference (numpy, eager, "
                    "always run, on the CPU), in words: '2× slower', '1.6× faster', or '≈ same' within 3%; --json "
                    "keeps ratio_to_reference = median / reference median (above 1: slower). Exit 0: every "
                    "installed backend ran; 1: one failed; 2: bad usage.",
        epilog=examples("gradparity bench",
                        "gradparity bench --shapes seed,deep --backends torch,jax --dtype float32",
                        "gradparity bench --threads 1 --repeats 15 --json bench.json"))
    parser.add_argument("--shapes", type=comma_list, default=list(BENCH_SHAPES), metavar="LIST",
                        help="networks to time, comma-separated (default: all): seed = 2-4-1 sigmoid/bce flower m=400, "
                             "deep = 20-16-8-4-1 sigmoid/bce m=400, digits = 64-25-12-10 relu/softmax-ce m=1797, "
                             "signs = 12288-25-12-6 relu/softmax-ce m=1080")
    parser.add_argument("--backends", type=comma_list, metavar="LIST",
                        help="comma-separated backends (default: every installed one that trains): numpy, jax, torch, "
                             "tensorflow, keras-tensorflow, keras-jax, keras-torch, keras; numpy is always added")
    parser.add_argument("--dtype", type=comma_list, default=list(DTYPES), metavar="LIST",
                        help="dtypes, comma-separated")
    parser.add_argument("--repeats", type=positive_int, default=bench.DEFAULT_REPEATS, metavar="N",
                        help="timed samples per mode")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads for every backend (default: all "
                                                                          f"cores, {default_parallel()} here)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the framework backends")
    parser.add_argument("--timeout", type=positive_seconds, default=bench.DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="limit per backend")
    parser.add_argument("--bandwidth", action="store_true",
                        help="also measure NumPy's read bandwidth and compare the signs step with reading X twice")
    parser.add_argument("--json", metavar="FILE", help="write the gradparity-bench/1 document (default: not written)")
    parser.set_defaults(handler=command_bench)


def add_backends_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity backends`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "backends", help="list every backend, built-in and from plugins, and whether it runs here",
        description="Every backend gradparity knows: the built-in ones and those that installed plugins declare "
                    "(entry-point group gradparity.backends), with the installed version of each package it needs, "
                    "its role (framework, control or ground truth), where it comes from, whether it can run here and, "
                    "where it cannot, what to install. Imports no framework. Exit 0.",
        epilog=examples("gradparity backends", "gradparity backends --json backends.json"))
    parser.add_argument("--json", metavar="FILE", help="write the list as JSON instead (default: print the table)")
    parser.set_defaults(handler=command_backends)


def add_envs_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``gradparity envs`` to the CLI's subcommands."""
    parser = commands.add_parser(
        "envs", help="list or clear the environments of backends pinned to a version",
        description="A backend pinned to a version (run --backends jax==0.4.30,jax) runs from a Python environment "
                    "made for it with uv and kept in the cache folder ($GRADPARITY_CACHE_DIR/envs, by default "
                    "~/.cache/gradparity/envs), keyed by its requirements and the Python version. list shows them; "
                    "clear removes them all, or those named (by requirement or folder name). Exit 0; 2: no such "
                    "environment.",
        epilog=examples("gradparity envs list", "gradparity envs clear", "gradparity envs clear jax==0.4.30"))
    parser.add_argument("action", choices=("list", "clear"), help="what to do")
    parser.add_argument("names", nargs="*", metavar="NAME", help="with clear: the environments to remove (default: all)")
    parser.set_defaults(handler=command_envs)


def build_parser() -> argparse.ArgumentParser:
    """The ``gradparity`` parser with its nine subcommands."""
    parser = Parser(prog="gradparity", description=(
        "Prove that a hand-derived NumPy backprop and the autodiff of JAX, PyTorch, TensorFlow and Keras compute "
        "the same costs and gradients for the same network, and report how closely. The document is the "
        f"derivation of backpropagation gradparity starts from; its model() is {MODEL}. gradparity COMMAND --help "
        "explains each command."),
        epilog=examples("gradparity train", "gradparity run --case seed-2layer", "gradparity check my_backprop.py"))
    parser.add_argument("--version", action="version", version=f"gradparity {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for add in (add_train_parser, add_gradcheck_parser, add_check_parser, add_run_parser, add_report_parser,
                add_explain_parser, add_bench_parser, add_backends_parser, add_envs_parser):
        add(commands)
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
    except BrokenPipeError:  # the reader of the output (| head) stopped reading: stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

