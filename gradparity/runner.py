"""Runs backends in isolated worker processes: one worker per backend serving every case, at
most ``parallel`` workers at a time, each under a timeout. A worker is an interpreter of its own
(``gradparity.backends.worker.main``, never a copy of the caller's main module), started
with its thread counts and malloc settings (``worker.start_environment``) and speaking over two
pipes; large arrays reach it as files it maps (``ArrayFiles``). A crash, hang, import failure or
exception in one backend is recorded for it, with the worker's last words, and the others carry
on.

Each answer is handed to ``inspect`` as it arrives; when that asks for it, the same worker
then probes the case's single operations (``backends.probe``) before it is let go. A worker's
own output (framework logging) is captured in a file and kept only for a backend that errors.

Workers stay warm within a process: a worker that answered its run waits, idle, for the next
run (a notebook's second ``gradparity.check``), its framework loaded and what it compiled
kept; it is reused only when everything its start depended on is unchanged (``start_key``),
else stopped and started afresh. One that crashed, hung or failed to load is never kept.
``shutdown`` stops the idle ones; it runs when the process exits, too."""

from __future__ import annotations

import atexit
import copy
import io
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable

import numpy as np

from gradparity.backends import BackendEntry, missing_requirement
from gradparity.backends.worker import PROVIDES, start_environment
from gradparity.core.cases import Case

STOP_SECONDS = 2.0  # an idle worker told to end is given this long, all of them together, before it is killed
SHARED_BYTES = 2**20  # an array this large goes to the workers as a file they map, not through their pipes
WORKER_MAIN = "import sys; from gradparity.backends.worker import main; main(sys.argv[1:])"
Progress = Callable[[str, str], None]
Inspect = Callable[["BackendOutcome", int], bool]  # (outcome, case index) -> probe that case?


@dataclass
class BackendOutcome:
    """What one backend produced: per case index its answer (``(evaluation, trajectory)``), the
    reason it skipped the case, or an error message, and the op probes asked for (records, or
    why they failed); or a status for the whole backend (``skipped``/``error``) with its reason.
    ``provides`` and ``role`` are the adapter's own (``backends.contract.Adapter``); ``output``
    its captured stdout/stderr; on a Ray cluster, the ``node`` it ran on (a label and the
    machine's fingerprint, ``environment.machine``) and how often its actor was restarted.
    Where the time went: ``setup_seconds`` from the worker's start to
    its backend loaded (process, imports, adapter), per answered case its seconds and, of those,
    the framework's compile seconds (None where it does not say), the seconds of all its probes,
    and ``seconds`` from start to finish."""

    name: str
    status: str = "ok"
    reason: str = ""
    version: str | None = None
    flags: dict = field(default_factory=dict)
    import_seconds: float | None = None
    setup_seconds: float | None = None
    seconds: float = 0.0
    case_seconds: dict[int, float] = field(default_factory=dict)
    compile_seconds: dict[int, float | None] = field(default_factory=dict)
    probe_seconds: float = 0.0
    provides: tuple[str, ...] = PROVIDES
    role: str = "framework"
    outputs: dict[int, tuple] = field(default_factory=dict)
    skips: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    probes: dict[int, list[dict] | str] = field(default_factory=dict)
    output: str = ""
    node: dict | None = None
    restarts: int = 0


@dataclass
class _Process:
    """A live worker process: its pipes, its captured output, what its start depended on
    (``start_key``) and, once it has loaded its backend, its ``ready`` figures (version, flags,
    import seconds, provides, role), which every run it serves reports."""

    key: tuple
    process: subprocess.Popen
    jobs: Connection
    results: Connection
    log: str
    ready: tuple | None = None

    def tell_to_end(self) -> None:
        """Send the end message (None) to an idle worker: it exits at once."""
        try:
            self.jobs.send(None)
        except OSError:  # it is gone already
            pass

    def retire(self) -> None:
        """Tell it to end and give it ``STOP_SECONDS`` before it is killed."""
        self.tell_to_end()
        self.stop(STOP_SECONDS)

    def stop(self, grace: float, offset: int = 0) -> str:
        """Wait ``grace`` seconds for the process to exit, kill it if it has not, reap it and
        close its pipes. Returns its output from ``offset`` on; its log is removed."""
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.jobs.close()
        self.results.close()
        try:
            return _read_from(self.log, offset)
        finally:
            os.remove(self.log)


