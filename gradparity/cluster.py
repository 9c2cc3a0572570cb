"""Runs backends on a Ray cluster (``gradparity run --executor ray``): each backend column a Ray
actor (``BackendActor``) that loads its backend once, as a worker process does
(``backends.worker.Server``), in a runtime environment carrying what that worker's start carries
(the backend's environment variables, its thread counts and malloc settings); a pinned version
runs from its uv environment, made and kept on the node that runs it (``WorkerProcess``). The driver
sends each actor one case at a time and the next as it answers; each answer is recorded and
judged here exactly as the local runner's (``runner.record``, ``runner.answered``), so the
document is the same.

Placement: an actor asks for one CPU (and one GPU for a framework on ``--device cuda``); at most
as many actors run at once as the cluster has CPUs, costliest backends first. Faults: Ray
restarts an actor that dies up to ``MAX_RESTARTS`` times and sends it again the job it was doing,
so its backend's remaining cases resume; past that, they are errors naming the last death. Each
backend has the local runner's timeout. Each answer says which node it came from; the document
records each column's node (``Environment.nodes``) and that node's fingerprint.

Ray is an extra (``pip install 'gradparity[ray]'``) imported only here, only when asked for.
Without an address a local Ray instance is started and shut down at the end, an interrupt
included; ``auto`` or ``HOST:PORT`` joins a running cluster, which is left running."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from gradparity import venvs
from gradparity.backends import BackendEntry
from gradparity.backends.worker import Server, start_environment
from gradparity.core.cases import Case
from gradparity.core.errors import GradparityError
from gradparity.environment import machine
from gradparity.runner import (ANSWERS, BackendOutcome, Inspect, Progress, WorkerRun, answered, last_words, record,
                               spawn, stopped, triaged, unanswered, worker_path)

MAX_RESTARTS = 3  # times Ray restarts a backend's actor that died before its remaining cases are errors
INSTALL_HINT = "the Ray executor needs Ray, which is not installed: pip install 'gradparity[ray]'"
OUTPUT_SECONDS = 5.0  # an actor's captured output is waited for this long
TOKEN_HINT = "a cluster that asks for a token needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH here too"


def ray_module() -> Any:
    """Ray, or GradparityError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise GradparityError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[int]:
    """Connected to the Ray cluster at ``address`` (None: a new local instance, started here and
    shut down on leaving, however it is left; ``auto``: ``RAY_ADDRESS`` or the cluster ``ray
    start`` started on this machine; a process that called ``ray.init`` itself runs where that
    connected it, and stays connected); yields the cluster's CPUs. Ray's own log lines and the
    actors' output stay out of this terminal (the output is kept per actor: ``BackendActor``)."""
    ray = ray_module()
    started_here = not ray.is_initialized()
    if started_here:
        local = {"include_dashboard": False} if address is None else {}
        try:
            ray.init(address=address or "local", log_to_driver=False, logging_level=logging.ERROR, **local)
        except ConnectionError as error:
            raise GradparityError(f"no Ray cluster at {address}: {last_words(str(error))} ({TOKEN_HINT})") from None
    try:
        yield int(ray.cluster_resources().get("CPU", 1))
    finally:
        if started_here:
            ray.shutdown()


class BackendActor:
    """A backend column on a node: the worker's ``Server`` in this actor's process (or, for a
    pinned version, its ``WorkerProcess``), its output (framework logging included) captured in
    a file, the driver's ``sys.path`` entries first. Every reply comes with ``node``: a label (host
    name and Ray node id), the process id (another one after a restart) and the machine's
    fingerprint (``environment.machine``)."""

    def __init__(self, name: str, entry: BackendEntry, options: dict, path: list[str]) -> None:
        import ray

        descriptor, self.log = tempfile.mkstemp(prefix=f"gradparity-{name}-", suffix=".log")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            os.dup2(descriptor, stream.fileno())
        os.close(descriptor)
        sys.path[:] = [*path, *(folder for folder in sys.path if folder not in path)]
        node_id = ray.get_runtime_context().get_node_id()
        self.node = {"label": f"{socket.gethostname()}/{node_id[:8]}", "pid": os.getpid(), **machine()}
        self.server = WorkerProcess(name, entry, options) if entry.pinned else Server(name, entry, options)

    def start(self) -> tuple[dict, tuple]:
        """The server's greeting: ``ready``, or ``fatal`` where the backend could not load."""
        return self.node, self.server.greeting

    def case(self, index: int, case: Case) -> tuple[dict, tuple]:
        """The answer to one case (``Server.answer``)."""
        return self.node, self.server.answer(("case", index, case))

    def probe(self, index: int, case: Case) -> tuple[dict, tuple]:
        """The op probes of a case (sent again: a restarted actor has not seen it)."""
        return self.node, self.server.answer(("probe", index, case))

    def output(self) -> str:
        """What this actor's process has printed so far."""
        with open(self.log, "rb") as handle:
            return handle.read().decode("utf-8", "replace")


