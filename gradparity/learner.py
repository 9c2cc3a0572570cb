"""Check a learner's own backprop: ``gradparity check``, ``gradparity.check`` and
``gradparity.assert_backprop_matches``.

The learner's function follows the course's convention::

    def backprop(X, Y, parameters):   # X (n0, m), Y (nL, m), parameters {"W1", "b1", ..., "WL", "bL"}
        ...
        return cost, grads            # grads {"dW1", "db1", ..., "dWL", "dbL"}

Its cost and every gradient are compared with the reference under the tolerances the backends
get (``core.compare.tolerance``); the reference decides the verdict. Central differences in
float64 and every framework asked for are compared with the learner's numbers too and shown
beside them. The first wrong gradient is counted from the output (dW[L], db[L], ..., dW1, db1)
and held against the classic mistakes of ``core.mistakes`` for a hint, after the cost's hint
when the cost is wrong too; a NaN or inf is traced to where it first appears in the learner's
arrays and the line that made it (``floating_point``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradparity import engine, floating_point
from gradparity.backends import REGISTRY, resolve
from gradparity.backends.worker import describe
from gradparity.core.cases import Case, make_case
from gradparity.core.compare import (Check, Tolerance, compare, finite_difference_tolerance, tolerance,
                                     unmeasured_check)
from gradparity.core.errors import GradparityError, SpecError
from gradparity.core.gradcheck import STEP, numerical_gradients
from gradparity.core.mistakes import Derivation, Mistake, recognise
from gradparity.core.network import spec_from_params
from gradparity.runner import Progress

SCHEMA = "gradparity-check/1"
LEARNER = "your backprop"
GROUND_TRUTH = "finite-diff"  # computed here, in process
FRAMEWORKS = tuple(name for name in REGISTRY if name not in ("numpy", GROUND_TRUTH))  # numpy runs the reference
TRACED = re.compile(r"d?A\d+")  # keys of grads beside the gradients where a NaN is traced (dA1, A2, ...)


class BackpropError(GradparityError):
    """The learner's function could not be loaded, called or read; ``traceback`` holds the
    learner's own traceback where their code raised."""

    def __init__(self, message: str, learner_traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = learner_traceback


@dataclass
class BackpropCheck:
    """The learner's cost and gradients against the reference: one check per quantity (cost,
    then dW[L], db[L], ..., dW1, db1), the first wrong gradient from the output, the mistakes
    recognised (for the cost and for the first wrong gradient, in that order), the shapes the
    learner's value has where it differs from the reference's, and the corroboration: per
    source (finite differences, each framework) its status and, per quantity, whether the
    learner's value agrees with that source's."""

    function: str
    network: str
    data: str
    dtype: str
    m: int
    checks: list[Check]
    mistakes: dict[str, Mistake] = field(default_factory=dict)
    shapes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    corroboration: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.verdict == "pass" for check in self.checks)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def wrong(self) -> list[str]:
        """The quantities that are wrong: the cost first, then the gradients from the output."""
        return [check.quantity for check in self.checks if check.verdict != "pass"]

    @property
    def first_wrong(self) -> str | None:
        """The first wrong gradient counted from the output (within a layer dW before db)."""
        return next((name for name in self.wrong if name != "cost"), None)

    @property
    def mistake(self) -> Mistake | None:
        """The mistake recognised first: the cost's when the cost is wrong (whatever else is),
        else the first wrong gradient's."""
        return next(iter(self.mistakes.values()), None)

    @property
    def hint(self) -> str | None:
        return self.mistake.hint if self.mistake else None

    def message(self) -> str:
        """The assert_close style account of the first wrong quantity, the wrong ones and the hint."""
        if self.passed:
            return f"{self.function} agrees with the reference on the cost and every gradient ({self.dtype})"
        first = next(check for check in self.checks if check.quantity == (self.first_wrong or "cost"))
        lines = [first.message or f"{first.quantity} of {LEARNER} is wrong",
                 f"Wrong: {', '.join(self.wrong)}; the first wrong gradient counted from the output: "
                 f"{self.first_wrong or 'none (only the cost)'}"]
        return "\n".join(lines + [f"Hint: {mistake.hint}" for mistake in self.mistakes.values()])

    def to_dict(self) -> dict:
        """The ``gradparity-check/1`` document (plain data, ready for JSON)."""
        return {"schema": SCHEMA, "verdict": self.verdict, "wrong": self.wrong, "first_wrong": self.first_wrong,
                "hint": self.hint, "pattern": self.mistake.pattern if self.mistake else None,
                "hints": {name: mistake.hint for name, mistake in self.mistakes.items()}, "shapes": self.shapes,
                "function": self.function, "network": self.network, "data": self.data, "dtype": self.dtype,
                "m": self.m, "checks": [check.to_dict() for check in self.checks],
                "corroboration": self.corroboration, "notes": self.notes}