@dataclass
class _Worker:
    """One run's use of a live worker process: the cases it serves in this run, this run's
    deadline and where this run's output starts in its log."""

    outcome: BackendOutcome
    live: _Process
    jobs: queue.SimpleQueue
    indices: list[int]  # the cases it serves
    deadline: float
    started: float
    log_offset: int
    probing: int = 0  # probes asked for and not yet answered
    released: bool = False  # the run's last job ("idle",) has been queued
    rested: bool = False  # it answered ("done",): every job of this run handled, idle again

    def answered(self) -> bool:
        """Every case it serves answered, and every probe asked for."""
        done = len(self.outcome.outputs) + len(self.outcome.skips) + len(self.outcome.errors)
        return done == len(self.indices) and not self.probing

    def release(self) -> None:
        if not self.released:
            self.jobs.put(("idle",))
            self.released = True


_IDLE: dict[str, _Process] = {}  # per backend name, the worker kept from an earlier run
_IDLE_LOCK = threading.Lock()


def start_key(name: str, entry: BackendEntry, options: dict, environment: dict[str, str]) -> tuple:
    """Everything a worker's start depended on: backend name, entry, worker options, start
    environment, this process's ``sys.path`` and working folder, and the worker command. A
    worker kept from an earlier run serves a new one only when this is equal."""
    return (*copy.deepcopy((name, entry, options)), environment, tuple(sys.path), os.getcwd(),
            tuple(worker_command(entry.interpreter)))


def _take_idle(name: str, key: tuple) -> _Process | None:
    """The idle worker of backend ``name`` when it was started as ``key`` says and is still
    running; else None, and an idle one that no longer fits is stopped."""
    with _IDLE_LOCK:
        live = _IDLE.pop(name, None)
    if live is None:
        return None
    if live.key == key and live.process.poll() is None:
        return live
    live.retire()
    return None


def _keep_idle(name: str, live: _Process) -> None:
    """Keep ``live`` for the next run (stopping one kept before for the same name)."""
    with _IDLE_LOCK:
        previous = _IDLE.get(name)
        _IDLE[name] = live
    if previous is not None:
        previous.retire()


def idle_workers() -> dict[str, int]:
    """The workers kept warm between runs: backend name -> process id."""
    with _IDLE_LOCK:
        return {name: live.process.pid for name, live in _IDLE.items()}


def shutdown() -> None:
    """Stop every worker kept between runs: each is sent the end message, and all of them
    together get ``STOP_SECONDS`` to exit before the rest are killed. Runs at the process's exit
    (``atexit``); a later run starts fresh workers."""
    with _IDLE_LOCK:
        idle = list(_IDLE.values())
        _IDLE.clear()
    for live in idle:
        live.tell_to_end()
    deadline = time.monotonic() + STOP_SECONDS
    for live in idle:
        live.stop(max(0.0, deadline - time.monotonic()))


atexit.register(shutdown)


@dataclass(frozen=True)
class WorkerRun:
    """What one run of the workers needs: the cases, the options every worker starts with,
    the seconds each backend may take and how many workers run at once."""

    cases: list[Case]
    options: dict
    timeout: float
    parallel: int = 1


