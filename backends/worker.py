"""The worker process of one backend: loads the framework once, then serves every case, run
after run.

Jobs from the parent: ``("case", index, case)``, ``("probe", index)`` (the op probes of a case
already served, ``backends.probe``; ``("probe", index, case)`` carries the case again),
``("idle",)`` at the end of each run, and finally None.
What it does with a case is the job named by ``options["job"]``: ``parity`` (the default)
answers ``(evaluation, trajectory)``, ``bench`` answers ``(timings,)``, one entry per bench mode.

Messages to the parent, in order: ``("ready", version, flags, import_seconds, provides, role,
ready_at)`` (``ready_at``: ``time.monotonic()`` when the backend was loaded, a clock every
process of the machine shares) or ``("fatal", message)``; then per case ``("result", index,
answer, seconds, compile_seconds)`` (``compile_seconds``: of those seconds, the time the
framework spent compiling, None where it does not say: ``Adapter.compile_seconds``),
``("skipped", index, reason)`` (``contract.Unsupported``) or ``("error", index, message)``,
per probe ``("probe", index, records, seconds)``; ``("done",)`` for each ``("idle",)``, once
the run's cases are forgotten and its output flushed to the log.
Between runs it waits, its framework loaded and what it compiled kept (``runner`` keeps it
warm); it ends on None, or when its parent is gone (the jobs pipe closed).
The worker is its own interpreter calling ``main`` with two pipe descriptors, JOBS and RESULTS;
the first job is ``("start", name, entry, options, sys_path)``. Its stdout and stderr (framework
C++ logging included) go to a file the parent shows only for a backend that errors.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from multiprocessing.connection import Connection

from gradparity.backends import BackendEntry, load
from gradparity.backends.contract import DEFAULT_OPTIMIZERS, VERSION, SecondOrder, Unsupported
from gradparity.backends.probe import probe_case
from gradparity.backends.timing import measured, time_step, unmeasured

HEAP_BLOCK_BYTES = 256 * 2**20  # blocks up to this size come from the heap, not from their own mapping
HEAP_PAD_BYTES = 64 * 2**20  # freed heap kept at its top
PROVIDES = ("cost", "gradients", "activations", "trajectory")  # an adapter's default
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def start_environment(threads: int) -> dict[str, str]:
    """The environment a worker starts with (the parent sets it around ``process.start()``,
    ``runner``): its math libraries' threads (``thread_environment``) and glibc's malloc
    settings (``MALLOC_ENVIRONMENT``), both read at start-up, before ``serve`` runs."""
    return thread_environment(threads) | MALLOC_ENVIRONMENT


def thread_environment(threads: int) -> dict[str, str]:
    """The environment that gives every math library of a worker ``threads`` threads: NumPy's
    BLAS reads it when NumPy is first imported, which in a worker happens before
    ``serve`` runs. The user's own ``XLA_FLAGS`` are kept, the thread flag after them (the last
    of a flag given twice counts); XLA stops reading at the first word without ``--``."""
    eigen = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
    return {**{variable: str(threads) for variable in THREAD_VARIABLES}, "TF_NUM_INTEROP_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),  # TF's C++ info and warnings
            "XLA_FLAGS": " ".join(filter(None, [os.environ.get("XLA_FLAGS"), eigen]))}


# glibc's malloc, left to itself, gives each block above its mmap threshold (128 KB, rising to at
# most 32 MB) a mapping of its own, unmapped when freed, and hands freed heap above 128 KB back
# to the OS: every training step's arrays and every copy of a case's data (a 100 MB X) were
# page-faulted and zeroed by the kernel afresh. These keep blocks up to HEAP_BLOCK_BYTES in the
# heap and keep freed heap for reuse (up to twice that; HEAP_PAD_BYTES more on each growth).
# Other C libraries ignore the variables.
MALLOC_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(HEAP_BLOCK_BYTES),
                      "MALLOC_TRIM_THRESHOLD_": str(2 * HEAP_BLOCK_BYTES),
                      "MALLOC_TOP_PAD_": str(HEAP_PAD_BYTES)}


def describe(error: BaseException) -> str:
    """One line: the exception type, its message and where it was raised."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    message = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {message[:400]}{where}"