def check(backprop: Callable, X: np.ndarray, Y: np.ndarray, parameters: Mapping[str, np.ndarray],
          activation: str = "sigmoid", loss: str = "bce", dtype: str = "float64",
          backends: Iterable[str] | None = ()) -> BackpropCheck:
    """Check ``backprop(X, Y, parameters) -> (cost, grads)`` on this network and data in
    ``dtype`` against the reference and finite differences, and against the frameworks in
    ``backends`` (each in its own worker process; None: every installed one, () none)."""
    params = {name: np.asarray(value, np.float64) for name, value in parameters.items()}
    spec = spec_from_params(params, activation, loss)
    case = make_case("your-network", "your data", np.asarray(X), np.asarray(Y), params, spec, dtype)
    return check_case(backprop, case, frameworks(None) if backends is None else list(backends))


def assert_backprop_matches(backprop: Callable, X: np.ndarray, Y: np.ndarray, parameters: Mapping[str, np.ndarray],
                            activation: str = "sigmoid", loss: str = "bce", dtype: str = "float64",
                            backends: Iterable[str] | None = ()) -> None:
    """None when ``check`` passes; else AssertionError naming the first wrong gradient, the
    mismatch (as torch.testing.assert_close) and the hint."""
    result = check(backprop, X, Y, parameters, activation, loss, dtype, backends)
    if not result.passed:
        raise AssertionError(result.message())


def check_case(backprop: Callable, case: Case, backends: list[str], progress: Progress | None = None,
               data: str | None = None) -> BackpropCheck:
    """Call the learner's function on ``case`` and compare, recognise and corroborate."""
    name = function_name(backprop)
    cost, grads, notes, trail = call_backprop(backprop, case, name)
    reference = engine.reference_result(case)
    answers = {"cost": cost, **grads}
    right = {"cost": reference.evaluation.cost,
             **{f"d{name}": value for name, value in reference.evaluation.gradients.items()}}
    checks = [held_against(quantity, answers[quantity], right[quantity], case, reference)
              for quantity in ["cost", *gradient_order(case)]]
    result = BackpropCheck(name, case.spec.describe(), data or case.description, case.dtype, case.m, checks,
                           notes=notes, shapes=differing_shapes(answers, right))
    derivation = Derivation.of(case.params, case.X, case.Y, case.spec)
    for quantity in filter(None, ["cost" if "cost" in result.wrong else None, result.first_wrong]):
        mistake = recognise(quantity, answers[quantity], derivation)
        if mistake:
            result.mistakes[quantity] = trail.explain(quantity, mistake)
        if mistake and mistake.whole_network:
            break  # another network's cost: its gradients differ too, for no mistake of their own
    result.corroboration = {GROUND_TRUTH: finite_difference_agreement(answers, case, reference),
                            **framework_agreement(answers, case, reference, backends, progress)}
    return result


def differing_shapes(answers: Mapping[str, float | np.ndarray],
                     right: Mapping[str, float | np.ndarray]) -> dict[str, dict[str, list[int]]]:
    """The learner's shape and the reference's for every quantity whose shapes differ."""
    return {quantity: {"got": list(np.shape(value)), "reference": list(np.shape(right[quantity]))}
            for quantity, value in answers.items() if np.shape(value) != np.shape(right[quantity])}


def gradient_order(case: Case) -> list[str]:
    """``dW[L], db[L], ..., dW1, db1``: the order backprop computes them in."""
    return [f"d{kind}{layer}" for layer in range(case.spec.depth, 0, -1) for kind in ("W", "b")]


def held_against(quantity: str, got: object, expected: object, case: Case, reference: engine.ReferenceResult,
                 tol: Tolerance | None = None, mask: np.ndarray | None = None) -> Check:
    """The learner's ``quantity`` compared with ``expected`` under the tolerance a backend gets
    for it on this case (or ``tol``), gradients with the reference's term magnitudes."""
    kind = "cost" if quantity == "cost" else "gradients"
    magnitude = None if quantity == "cost" else reference.magnitudes[quantity[1:]]
    return compare(quantity, kind, np.asarray(got), np.asarray(expected, np.float64), case.dtype,
                   tol or quantity_tolerance(kind, case), LEARNER, mask, magnitude)


def quantity_tolerance(kind: str, case: Case) -> Tolerance:
    """The tolerance a backend gets for ``kind`` on this case."""
    return tolerance(kind, case.dtype, case.spec, case.m, override=case.tolerance.get(kind))


def function_name(backprop: Callable) -> str:
    """The function's name (of the wrapped function for a functools.partial)."""
    return getattr(backprop, "__name__", None) or getattr(getattr(backprop, "func", None), "__name__", "backprop")


