"""The result document, typed: what a parity run found, as the engine builds it, the reports
read it and JSON holds it (``to_dict``/``from_dict``; the JSON Schema from ``json_schema()``).

Its vocabulary is defined here once: the schema name, the statuses of a backend's result and
the summary key that counts each. ``SCHEMA`` changes when a field changes meaning, is renamed
or dropped, or a new one is required; a field added with a default leaves it as it is (a
document written before reads it as its default). A document of an older schema is read
through ``upgrade``, the one place that knows how the older ones differ.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from gradparity.core.record import Measure, OneOf, Record, words

SCHEMA = "gradparity/2"
OLDER_SCHEMAS = ("gradparity/1",)
Status = Annotated[str, OneOf(("pass", "known_deviation", "stale", "fail", "error", "skipped"))]
STATUSES = words(Status)
Kind = Annotated[str, OneOf(("cost", "activations", "gradients", "trajectory", "dtype", "tangents", "hvp"))]
Order = Annotated[int, OneOf((1, 2))]
Verdict = Annotated[str, OneOf(("pass", "fail", "known_deviation"))]
Optimizer = Annotated[str, OneOf(("sgd", "momentum", "adam", "adam-hat"))]
Shuffle = Annotated[str, OneOf(("none", "seed"))]
Role = Annotated[str, OneOf(("framework", "control", "ground truth"))]
SUMMARY_KEYS = {"pass": "passed", "fail": "failed", "known_deviation": "known_deviations", "stale": "stale",
                "skipped": "skipped", "error": "errors"}  # status -> the summary field that counts it


REQUIREMENT = re.compile(r"\s*(?:===?|~=|!=|<=?|>=?)")  # where a name ends and its PEP 440 version specifier begins


def split_requirement(name: str) -> tuple[str, str]:
    """A column's backend and its version requirement: ``("jax", "==0.4.30")`` from
    ``jax==0.4.30`` (a backend pinned to a version, ``gradparity run --backends``), and
    ``(name, "")`` for a plain name or a merged document's ``torch@label``."""
    found = REQUIREMENT.search(name)
    return (name, "") if found is None else (name[:found.start()].strip(), name[found.start():].strip())


@dataclass
class Deviation(Record):
    """A registered deviation as a check that it explains records it: its name, the operations
    that cause it, the cause in a sentence and what was measured."""

    name: str
    ops: list[str]
    cause: str
    measured: str


@dataclass
class Check(Record):
    """The comparison of one quantity (cost, dW1, A2, trajectory W1, ...) with the reference:
    the errors (NaN where nothing was measured), the worst and first mismatched entries, the
    tolerance and why, ``excess`` = max |a - b| / allowed (how many times the tolerance is used;
    above 1 fails), the verdict, the message of a failure and the registered deviation that
    explains it."""

    quantity: str
    kind: Kind
    max_abs_error: Measure
    max_rel_error: Measure
    rel_error: Measure
    ulps: Measure
    cosine: Measure
    worst_index: list[int]
    mismatched: int
    total: int
    rtol: float
    atol: float
    excess: Measure
    tolerance_reason: str
    verdict: Verdict
    message: str | None = None
    deviation: Deviation | None = None
    first_index: list[int] | None = None  # the first mismatched entry in C order, if any
    mode: str | None = None  # the second-order mode that computed it (``ModeResult``); None for first order


@dataclass
class Worst(Record):
    """The check with the largest relative error of a backend's result."""

    quantity: str
    rel_error: Measure
    ulps: Measure


@dataclass
class DeviatingOp(Record):
    """A framework operation that deviates from NumPy when probed alone: where it comes from,
    the dtypes in and out, its relative error and the tolerance it breaks."""

    op: str
    source: str
    input_dtype: str
    output_dtype: str | None
    rel_error: Measure
    tolerance: float


@dataclass
class Diagnosis(Record):
    """Why a result is not a plain pass: the operations that deviate when probed alone, all that
    were probed, the pattern of the failing checks in a sentence, a standalone reproducer."""

    ops: list[DeviatingOp]
    probed: list[str]
    pattern: str
    reproducer: str | None


