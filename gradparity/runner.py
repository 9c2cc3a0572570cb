"""Runs backends in isolated worker processes: one spawned worker per backend serving every
case, at most ``parallel`` workers at a time, each under a timeout. A crash, hang, import
failure or exception in one backend is recorded for it and the others carry on."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable

from gradparity.backends import BackendEntry, missing_requirement
from gradparity.backends.worker import serve
from gradparity.core.cases import Case

Progress = Callable[[str, str], None]


@dataclass
class BackendOutcome:
    """What one backend produced: per case index ``(evaluation, trajectory, seconds)`` or an
    error message; or a status for the whole backend (``skipped``/``error``) with its reason."""

    name: str
    status: str = "ok"
    reason: str = ""
    version: str | None = None
    flags: dict = field(default_factory=dict)
    import_seconds: float | None = None
    seconds: float = 0.0
    outputs: dict[int, tuple] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class _Worker:
    outcome: BackendOutcome
    process: multiprocessing.Process
    results: Connection
    deadline: float
    started: float


def run_backends(cases: list[Case], entries: dict[str, BackendEntry], options: dict,
                 timeout: float, parallel: int, progress: Progress | None = None) -> dict[str, BackendOutcome]:
    """Every case on every backend in ``entries``; returns one outcome per backend."""
    outcomes = {name: BackendOutcome(name) for name in entries}
    pending = []
    for name, entry in entries.items():
        missing = missing_requirement(entry)
        if missing:
            outcomes[name].status, outcomes[name].reason = "skipped", missing
        else:
            pending.append(name)
    pending.sort(key=lambda name: -entries[name].seconds)  # costliest first: workers finish together
    context = multiprocessing.get_context("spawn")
    active: dict[Connection, _Worker] = {}
    while pending or active:
        while pending and len(active) < parallel:
            name = pending.pop(0)
            worker = _start(context, outcomes[name], entries[name], cases, options, timeout)
            active[worker.results] = worker
        ready = wait(list(active), timeout=max(0.0, min(w.deadline for w in active.values()) - time.monotonic()))
        for connection in ready:
            if not _receive(active[connection], connection, cases, progress):
                _finish(active.pop(connection), cases, None)
        for connection, worker in list(active.items()):
            if time.monotonic() > worker.deadline:
                _finish(active.pop(connection), cases, f"timed out after {timeout:.0f} s")
    return outcomes


def _start(context, outcome: BackendOutcome, entry: BackendEntry, cases: list[Case], options: dict,
           timeout: float) -> _Worker:
    jobs_child, jobs_parent = context.Pipe(duplex=False)
    results_parent, results_child = context.Pipe(duplex=False)
    process = context.Process(target=serve, args=(outcome.name, entry, options, jobs_child, results_child),
                              name=f"gradparity-{outcome.name}", daemon=True)
    process.start()
    jobs_child.close()
    results_child.close()
    threading.Thread(target=_feed, args=(jobs_parent, cases), daemon=True).start()
    now = time.monotonic()
    return _Worker(outcome, process, results_parent, now + timeout, now)


def _feed(jobs: Connection, cases: list[Case]) -> None:
    """Send every case, then None; a worker that died stops the feed."""
    try:
        for index, case in enumerate(cases):
            jobs.send((index, case))
        jobs.send(None)
    except (BrokenPipeError, EOFError, OSError):
        pass
    finally:
        jobs.close()


def _receive(worker: _Worker, connection: Connection, cases: list[Case], progress: Progress | None) -> bool:
    """Handle one message; False when the worker is finished (done, fatal or gone)."""
    outcome = worker.outcome
    try:
        message = connection.recv()
    except (EOFError, OSError):
        return False
    kind = message[0]
    if kind == "ready":
        outcome.version, outcome.flags, outcome.import_seconds = message[1], message[2], message[3]
    elif kind == "fatal":
        outcome.status, outcome.reason = "error", message[1]
        return False
    elif kind == "result":
        outcome.outputs[message[1]] = message[2:]
    elif kind == "error":
        outcome.errors[message[1]] = message[2]
    if kind in ("result", "error") and progress:
        progress(outcome.name, cases[message[1]].key)
    return kind != "done"


def _finish(worker: _Worker, cases: list[Case], why: str | None) -> None:
    """Stop the process; every case it did not answer gets the reason it stopped."""
    worker.process.join(timeout=0 if why else 5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    outcome = worker.outcome
    outcome.seconds = time.monotonic() - worker.started
    if outcome.status == "error":
        return
    code = worker.process.exitcode
    reason = why or (f"worker process died (exit code {code})" if code else "worker stopped without answering")
    for index in range(len(cases)):
        if index not in outcome.outputs and index not in outcome.errors:
            outcome.errors[index] = reason


def default_parallel() -> int:
    """Workers at a time: the number of cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