def call_backprop(backprop: Callable, case: Case, name: str) -> tuple[float, dict[str, np.ndarray], list[str],
                                                                     floating_point.Trail]:
    """Call ``backprop`` on copies of the case's arrays, watching numpy's floating-point flags
    (``floating_point.watched_call``), and read its answer: the cost as a float, the gradients
    ``dW1, db1, ...`` as arrays, notes (inputs changed in place, another dtype returned, keys
    ignored) and the trail of its arrays (with the ``dA1``, ``A2``, ... keys of grads) and
    flags, where a NaN is traced. BackpropError when it raises or its answer is not
    ``(number, dict with every gradient)``."""
    inputs = {"X": case.X, "Y": case.Y, **case.params}
    copies = {key: value.copy() for key, value in inputs.items()}
    try:
        parameters = {key: copies[key] for key in case.params}
        answer, events = floating_point.watched_call(backprop, copies["X"], copies["Y"], parameters)
    except Exception as error:
        raise BackpropError(f"{name} raised {describe(error)}", learner_traceback(error)) from error
    cost, grads = read_answer(answer, name, gradient_order(case))
    traced = {key: value for key, value in answer[1].items() if isinstance(key, str) and TRACED.fullmatch(key)
              and isinstance(value, np.ndarray) and value.dtype.kind in "biuf"}
    notes = [f"{name} changed its input {key} in place (it was given a copy)"
             for key, value in inputs.items() if not np.array_equal(copies[key], value)]
    returned = sorted({str(value.dtype) for value in grads.values()} - {case.dtype})
    if returned:
        notes.append(f"{name} returned {', '.join(returned)} gradients for {case.dtype} inputs")
    ignored = sorted(set(answer[1]) - set(grads), key=str)
    if ignored:
        notes.append(f"ignored keys of grads: {', '.join(map(str, ignored))}")
    return cost, grads, notes, floating_point.Trail.of(cost, {**traced, **grads}, case.spec.depth, events)


def read_answer(answer: object, name: str, expected: list[str]) -> tuple[float, dict[str, np.ndarray]]:
    """``(cost, grads)`` read as a float and ``{"dW1": array, ...}``; BackpropError naming what
    is wrong otherwise."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        what = f"a {type(answer).__name__}" + (f" of length {len(answer)}" if isinstance(answer, (tuple, list)) else "")
        raise BackpropError(f"{name} returned {what}; it must return (cost, grads)")
    cost, grads = answer
    if isinstance(cost, Mapping) and not isinstance(grads, Mapping):
        raise BackpropError(f"{name} returned (grads, cost): return cost, grads")
    cost_array = numeric(cost, f"the cost {name} returned")
    if cost_array.size != 1:
        raise BackpropError(f"the cost {name} returned has shape {cost_array.shape}; it must be one number")
    if not isinstance(grads, Mapping):
        raise BackpropError(f"{name} returned grads as a {type(grads).__name__}; it must be a dict "
                            "{'dW1': ..., 'db1': ..., ...}")
    missing = [key for key in expected if key not in grads]
    if missing:
        raise BackpropError(f"{name} returned grads without {', '.join(missing)} "
                            f"(its keys: {', '.join(map(str, grads)) or 'none'})")
    return float(cost_array.reshape(())), {key: numeric(grads[key], f"grads['{key}']") for key in expected}


def numeric(value: object, what: str) -> np.ndarray:
    """``value`` as an array of numbers, or BackpropError."""
    try:
        array = np.asarray(value)
    except Exception as error:
        raise BackpropError(f"{what} cannot be read as an array: {describe(error)}") from None
    if array.dtype.kind not in "biuf":
        raise BackpropError(f"{what} is a {type(value).__name__} of dtype {array.dtype}, not an array of numbers")
    return array


def finite_difference_agreement(answers: dict[str, object], case: Case, reference: engine.ReferenceResult) -> dict:
    """The learner's gradients against central differences of the float64 cost."""
    gradients, masks = numerical_gradients(case.params, case.X, case.Y, case.spec)
    agreement = {}
    for quantity in gradient_order(case):
        tol = finite_difference_tolerance(quantity_tolerance("gradients", case), reference.evaluation.cost, STEP)
        mask = masks[quantity[1:]]
        check = (held_against(quantity, answers[quantity], gradients[quantity[1:]], case, reference, tol, mask)
                 if mask.any() else
                 unmeasured_check(quantity, "gradients", "every entry sits at a ReLU kink", tol))
        agreement[quantity] = cell(check)
    return {"status": "pass", "reason": "central differences in float64 (h = 1e-6)", "quantities": agreement}