@dataclass
class ModeResult(Record):
    """One second-order mode of a backend on a case (``jvp``, ``fwd-over-rev``, ...): what it
    computes (``tangents``: J̇ and Ȧ[l]; ``hvp``: H V), its status from its own checks (those of
    ``BackendResult.checks`` whose ``mode`` is this one), or skipped with the reason, and its
    worst check."""

    computes: list[str]
    status: Status
    reason: str
    worst: Worst | None


@dataclass
class BackendResult(Record):
    """One backend on one case: its status and the reason for it, the dtype it computed in, its
    cost (NaN without an answer) and training costs, every check, the optimizer form its
    trajectory followed, the first layer and step that diverge, the worst check, the diagnosis,
    a worker's captured output where it errored, its gradients when arrays are asked for, and
    the framework version that computed it (None where its worker never loaded it) and, in a
    second-order run, each of its second-order modes (whose checks are among ``checks``)."""

    status: Status
    reason: str
    dtype_used: str | None
    cost: Measure
    costs: list[Measure] | None
    checks: list[Check]
    optimizer: Optimizer | None
    first_divergent_layer: int | None
    first_divergent_step: int | None
    worst: Worst | None
    diagnosis: Diagnosis | None
    stderr: str | None
    gradients: dict[str, Any] | None
    version: str | None = None
    modes: dict[str, ModeResult] = field(default_factory=dict)

    @classmethod
    def unanswered(cls, status: Status, reason: str) -> BackendResult:
        """A result without numbers: skipped, or an error."""
        return cls(status, reason, None, math.nan, None, [], None, None, None, None, None, None, None)

    def failing(self) -> list[Check]:
        """The checks that are not a plain pass."""
        return [check for check in self.checks if check.verdict != "pass"]


@dataclass
class Formulations(Record):
    """For an Adam case, both forms' costs (every step, and the last) and how far they end
    apart — the last cost and the worst parameter, relatively — next to the trajectory rtol."""

    costs: dict[Optimizer, list[Measure]]
    last_costs: dict[Optimizer, Measure]
    last_cost: Measure
    params: Measure
    worst_param: str
    rtol: float


@dataclass
class DecisionBoundary(Record):
    """The trained reference's probability on an ``x`` by ``y`` grid (rows follow y), the data
    points ([x0 values, x1 values]) with their labels, the training accuracy and iterations."""

    x: list[float]
    y: list[float]
    probability: list[list[float]]
    points: list[list[float]]
    labels: list[Any]
    accuracy: float | None
    iterations: int | None


@dataclass
class Direction(Record):
    """The direction V of a case's second-order quantities: where it comes from (``seeded``:
    ``core.second_order.default_direction`` with ``seed``; or the file it was read from), the
    SHA-256 of its arrays (first 16 hex digits, as ``data``) and its largest entry; the arrays
    themselves when arrays are asked for."""

    source: str
    seed: int | None
    fingerprint: str
    max_abs: float
    arrays: dict[str, Any] | None = None


@dataclass
class SecondOrderRecord(Record):
    """The reference's second-order numbers for a case (``core.second_order``): the direction,
    J̇ = <∇J, V>, and the norm of each H V block; the arrays of H V when arrays are asked for."""

    direction: Direction
    cost_tangent: Measure
    hvp_norms: dict[str, float]
    hvp: dict[str, Any] | None = None


@dataclass
class ReferenceRecord(Record):
    """The reference's numbers for a case: cost, training costs (empty when trajectories were
    not run) and the optimizer form, both Adam forms for an Adam case, the decision boundary
    (2-D float64 cases, when asked) and the gradients when arrays are asked for."""

    cost: Measure
    costs: list[Measure]
    optimizer: Optimizer
    formulations: Formulations | None
    decision_boundary: DecisionBoundary | None
    gradients: dict[str, Any] | None
    second_order: SecondOrderRecord | None = None


@dataclass
class TrainingRecord(Record):
    """How a case trains: the optimizer and every setting, the hyper-parameters that optimizer
    uses, and the number of updates."""

    optimizer: Optimizer
    learning_rate: float
    epochs: int
    batch_size: int | None
    shuffle: Shuffle
    seed: int
    momentum: float
    beta1: float
    beta2: float
    epsilon: float
    hyperparameters: dict[str, float]
    steps: int