class WorkerProcess:
    """A pinned version's backend on this node: its environment made here (``venvs``, kept in
    this node's cache folder, as the local runner keeps it) and its worker process started with
    that environment's interpreter (``runner.spawn``), answering the same jobs over its pipes,
    one reply each. When the worker process is gone the actor ends too, so that Ray starts both
    again."""

    def __init__(self, name: str, entry: BackendEntry, options: dict) -> None:
        entry = venvs.prepared({name: entry}, announce=print)[name]
        if entry.refused:
            self.greeting = ("fatal", entry.refused)
            return
        self.live = spawn(name, entry, options, dict(os.environ), ())
        self.greeting = self.reply()

    def answer(self, message: tuple) -> tuple:
        """The worker's reply to ``message``."""
        self.live.jobs.send(message)
        return self.reply()

    def reply(self) -> tuple:
        """The worker's next message; where it is gone, this actor's process ends."""
        try:
            return self.live.results.recv()
        except (EOFError, OSError):
            print(stopped(self.live.process.wait(), ""), flush=True)
            os._exit(1)


@dataclass
class _Column:
    """One backend's actor in this run: its outcome, its cases and those not yet sent, the
    probes asked for and the job in flight."""

    outcome: BackendOutcome
    actor: Any
    indices: list[int]
    started: float
    deadline: float
    todo: list[int] = field(default_factory=list)
    probes: list[int] = field(default_factory=list)
    job: tuple = ("start",)


def run_backends(run: WorkerRun, entries: dict[str, BackendEntry], progress: Progress | None = None,
                 inspect: Inspect | None = None, assigned: dict[str, list[int]] | None = None) -> dict[str, BackendOutcome]:
    """Every case of ``run`` on every backend in ``entries`` (or the case indices ``assigned``
    to it), each backend an actor on the connected cluster (``connected``), at most
    ``run.parallel`` at once; returns one outcome per backend, as ``runner.run_backends`` does."""
    ray = ray_module()
    assigned = assigned or {name: list(range(len(run.cases))) for name in entries}
    outcomes, pending = triaged(entries)
    flights: dict[Any, _Column] = {}
    try:
        while pending or flights:
            while pending and len(flights) < run.parallel:
                name = pending.pop(0)
                column = _begin(ray, outcomes[name], entries[name], run, assigned[name])
                if column is not None:
                    flights[_send(column, run.cases)] = column
            if not flights:
                continue
            soonest = min(column.deadline for column in flights.values())
            done, _ = ray.wait(list(flights), num_returns=1, timeout=max(0.0, soonest - time.monotonic()))
            for reference in done:
                column = flights.pop(reference)
                if _take(ray, column, reference, run.cases, progress, inspect):
                    flights[_send(column, run.cases)] = column
                else:
                    _finish(ray, column, None)
            for reference, column in list(flights.items()):
                if time.monotonic() > column.deadline:
                    del flights[reference]
                    _finish(ray, column, f"timed out after {run.timeout:.0f} s")
    finally:
        for column in flights.values():  # left mid-run by an exception (an interrupt)
            ray.kill(column.actor, no_restart=True)
    return outcomes