def frameworks(names: list[str] | None) -> list[str]:
    """The frameworks ``names`` asks for (``keras`` expands; None: all of them); SpecError for
    an unknown name or a backend that is not a framework."""
    chosen = resolve(names) if names else list(FRAMEWORKS)
    others = [name for name in chosen if name not in FRAMEWORKS]
    if others:
        raise SpecError(f"{', '.join(others)} is not a framework: the reference and finite differences always "
                        f"run; choose from {', '.join(FRAMEWORKS)}")
    return [name for name in FRAMEWORKS if name in chosen]


def framework_agreement(answers: dict[str, object], case: Case, reference: engine.ReferenceResult,
                        backends: list[str], progress: Progress | None) -> dict[str, dict]:
    """Run the frameworks on the case (each in its own worker, cost and gradients only: no
    training) and hold the learner's cost and gradients against each framework's."""
    if not backends:
        return {}
    options = engine.RunOptions(backends=frameworks(backends), include_arrays=True, trajectories=False)
    results = engine.run([case], options, progress)["results"][0]["backends"]
    return {name: framework_cell(answers, case, reference, outcome) for name, outcome in results.items()}


def framework_cell(answers: dict[str, object], case: Case, reference: engine.ReferenceResult, outcome: dict) -> dict:
    """One framework's column: its own status against the reference and, per quantity,
    whether the learner's value agrees with the framework's."""
    if outcome["status"] in ("error", "skipped"):
        return {"status": outcome["status"], "reason": outcome["reason"], "quantities": {}}
    own = {check["quantity"]: check for check in outcome["checks"]}
    theirs = {"cost": outcome["cost"], **{f"d{name}": value for name, value in outcome["gradients"].items()}}
    agreement = {}
    for quantity in ["cost", *gradient_order(case)]:
        check = held_against(quantity, answers[quantity], theirs[quantity], case, reference)
        agreement[quantity] = cell(check, own.get(quantity))
    return {"status": outcome["status"], "reason": outcome["reason"], "quantities": agreement}


def cell(check: Check, source_check: dict | None = None) -> dict:
    """``agrees`` (within the tolerance), ``differs``, or ``deviates``: the source itself is
    off the reference on this quantity (``source_check``, its own check) and the learner's value
    is no farther from it than twice the reference's, so it sides with the reference;
    ``unmeasured`` where nothing could be compared. With the relative error."""
    if check.total == 0:
        verdict = "unmeasured"
    elif check.verdict == "pass":
        verdict = "agrees"
    elif source_check and source_check["verdict"] != "pass" and \
            check.max_abs_error <= 2 * (source_check["max_abs_error"] or 0.0):
        verdict = "deviates"
    else:
        verdict = "differs"
    error = check.rel_error if np.isfinite(check.rel_error) else None
    return {"verdict": verdict, "rel_error": error}


def load_backprop(target: str) -> Callable:
    """The function ``FILE.py:FUNCTION`` or ``package.module:FUNCTION`` names (``FUNCTION``
    defaults to ``backprop``); BackpropError, with the learner's traceback, when its module
    cannot be imported."""
    location, _, name = target.rpartition(":") if ":" in target else (target, "", "backprop")
    if not name.isidentifier():
        raise BackpropError(f"{target!r} does not name a function: give FILE.py:FUNCTION or package.module:FUNCTION")
    if location.endswith(".py") or "/" in location:
        module = import_file(Path(location))
    else:
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as error:
            if error.name != location.split(".")[0] and error.name != location:
                raise BackpropError(f"importing {location} raised {describe(error)}", learner_traceback(error)) from None
            raise BackpropError(f"no module named {location} (run from the folder that holds it, or give FILE.py)") from None
        except Exception as error:
            raise BackpropError(f"importing {location} raised {describe(error)}", learner_traceback(error)) from None
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(key for key, value in vars(module).items() if callable(value) and not key.startswith("_")
                         and getattr(value, "__module__", None) == module.__name__)
        raise BackpropError(f"{location} defines no {name}" + (f"; it defines {', '.join(defined)}" if defined else ""))
    if not callable(function):
        raise BackpropError(f"{location}:{name} is not a function (it is of type {type(function).__name__})")
    return function


def import_file(path: Path):
    """Import a learner's .py file as a module (its folder first on sys.path, for its own imports)."""
    if not path.is_file():
        raise BackpropError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        raise BackpropError(f"importing {path} raised {describe(error)}", learner_traceback(error)) from None
    return module


def learner_traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the learner's first frame on: gradparity's own frames
    and importlib's are left out."""
    tb = error.__traceback__
    ours = (__file__, floating_point.__file__, importlib.__file__)
    while tb is not None and (tb.tb_frame.f_code.co_filename in ours
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen")):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))