@dataclass
class CaseResult(Record):
    """One case: its name and description, dtype, data fingerprint (SHA-256 of network, data,
    parameters, dtype and training), network, examples, training, the reference's numbers and
    each backend's result by column name."""

    case: str
    description: str
    dtype: str
    data: str
    layers: list[int]
    hidden_activation: str
    loss: str
    m: int
    learning_rate: float
    steps: int
    training: TrainingRecord
    reference: ReferenceRecord
    backends: dict[str, BackendResult]


@dataclass
class Environment(Record):
    """Where a run ran: Python, platform, CPU and cores, NumPy and its BLAS, each backend's
    framework version and flags, device, TF32, the commit; a merged document keeps every source
    document's own under ``environments``, by label; a run on a Ray cluster keeps there each
    node's, by node label, and in ``nodes`` the node that ran each column."""

    python: str
    platform: str
    cpu: str | None
    cores: int | None
    numpy: str
    blas: str | None
    frameworks: dict[str, str]
    flags: dict[str, dict[str, Any]]
    device: str
    allow_tf32: bool
    git_commit: str | None
    environments: dict[str, Environment] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)


@dataclass
class Options(Record):
    """What was asked: cases, backends (columns), dtypes, the training steps and optimizers met,
    strictness, whether trajectories ran, the share of the matrix, each column's role, the
    labels of the documents a merged one comes from, and the order of derivatives checked (2:
    the second-order modes too, ``gradparity run --order 2``)."""

    cases: list[str]
    backends: list[str]
    dtypes: list[str]
    steps: list[int]
    optimizers: list[Optimizer]
    strict: bool
    trajectories: bool
    shard: list[int] | None
    roles: dict[str, Role]
    merged_from: list[str] = field(default_factory=list)
    order: Order = 1

    def controls(self) -> list[str]:
        """The columns that are controls, not evidence."""
        return [name for name, role in self.roles.items() if role == "control"]


@dataclass
class Timing(Record):
    """Where one worker's wall time went: its start to its backend loaded, its cases' compile
    (None where the framework does not say) and compute seconds, its probes, and in all."""

    setup_s: float | None
    compile_s: float | None
    compute_s: float
    probes_s: float
    total_s: float


@dataclass
class RunRecord(Record):
    """When and how long: the date, the run's seconds, threads per worker and workers at a time,
    and per column its seconds, import seconds, seconds per case and timing; what ran the
    workers (``local`` processes or ``ray`` actors) and, on Ray, how often a column's actor was
    restarted, where it was."""

    date: str
    duration_s: float
    threads_per_worker: int | None
    workers_at_a_time: int | None
    backend_seconds: dict[str, float]
    import_seconds: dict[str, float | None]
    case_seconds: dict[str, dict[str, float]]
    timing: dict[str, Timing]
    executor: str = "local"
    restarts: dict[str, int] = field(default_factory=dict)


@dataclass
class Summary(Record):
    """Counts of (case, backend) results by status."""

    passed: int
    failed: int
    known_deviations: int
    stale: int
    skipped: int
    errors: int

    @classmethod
    def of(cls, results: list[CaseResult]) -> Summary:
        """The counts of ``results``' backend statuses."""
        statuses = [backend.status for result in results for backend in result.backends.values()]
        return cls(**{key: statuses.count(status) for status, key in SUMMARY_KEYS.items()})

    def count(self, status: str) -> int:
        """How many results have ``status``."""
        return getattr(self, SUMMARY_KEYS[status])


@dataclass
class VersionGap(Record):
    """How far one quantity is apart between two versions of a framework: the most units in the
    last place of the case's dtype between two entries (0 where every entry is bit-identical),
    the largest absolute difference, and how many of the entries differ at all."""

    quantity: str
    kind: Kind
    ulps: Measure
    max_abs: Measure
    differing: int
    total: int


@dataclass
class OpGap(Record):
    """One probed operation in both versions: whether its outputs are bit-identical, and each
    version's relative error against NumPy in float64 (``DeviatingOp``)."""

    op: str
    identical: bool
    rel_errors: list[Measure]


@dataclass
class VersionComparison(Record):
    """One backend at two versions on one case (``gradparity run --backends jax==0.4.30,jax``):
    the backend, the two columns and the framework version each ran, the case and dtype, each
    quantity's gap and the op probes of both versions side by side."""

    backend: str
    columns: list[str]
    versions: list[str | None]
    case: str
    dtype: str
    quantities: list[VersionGap]
    ops: list[OpGap]

    def identical(self) -> bool:
        """Every quantity and every probed op bit-identical."""
        return all(gap.differing == 0 for gap in self.quantities) and all(op.identical for op in self.ops)