def hide(packages: tuple[str, ...]) -> None:
    """Make ``import package`` raise ImportError in this process, for each of ``packages`` not
    imported yet (``None`` in ``sys.modules``): a framework that tries it goes on without."""
    for package in packages:
        sys.modules.setdefault(package, None)


def main(descriptors: list[str]) -> None:
    """The worker process, on the two pipe descriptors ``[JOBS, RESULTS]`` its parent passed
    (``runner.worker_command``). The first job names the backend and carries the
    parent's ``sys.path``, whose entries go first here, as they are there."""
    jobs = Connection(int(descriptors[0]), writable=False)
    results = Connection(int(descriptors[1]), readable=False)
    _start, name, entry, options, path = jobs.recv()
    sys.path[:] = [*path, *(folder for folder in sys.path if folder not in path)]
    serve(name, entry, options, jobs, results)


def serve(name: str, entry: BackendEntry, options: dict, jobs: Connection, results: Connection) -> None:
    """Load ``entry`` as ``name`` (``Server``), then answer each job until the end message."""
    server = Server(name, entry, options)
    results.send(server.greeting)
    if server.greeting[0] == "fatal":
        return
    while (message := next_job(jobs)) is not None:
        results.send(server.answer(message))
    flush_output()
    os._exit(0)  # every answer is sent: the frameworks' own teardown (slow for TensorFlow) is not needed


class Server:
    """One backend loaded (its ``unused`` packages hidden) and answering jobs, one message per
    job: the worker process's (``serve``) and a Ray actor's (``gradparity.cluster``). Its
    ``greeting`` is the ``ready`` message, or ``fatal`` where the backend could not load."""

    def __init__(self, name: str, entry: BackendEntry, options: dict) -> None:
        started = time.perf_counter()
        hide(entry.unused)
        self.options, self.cases = options, {}
        self.greeting: tuple
        try:
            self.adapter = load(name, options.get("device", "cpu"), options.get("allow_tf32", False), entry)
            check_methods(self.adapter, options)
            self.greeting = ("ready", self.adapter.version(), self.adapter.flags(), time.perf_counter() - started,
                             provided(self.adapter, options), getattr(self.adapter, "role", "framework"),
                             time.monotonic())
        except BaseException as error:  # an import failure is this backend's result, not a crash
            self.greeting = ("fatal", describe(error))

    def answer(self, message: tuple) -> tuple:
        """The reply to one job: ``("done",)`` to ``("idle",)`` (the run's cases forgotten, the
        output flushed), the probes of a case served before, or a case's result, skip or error."""
        began = time.perf_counter()
        if message[0] == "idle":
            self.cases.clear()
            flush_output()
            return ("done",)
        if message[0] == "probe":  # it may carry its case: an actor that Ray restarted has not seen it
            case = message[2] if len(message) > 2 else self.cases[message[1]]
            return ("probe", message[1], probes_of(self.adapter, case), time.perf_counter() - began)
        _kind, index, case = message
        self.cases[index] = case
        compiling = getattr(self.adapter, "compile_seconds", lambda: None)
        compiled_before = compiling()
        try:
            answer = JOBS[self.options.get("job", "parity")](self.adapter, case, self.options)
            compiled = None if compiled_before is None else compiling() - compiled_before
            return ("result", index, answer, time.perf_counter() - began, compiled)
        except Unsupported as reason:
            return ("skipped", index, str(reason))
        except Exception as error:
            return ("error", index, describe(error))


def next_job(jobs: Connection) -> tuple | None:
    """The next job from the parent; None (the end) when the parent is gone too."""
    try:
        return jobs.recv()
    except EOFError:
        return None