def _begin(ray: Any, outcome: BackendOutcome, entry: BackendEntry, run: WorkerRun, indices: list[int]) -> _Column | None:
    """Start the backend's actor (``actor_options``); its timeout counts from now. One that asks
    for a GPU on a cluster without any is an error at once (Ray would wait for one forever)."""
    now = time.monotonic()
    options = actor_options(outcome.name, entry, run.options)
    if options["num_gpus"] and not ray.cluster_resources().get("GPU"):
        outcome.status, outcome.reason = "error", "it asks for a GPU (--device cuda) and the Ray cluster has none"
        return None
    actor = ray.remote(BackendActor).options(**options)
    handle = actor.remote(outcome.name, entry, run.options, worker_path(entry))
    return _Column(outcome, handle, indices, now, now + run.timeout, todo=list(indices))


def actor_options(name: str, entry: BackendEntry, options: dict) -> dict:
    """A backend's actor: one CPU, one GPU for a framework on CUDA, restarted up to
    ``MAX_RESTARTS`` times, the job it was doing sent again to the restarted one (by Ray, which
    waits for the restart), its runtime environment the worker's start environment with the
    backend's own variables."""
    variables = start_environment(options.get("threads", 1)) | entry.environment
    gpus = 1 if options.get("device") == "cuda" and entry.role == "framework" else 0
    return {"num_cpus": 1, "num_gpus": gpus, "max_restarts": MAX_RESTARTS, "max_task_retries": -1,
            "runtime_env": {"env_vars": variables}}


def _send(column: _Column, cases: list[Case]) -> Any:
    """Send the column's job (``column.job``): its start, a probe asked for, or a case."""
    kind, *index = column.job
    actor = column.actor
    if kind == "start":
        return actor.start.remote()
    method = actor.case if kind == "case" else actor.probe
    return method.remote(index[0], cases[index[0]])


def _take(ray: Any, column: _Column, reference: Any, cases: list[Case], progress: Progress | None,
          inspect: Inspect | None) -> bool:
    """Take the reply to the column's job and choose the next job; False when the column is
    finished (everything answered, its backend failed to load, or its actor died for good). A
    reply from another process than the last one's is the first of a restarted actor."""
    outcome = column.outcome
    try:
        node, reply = ray.get(reference)
    except ray.exceptions.RuntimeEnvSetupError as error:
        outcome.status, outcome.reason = "error", f"Ray could not make its runtime environment: {last_words(str(error))}"
        return False
    except ray.exceptions.RayActorError as error:  # Ray gave up on it: every restart used
        unanswered(outcome, column.indices, f"its Ray actor died {MAX_RESTARTS + 1} times: {last_words(str(error))}")
        return False
    except ray.exceptions.RayError as error:  # the job raised in the actor
        node, reply = outcome.node, failed(column.job, last_words(str(error)))
    if outcome.node and node and node["pid"] != outcome.node["pid"]:
        outcome.restarts += 1
    outcome.node = node
    record(outcome, reply)
    if column.job == ("start",):
        outcome.setup_seconds = time.monotonic() - column.started
        if reply[0] == "fatal":
            return False
    elif reply[0] in ANSWERS and answered(outcome, reply[1], cases, progress, inspect):
        column.probes.append(reply[1])
    return _next_job(column)


def failed(job: tuple, reason: str) -> tuple:
    """The reply a job that raised stands for: the backend's fatal error for its start, the
    probes' reason for a probe, the case's error for a case."""
    kind, *index = job
    if kind == "start":
        return ("fatal", reason)
    return ("probe", index[0], reason, 0.0) if kind == "probe" else ("error", index[0], reason)


def _next_job(column: _Column) -> bool:
    """Choose the column's next job: a probe asked for, else the next case; False when none is left."""
    if column.probes:
        column.job = ("probe", column.probes.pop(0))
    elif column.todo:
        column.job = ("case", column.todo.pop(0))
    else:
        return False
    return True


def _finish(ray: Any, column: _Column, why: str | None) -> None:
    """End the column: its actor's output kept, the actor stopped, and every case it did not
    answer an error with ``why``."""
    outcome = column.outcome
    outcome.seconds = time.monotonic() - column.started
    if why is None:  # a timed-out actor is still busy with its case
        with contextlib.suppress(ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            outcome.output = ray.get(column.actor.output.remote(), timeout=OUTPUT_SECONDS)
    ray.kill(column.actor, no_restart=True)
    if why and outcome.status != "error":
        unanswered(outcome, column.indices, why)