@dataclass
class Document(Record):
    """A parity run's result document (``gradparity/2``); where one backend ran at several
    versions, how far the versions' numbers are apart (``VersionComparison``)."""

    schema: str
    environment: Environment
    options: Options
    results: list[CaseResult]
    summary: Summary
    run: RunRecord
    versions: list[VersionComparison] = field(default_factory=list)


def upgrade(data: dict) -> dict:
    """A ``gradparity/1`` document as ``gradparity/2`` data (a current one as it is): the fields
    version 1 added over time filled as the runs that lacked them ran (no stale count, one
    optimizer form, trajectories run, no timing), ``steps`` as a list, ``controls`` as roles."""
    if data.get("schema") != "gradparity/1":
        return data
    options = data["options"]
    controls = options.get("controls", [])
    roles = options.get("roles") or {name: "control" if name in controls else "framework" for name in options["backends"]}
    steps = options.get("steps")
    return {
        **data, "schema": SCHEMA,
        "environment": _upgrade_environment(data["environment"]),
        "options": {"cases": options["cases"], "backends": options["backends"], "dtypes": options["dtypes"],
                    "steps": steps if isinstance(steps, list) else [] if steps is None else [steps],
                    "optimizers": options.get("optimizers") or _optimizers(data["results"]), "strict": options.get("strict", False),
                    "trajectories": options.get("trajectories", True), "shard": options.get("shard"),
                    "roles": roles, "merged_from": options.get("merged_from", [])},
        "results": [_upgrade_result(result) for result in data["results"]],
        "summary": {"stale": 0, **data["summary"]},
        "run": {"threads_per_worker": None, "workers_at_a_time": None, "import_seconds": {}, "case_seconds": {},
                "timing": {}, **data["run"]},
    }


def _optimizers(results: list[dict]) -> list[str]:
    """The optimizers of a document's cases, in order (gradient descent before there were others)."""
    return list(dict.fromkeys(result.get("training", {}).get("optimizer", "sgd") for result in results))


def _upgrade_environment(environment: dict) -> dict:
    inner = {label: _upgrade_environment(each) for label, each in environment.get("environments", {}).items()}
    return {"cores": None, "blas": None, "cpu": None, "git_commit": None, **environment, "environments": inner}


def _upgrade_result(result: dict) -> dict:
    training = result.get("training") or {
        "optimizer": "sgd", "learning_rate": result["learning_rate"], "epochs": result["steps"], "batch_size": None,
        "shuffle": "none", "seed": 0, "momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
        "hyperparameters": {"learning_rate": result["learning_rate"]}, "steps": result["steps"]}
    reference = {"optimizer": training["optimizer"], "formulations": None, "decision_boundary": None,
                 "gradients": None, **result["reference"]}
    if reference["formulations"] is not None:
        reference["formulations"] = {"costs": {}, **reference["formulations"]}
    backends = {name: _upgrade_backend(backend) for name, backend in result["backends"].items()}
    return {"data": "", **result, "training": training, "reference": reference, "backends": backends}


def _upgrade_backend(backend: dict) -> dict:
    checks = [{"excess": _share(check), "first_index": None, **check,
               "deviation": _upgrade_deviation(check["deviation"])} for check in backend["checks"]]
    diagnosis = backend.get("diagnosis")
    if diagnosis is not None:
        diagnosis = {"probed": [op["op"] for op in diagnosis["ops"]], **diagnosis}
    return {"optimizer": None, "first_divergent_step": None, "stderr": None, "gradients": None, **backend,
            "checks": checks, "diagnosis": diagnosis}


def _share(check: dict) -> float | None:
    """The share of its tolerance a check used, for a check from before ``excess`` was recorded:
    rel_error / rtol, the share of the tolerance's relative part."""
    if check["rel_error"] is None or not check["rtol"]:
        return None
    return check["rel_error"] / check["rtol"]


