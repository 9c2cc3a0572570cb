"""The parity engine's orchestration: run cases on backends (``runner``), each answer judged as
it arrives (``judge``), and the typed ``gradparity/2`` result document assembled."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
from threadpoolctl import threadpool_limits

from gradparity import cluster, venvs
from gradparity.backends import BackendEntry, entry, resolve
from gradparity.core.cases import Case
from gradparity.core.errors import GradparityError
from gradparity.core.reference import Params
from gradparity.core.second_order import check_direction, default_direction
from gradparity.core.results import SCHEMA, Document, Options, RunRecord, Summary, Timing, split_requirement
from gradparity.environment import fingerprint
from gradparity.judge import Judge, Judging
from gradparity.runner import BackendOutcome, Inspect, Progress, WorkerRun, default_parallel, run_backends
from gradparity.versions import between_versions, version_groups

DEFAULT_TIMEOUT = 600.0


@dataclass
class RunOptions:
    """How to run: which backends (registry names, or extra entries injected through the API),
    device, TF32, per-backend timeout in seconds, workers at a time, arrays in the document,
    the decision boundary of the trained reference for 2-D float64 cases (for reports), and
    ``strict``: known deviations and stale entries count as failures (recorded in the document),
    ``shard = (K, N)``: only the K-th of N shares of the case x backend matrix (``shares``), and
    ``probe_all``: probe and diagnose every result, passing ones too (``gradparity explain``),
    and ``trajectories``: run each case's training too (False: cost, gradients and activations
    alone, all that ``gradparity check`` asks of a framework); ``order = 2`` asks every backend's
    second-order modes too, along ``direction`` (arrays keyed like the parameters, read from
    ``direction_source``) or, where it is None, each case's seeded one
    (``core.second_order.default_direction``). ``executor``: ``local`` worker processes, or
    ``ray`` actors (``gradparity.cluster``) on the Ray cluster at ``ray_address`` (None: a local
    instance started for the run; ``auto``: the running one)."""

    backends: list[str] | None = None
    extra_backends: dict[str, BackendEntry] = field(default_factory=dict)
    device: str = "cpu"
    allow_tf32: bool = False
    timeout: float = DEFAULT_TIMEOUT
    parallel: int | None = None
    include_arrays: bool = False
    decision_boundaries: bool = False
    strict: bool = False
    shard: tuple[int, int] | None = None
    probe_all: bool = False
    trajectories: bool = True
    order: int = 1
    direction: Params | None = None
    direction_source: str = "seeded"
    executor: str = "local"
    ray_address: str | None = None

    def judging(self, entries: dict[str, BackendEntry]) -> Judging:
        """What of these options the judge needs, for a run of ``entries``."""
        versioned = frozenset(column for members in version_groups(list(entries)).values() for column in members)
        registered = tuple(dict.fromkeys(deviation for entry in entries.values() for deviation in entry.deviations))
        return Judging(self.include_arrays, self.probe_all, self.trajectories, self.decision_boundaries,
                       self.direction_source, versioned, registered)

    def directed(self, cases: list[Case]) -> list[Case]:
        """``cases`` with their second-order direction in their dtype where ``order`` is 2 (a
        direction that does not fit a case's network is refused, naming both); as they are else."""
        if self.order == 1:
            return cases
        if self.order != 2:
            raise GradparityError(f"order must be 1 or 2, got {self.order}")
        directed = []
        for case in cases:
            direction = self.direction if self.direction is not None else default_direction(case.spec)
            check_direction(case.spec, direction, f"{self.direction_source} (for case {case.name})")
            directed.append(replace(case, direction={name: np.asarray(value, case.dtype) for name, value in direction.items()}))
        return directed

    def entries(self) -> dict[str, BackendEntry]:
        """The backends to run, by name: the chosen built-in, plugin and pinned ones
        (``backends.entry``) and the extra entries."""
        entries = {name: entry(name) for name in resolve(self.backends)} if self.backends != [] else {}
        return {**entries, **self.extra_backends}


def run(cases: list[Case], options: RunOptions | None = None, progress: Progress | None = None) -> Document:
    """Run ``cases`` on the chosen backends and return the result document. Each answer is
    judged as it arrives; a result that fails, or that a registered deviation applies to, gets
    its single operations probed in the same worker before it is let go."""
    options = options or RunOptions()
    cases = options.directed(cases)
    started = time.perf_counter()
    entries = options.entries()
    judge = Judge(cases, options.judging(entries))
    outcomes, threads, parallel, assigned = execute(cases, entries, options, progress, judge.inspect)
    results = judge.results(outcomes, assigned)
    run_record = RunRecord(datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter() - started,
                           threads, parallel, {}, {}, {}, {}, options.executor,
                           {name: outcome.restarts for name, outcome in outcomes.items() if outcome.restarts})
    for outcome in outcomes.values():
        record_time(run_record, outcome, cases)
    return Document(SCHEMA, fingerprint(outcomes, options.device, options.allow_tf32),
                    run_options(cases, options, outcomes), results, Summary.of(results), run_record,
                    between_versions(cases, outcomes))


def execute(cases: list[Case], entries: dict[str, BackendEntry], options: RunOptions, progress: Progress | None,
            inspect: Inspect) -> tuple[dict[str, BackendOutcome], int, int, dict[str, list[int]]]:
    """Every backend's outcome on its share of ``cases`` (``shares``), on the executor the options
    name; and the threads per worker, the workers at a time and the shares. Local workers share
    this machine's cores; on Ray each actor has one CPU, as many at once as the cluster has."""
    assigned = shares(len(cases), list(entries), *(options.shard or (1, 1)))
    if options.executor == "ray":
        with cluster.connected(options.ray_address) as cpus:
            parallel = options.parallel or cpus
            run = WorkerRun(cases, worker_options(options, 1), options.timeout, parallel)
            return cluster.run_backends(run, entries, progress, inspect, assigned), 1, parallel, assigned
    if options.executor != "local":
        raise GradparityError(f"executor must be local or ray, got {options.executor!r}")
    entries = venvs.prepared(entries)
    parallel = options.parallel or default_parallel()
    threads = max(1, default_parallel() // min(parallel, len(entries) or 1))
    run = WorkerRun(cases, worker_options(options, threads), options.timeout, parallel)
    with threadpool_limits(limits=1):  # the cores are the workers': more BLAS threads here only spin against them
        return run_backends(run, entries, progress, inspect, assigned), threads, parallel, assigned


def worker_options(options: RunOptions, threads: int) -> dict:
    """The options every worker starts with."""
    return {"device": options.device, "allow_tf32": options.allow_tf32, "train": options.trajectories,
            "threads": threads}


def run_options(cases: list[Case], options: RunOptions, outcomes: dict[str, BackendOutcome]) -> Options:
    """The document's record of what was asked."""
    return Options(
        cases=list(dict.fromkeys(case.name for case in cases)), backends=list(outcomes),
        dtypes=list(dict.fromkeys(case.dtype for case in cases)), steps=sorted({case.steps for case in cases}),
        optimizers=list(dict.fromkeys(case.training.optimizer for case in cases)), strict=options.strict,
        trajectories=options.trajectories, shard=list(options.shard) if options.shard else None,
        roles={name: outcome.role for name, outcome in outcomes.items()}, order=options.order)


def record_time(run_record: RunRecord, outcome: BackendOutcome, cases: list[Case]) -> None:
    """One worker's seconds in the run's record: in all, importing, per case and ``time_spent``."""
    name = outcome.name
    run_record.backend_seconds[name] = outcome.seconds
    run_record.import_seconds[name] = outcome.import_seconds
    run_record.case_seconds[name] = {cases[i].key: seconds for i, seconds in outcome.case_seconds.items()}
    if outcome.status != "skipped":
        run_record.timing[name] = time_spent(outcome)


def time_spent(outcome: BackendOutcome) -> Timing:
    """Where one worker's wall time went: ``setup_s`` (its start to its backend loaded: process,
    imports, adapter), ``compile_s`` and ``compute_s`` (its cases' seconds, split by the
    framework's compile seconds; compile None, and all in compute, where it does not say),
    ``probes_s`` and ``total_s``; what is left is waiting for work and shutting down."""
    compiles = [seconds for seconds in outcome.compile_seconds.values() if seconds is not None]
    compiled = sum(compiles) if len(compiles) == len(outcome.compile_seconds) else None
    return Timing(outcome.setup_seconds, compiled, sum(outcome.case_seconds.values()) - (compiled or 0.0),
                  outcome.probe_seconds, outcome.seconds)


def shares(case_count: int, backends: list[str], k: int, n: int) -> dict[str, list[int]]:
    """The case indices each backend runs in share ``k`` of ``n``: the (case, backend) pairs of
    the matrix, numbered case by case in order, go to share ``number mod n + 1``; the versions
    of one backend count as one backend, so that a share holds all of them on its cases and can
    compare them (``gradparity.versions``)."""
    members: dict[str, list[str]] = {}
    for name in backends:
        members.setdefault(split_requirement(name)[0], []).append(name)
    pairs = enumerate((index, backend) for index in range(case_count) for backend in members)
    assigned: dict[str, list[int]] = {name: [] for name in backends}
    for number, (index, backend) in pairs:
        if number % n == k - 1:
            for name in members[backend]:
                assigned[name].append(index)
    return assigned