def run_backends(run: WorkerRun, entries: dict[str, BackendEntry], progress: Progress | None = None,
                 inspect: Inspect | None = None, assigned: dict[str, list[int]] | None = None) -> dict[str, BackendOutcome]:
    """Every case of ``run`` on every backend in ``entries`` (or, per backend, the case indices
    ``assigned`` to it); returns one outcome per backend. A worker kept from an earlier run
    serves its backend again where it fits (``start_key``); every worker that answered all it
    was given is kept for the next run."""
    cases = run.cases
    assigned = assigned or {name: list(range(len(cases))) for name in entries}
    outcomes, pending = triaged(entries)
    active: dict[Connection, _Worker] = {}
    with tempfile.TemporaryDirectory(prefix="gradparity-arrays-") as directory:
        files = ArrayFiles(cases, directory)
        try:
            while pending or active:
                while pending and len(active) < run.parallel:
                    name = pending.pop(0)
                    worker = _begin(outcomes[name], entries[name], run, assigned[name], files)
                    active[worker.live.results] = worker
                soonest = min(worker.deadline for worker in active.values())
                ready = wait(list(active), timeout=max(0.0, soonest - time.monotonic()))
                for connection in ready:
                    if not _receive(active[connection], connection, cases, progress, inspect):
                        _finish(active.pop(connection), None)
                for connection, worker in list(active.items()):
                    if time.monotonic() > worker.deadline:
                        _finish(active.pop(connection), f"timed out after {run.timeout:.0f} s")
        finally:
            for worker in active.values():  # left mid-run by an exception (an interrupt): not reusable
                worker.live.stop(0)
                worker.release()
    return outcomes


def triaged(entries: dict[str, BackendEntry]) -> tuple[dict[str, BackendOutcome], list[str]]:
    """A new outcome per backend, refused entries already errors and those missing a requirement
    skipped; and the names left to run, costliest first (so that the workers finish together)."""
    outcomes = {name: BackendOutcome(name) for name in entries}
    pending = []
    for name, entry in entries.items():
        missing = missing_requirement(entry)
        if entry.refused:
            outcomes[name].status, outcomes[name].reason = "error", entry.refused
        elif missing:
            outcomes[name].status, outcomes[name].reason = "skipped", missing
        else:
            pending.append(name)
    return outcomes, sorted(pending, key=lambda name: -entries[name].seconds)


def unanswered(outcome: BackendOutcome, indices: list[int], reason: str) -> None:
    """Every case of ``indices`` that ``outcome`` has no answer for becomes an error: ``reason``."""
    for index in indices:
        if index not in outcome.outputs and index not in outcome.skips and index not in outcome.errors:
            outcome.errors[index] = reason


class ArrayFiles:
    """The cases' arrays of at least ``SHARED_BYTES``, each written once to a ``.npy`` file in
    ``directory``; a job pickled by ``dumps`` carries such an array as ``numpy.load(path, "c")``,
    so every worker maps the one file (copy on write) instead of receiving its bytes. The files
    are written in the background while the first workers start; the arrays are held here, so
    that their ids stay theirs while jobs are pickled."""

    def __init__(self, cases: list[Case], directory: str) -> None:
        self.arrays = {id(array): array for case in cases
                       for array in (case.X, case.Y, *case.params.values()) if array.nbytes >= SHARED_BYTES}
        self.paths = {key: os.path.join(directory, f"{number}.npy") for number, key in enumerate(self.arrays)}
        self.writing = threading.Thread(target=self._write, daemon=True)
        self.writing.start()

    def _write(self) -> None:
        for key, array in self.arrays.items():
            np.save(self.paths[key], array)

    def dumps(self, job: object) -> bytes:
        """``job`` pickled, with each array written here replaced by a reference to its file
        (once every file is written)."""
        self.writing.join()
        buffer = io.BytesIO()
        _FilePickler(buffer, self.paths).dump(job)
        return buffer.getvalue()