def _upgrade_deviation(deviation: dict | None) -> dict | None:
    if deviation is None:
        return None
    return {"name": deviation.get("name", ""), "ops": deviation.get("ops", []), "cause": deviation.get("cause"),
            "measured": str(deviation.get("measured"))}


CHECK_SCHEMA = "gradparity-check/2"
ReadFrom = Annotated[str, OneOf(("cost", "forward pass and gradients", "default", "options"))]


@dataclass
class Agreement(Record):
    """How one corroborating source's value of a quantity stands to the learner's and the
    reference's: ``agrees``, ``differs``, ``deviates`` or ``unmeasured``, and its relative error."""

    verdict: Annotated[str, OneOf(("agrees", "differs", "deviates", "unmeasured"))]
    rel_error: Measure


@dataclass
class Corroboration(Record):
    """One corroborating source (central differences of the learner's own cost, a framework):
    its status, what it is or why it has nothing, and its agreement per quantity."""

    status: Status
    reason: str
    quantities: dict[str, Agreement]


@dataclass
class NetworkRecord(Record):
    """A learner's code on one network: verdict, the wrong quantities and the first counted from
    the output, the hint and pattern of the likeliest mistake (and every mistake's hint by
    quantity), the shapes returned, an explanation where the finite differences disagree, the
    function and network, where the network was read from, the data, dtype and examples, every
    check, the corroborating sources and notes."""

    verdict: Annotated[str, OneOf(("pass", "fail"))]
    wrong: list[str]
    first_wrong: str | None
    hint: str | None
    pattern: str | None
    hints: dict[str, str]
    shapes: dict[str, Any]
    explanation: str | None
    function: str
    network: str
    read_from: ReadFrom
    data: str
    dtype: str
    m: int
    checks: list[Check]
    corroboration: dict[str, Corroboration]
    notes: list[str]


@dataclass
class CheckDocument(Record):
    """A learner's check (``gradparity-check/2``): the verdict and, for ``error``, the one-line
    message and the learner's traceback; the convention and functions called, the source, dtype,
    the focus network's wrong quantities, hint and pattern, notes on the code and one record per
    network checked."""

    schema: str
    verdict: Annotated[str, OneOf(("pass", "fail", "error"))]
    message: str | None
    traceback: str | None
    convention: str | None
    called: list[str]
    source: str | None
    dtype: str | None
    wrong: list[str]
    first_wrong: str | None
    hint: str | None
    pattern: str | None
    notes: list[str]
    networks: list[NetworkRecord]


BENCH_SCHEMA = "gradparity-bench/1"


@dataclass
class BenchRow(Record):
    """One timing of a benchmark: shape (case), dtype, backend and mode, the median, fastest and
    slowest seconds of a step, the compile seconds, the median's ratio to the reference's eager
    one (above 1: slower), why it was not measured, and the steps timed per sample."""

    shape: str
    dtype: str
    backend: str
    mode: Annotated[str, OneOf(("eager", "compiled"))]
    median_s: float | None
    min_s: float | None
    max_s: float | None
    compile_s: float | None
    ratio_to_reference: float | None
    note: str | None
    steps_per_sample: int | None = None


@dataclass
class BenchDocument(Record):
    """A benchmark (``gradparity-bench/1``): the environment with the timing settings, one row per
    shape, dtype, backend and mode, and with ``--bandwidth`` the read bandwidth and the limits it
    sets."""

    schema: str
    environment: dict[str, Any]
    results: list[BenchRow]
    bandwidth: dict[str, Any] | None = None


TRAIN_SCHEMA = "gradparity-train/1"


@dataclass
class CostAt(Record):
    """The cost printed after ``iteration`` updates."""

    iteration: int
    cost: Measure


@dataclass
class TrainDocument(Record):
    """A training of the reference (``gradparity train --json``): the network, dtype and training,
    the costs printed, every step's cost on its batch and the batch sizes, each epoch's mean
    cost, the final cost, why it diverged (None when it did not), the training accuracy in
    percent and the seconds it took."""

    schema: str
    network: str
    layers: list[int]
    dtype: str
    training: TrainingRecord
    learning_rate: float
    iterations: int
    costs: list[CostAt]
    step_costs: list[Measure]
    batch_sizes: list[int]
    epoch_costs: list[Measure]
    final_cost: Measure
    diverged: str | None
    accuracy: float
    training_seconds: float