def flush_output() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def probes_of(adapter, case) -> list[dict] | str:
    """The op probes of ``case`` (``backends.probe.probe_case``), or why they could not run."""
    try:
        return probe_case(adapter, case)
    except Exception as error:
        return describe(error)


class ContractError(Exception):
    """An adapter that lacks a method of ``contract.Adapter`` the run needs."""


def check_methods(adapter, options: dict) -> None:
    """Raise ``ContractError`` naming every method the run needs that ``adapter`` lacks:
    ``version``, ``flags`` and ``evaluate``, and ``train`` where it provides a trajectory."""
    needed = ["version", "flags", "evaluate"] + (["train"] if "trajectory" in provided(adapter, options) else [])
    lacking = [f"{method}()" for method in needed if not callable(getattr(adapter, method, None))]
    if lacking:
        raise ContractError(f"{type(adapter).__module__}.Adapter lacks {', '.join(lacking)} of "
                            f"gradparity.backends.contract.Adapter (contract {VERSION})")


def provided(adapter, options: dict) -> tuple[str, ...]:
    """The quantities this worker answers: the adapter's own (``Adapter.provides``), without the
    trajectory when ``options["train"]`` is False."""
    provides = tuple(getattr(adapter, "provides", PROVIDES))
    return provides if options.get("train", True) else tuple(q for q in provides if q != "trajectory")


def parity_job(adapter, case, options: dict) -> tuple:
    """``(evaluation, trajectory)``: the trajectory is None where none is asked (``provided``),
    and says which optimizer form it ran (``Adapter.optimizers``); a case whose optimizer the
    adapter lacks is ``Unsupported``. A case with a direction gets the evaluation's
    ``second_order`` answers too (``second_order_answers``)."""
    if "trajectory" not in provided(adapter, options):
        return evaluated(adapter, case), None
    forms = getattr(adapter, "optimizers", DEFAULT_OPTIMIZERS)
    if case.training.optimizer not in forms:
        raise Unsupported(f"{adapter.name} has no {case.training.optimizer} optimizer "
                          f"(it runs {', '.join(forms)})")
    evaluation, trajectory = evaluated(adapter, case), adapter.train(case)
    if trajectory is not None:  # a missing trajectory fails in the comparison, by name
        trajectory.optimizer = forms[case.training.optimizer]
    return evaluation, trajectory


def evaluated(adapter, case):
    """``adapter.evaluate(case)``, with every second-order mode's answer where the case has a direction."""
    evaluation = adapter.evaluate(case)
    if case.direction is not None:
        evaluation.second_order = second_order_answers(adapter, case)
    return evaluation


def second_order_answers(adapter, case) -> list[SecondOrder]:
    """One answer per mode of ``Adapter.second_order_modes`` (none without it): a mode that
    cannot run here is skipped with its reason, one that raises is that mode's error alone."""
    answers = []
    for mode, computes in getattr(adapter, "second_order_modes", {}).items():
        try:
            answer = adapter.second_order(case, mode)
        except Unsupported as reason:
            answer = SecondOrder(skipped=str(reason))
        except Exception as error:
            answer = SecondOrder(error=describe(error))
        answer.mode, answer.computes = mode, tuple(computes)
        answers.append(answer)
    return answers


def bench_job(adapter, case, options: dict) -> tuple[list[dict]]:
    """``(timings,)``: one training step of ``case`` timed in every mode the adapter names
    (``time_step``), in a worker that keeps freed memory for reuse (``MALLOC_ENVIRONMENT``), as
    every backend's does; a mode that does not run, or fails, carries the reason."""
    timings = []
    for mode, reason in adapter.bench_modes().items():
        try:
            timings.append(unmeasured(mode, reason) if reason else
                           measured(mode, time_step(adapter.bench_step(case, mode), **options["bench"])))
        except Exception as error:
            timings.append(unmeasured(mode, describe(error)))
    return (timings,)


JOBS = {"parity": parity_job, "bench": bench_job}