class _FilePickler(pickle.Pickler):
    """Pickles an array whose id is in ``paths`` as ``numpy.load(path, "c")``."""

    def __init__(self, buffer: io.BytesIO, paths: dict[int, str]) -> None:
        super().__init__(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        self.paths = paths

    def reducer_override(self, value: object) -> object:
        path = self.paths.get(id(value)) if isinstance(value, np.ndarray) else None
        return (np.load, (path, "c")) if path else NotImplemented


def _begin(outcome: BackendOutcome, entry: BackendEntry, run: WorkerRun, indices: list[int],
           files: ArrayFiles) -> _Worker:
    """Give a worker this run's cases: the idle one kept for this backend where it fits
    (``start_key``; its ``ready`` figures are this run's, its set-up 0 s), else a fresh one
    (``spawn``). The timeout counts from now; the run's output starts at the log's end."""
    now, options = time.monotonic(), run.options
    environment = os.environ | start_environment(options.get("threads", 1))
    key = start_key(outcome.name, entry, options, environment)
    live = _take_idle(outcome.name, key)
    if live is None:
        live = spawn(outcome.name, entry, options, environment, key)
    elif live.ready is not None:
        outcome.version, outcome.flags, outcome.import_seconds, outcome.provides, outcome.role = live.ready
        outcome.setup_seconds = 0.0
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for index in indices:
        jobs.put(("case", index, run.cases[index]))
    worker = _Worker(outcome, live, jobs, indices, now + run.timeout, now, os.path.getsize(live.log))  # before its jobs
    threading.Thread(target=_feed, args=(live.jobs, jobs, files), daemon=True).start()
    if not indices:
        worker.release()
    return worker


def spawn(name: str, entry: BackendEntry, options: dict, environment: dict[str, str], key: tuple) -> _Process:
    """Start a worker process (``worker_command``) on two pipes, with its start ``environment``
    and its output captured in a file; the first job tells it which backend to load and this
    process's ``sys.path`` (``worker_path``), so a module the caller can import (an injected
    backend, a learner's own) is importable there too."""
    jobs_read, jobs_write = os.pipe()
    results_read, results_write = os.pipe()
    descriptor, log = tempfile.mkstemp(prefix=f"gradparity-{name}-", suffix=".log")
    try:
        process = subprocess.Popen([*worker_command(entry.interpreter), str(jobs_read), str(results_write)],
                                   pass_fds=(jobs_read, results_write), stdin=subprocess.DEVNULL,
                                   stdout=descriptor, stderr=subprocess.STDOUT, env=environment)
    finally:
        for end in (jobs_read, results_write, descriptor):
            os.close(end)
    jobs = Connection(jobs_write, readable=False)
    try:  # a few hundred bytes, at once: the worker loads its backend while the array files are written
        jobs.send(("start", name, entry, options, worker_path(entry)))
    except OSError:  # it died at once: _finish says why
        pass
    return _Process(key, process, jobs, Connection(results_read, writable=False), log)


def worker_command(interpreter: str | None = None) -> list[str]:
    """The command line of a worker process, before its two pipe descriptors: ``interpreter``
    (this one by default; a pinned backend's environment's) calling
    ``gradparity.backends.worker.main`` (the caller's main module is never imported there; not
    ``-m``, which would run the module a second time as ``__main__``, since importing
    ``gradparity`` imports it), with Python's fault handler on, so a crash in a framework's
    native code leaves its stack in the worker's output."""
    return [interpreter or sys.executable, "-X", "faulthandler", "-c", WORKER_MAIN]


def worker_path(entry: BackendEntry) -> list[str]:
    """The ``sys.path`` entries a worker puts first: all of this process's, or, for a worker
    in another environment, those outside this environment's installation (its standard
    library and site-packages would shadow the other environment's own packages)."""
    if entry.interpreter is None:
        return sys.path
    installation = {os.path.realpath(prefix) for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return [folder for folder in sys.path
            if not any(os.path.realpath(folder or ".").startswith(prefix + os.sep) for prefix in installation)]


def _feed(connection: Connection, jobs: queue.SimpleQueue, files: ArrayFiles) -> None:
    """Send each queued job of a run up to and including its last, ``("idle",)``, large arrays
    as their files; a worker that died stops the feed. The connection stays open for the next run."""
    try:
        while True:
            job = jobs.get()
            connection.send_bytes(files.dumps(job))
            if job == ("idle",):
                break
    except (BrokenPipeError, EOFError, OSError):
        pass


def _receive(worker: _Worker, connection: Connection, cases: list[Case], progress: Progress | None,
             inspect: Inspect | None) -> bool:
    """Handle one message; False when the worker is finished (done, fatal or gone)."""
    outcome = worker.outcome
    try:
        message = connection.recv()
    except (EOFError, OSError):
        return False
    kind = message[0]
    record(outcome, message)
    if kind == "ready":
        # the worker's own stamp: the parent may read the message late, while the worker computes
        outcome.setup_seconds = min(message[6], time.monotonic()) - worker.started
        worker.live.ready = message[1:6]
    elif kind == "done":
        worker.rested = True
    elif kind == "probe":
        worker.probing -= 1
    if kind in ANSWERS and answered(outcome, message[1], cases, progress, inspect):
        worker.jobs.put(("probe", message[1]))
        worker.probing += 1
    if worker.answered():
        worker.release()
    return kind not in ("done", "fatal")


ANSWERS = ("result", "skipped", "error")  # the messages that answer a case


def record(outcome: BackendOutcome, message: tuple) -> None:
    """Put what a worker's message says (``backends.worker``) into its backend's ``outcome``."""
    kind = message[0]
    if kind == "ready":
        outcome.version, outcome.flags, outcome.import_seconds, outcome.provides, outcome.role = message[1:6]
    elif kind == "fatal":
        outcome.status, outcome.reason = "error", message[1]
    elif kind == "result":
        outcome.outputs[message[1]] = message[2]
        outcome.case_seconds[message[1]], outcome.compile_seconds[message[1]] = message[3:5]
    elif kind == "skipped":
        outcome.skips[message[1]] = message[2]
    elif kind == "error":
        outcome.errors[message[1]] = message[2]
    elif kind == "probe":
        outcome.probes[message[1]] = message[2]
        outcome.probe_seconds += message[3]


def answered(outcome: BackendOutcome, index: int, cases: list[Case], progress: Progress | None,
             inspect: Inspect | None) -> bool:
    """A case answered: the progress moves on; True where ``inspect`` asks for its probes."""
    if progress:
        progress(outcome.name, cases[index].key)
    return bool(inspect and inspect(outcome, index))


def _finish(worker: _Worker, why: str | None) -> None:
    """End the worker's run: one that answered everything and is idle is kept for the next run;
    any other is stopped, and every case it did not answer gets the reason it stopped."""
    live, outcome = worker.live, worker.outcome
    outcome.seconds = time.monotonic() - worker.started
    if why is None and worker.rested:
        outcome.output = _read_from(live.log, worker.log_offset)
        _keep_idle(outcome.name, live)
    else:  # without a why it ended by itself (a crash, a fatal error): its exit is waited for
        outcome.output = live.stop(0 if why else 5, worker.log_offset)
        worker.release()  # its feed, waiting for a job, meets the closed pipe and ends
    if outcome.status == "error":
        return
    unanswered(outcome, worker.indices, why or stopped(live.process.returncode, outcome.output))


def stopped(code: int, output: str) -> str:
    """Why a worker ended before answering: its exit code (a negative one is the signal that
    killed it) and what it last said (``last_words``)."""
    if not code:
        head = "worker stopped without answering"
    elif code < 0 and -code in signal.valid_signals():
        head = f"worker process died (signal {signal.Signals(-code).name})"
    else:
        head = f"worker process died (exit code {code})"
    said = last_words(output)
    return f"{head}: {said}" if said else head


def last_words(output: str) -> str:
    """The line of a worker's output that says why it stopped: the exception line that ends a
    Python traceback, else a ``Fatal Python error`` line (the fault handler's, on a crash in
    native code), else its last line; empty where it said nothing."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if "Traceback (most recent call last):" in lines:
        after = lines[len(lines) - 1 - lines[::-1].index("Traceback (most recent call last):"):]
        frames = [line for line in after[1:] if not line.startswith(("File ", "^", "~"))]
        return frames[-1][:400] if frames else ""
    fatal = next((line for line in lines if line.startswith("Fatal Python error")), None)
    return (fatal or (lines[-1] if lines else ""))[:400]


def _read_from(path: str, offset: int) -> str:
    """The text of a worker's captured output from byte ``offset`` on (undecodable bytes replaced)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def default_parallel() -> int:
    """Workers at a time: the number of cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
