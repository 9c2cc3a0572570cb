"""Check a learner's own backprop: ``gradparity check``, ``gradparity.check`` and
``gradparity.assert_backprop_matches``.

The learner's code is called in one of the conventions of ``gradparity.conventions`` (their
``backprop(X, Y, parameters) -> (cost, grads)``, the course's ``L_model_forward`` /
``compute_cost`` / ``L_model_backward``, the document's ``forward`` / ``cal_cost`` /
``backward``), found by names and signatures in a file, a module, a notebook or a namespace.

Without a network given, it is checked on the tool's own networks of 1, 2 and 3 hidden layers
(``OWN_HIDDEN``), each on the same data. The network a function computes is read from its own
cost: the reference's cost of every candidate (hidden activation x output and loss) for the
same parameters is compared with the learner's, and the one that agrees within the tolerance
is the network checked (``read_network``). Its cost and every gradient are then compared with
the reference under the tolerances the backends get (``core.compare.tolerance``); the
reference decides the verdict. Central differences of the learner's own cost and every
framework asked for are compared with the learner's numbers too and shown beside them. The
first wrong gradient is counted from the output (dW[L], db[L], ..., dW1, db1) and held against
the classic mistakes of ``core.mistakes`` for a hint, after the cost's hint when the cost is
wrong too; a NaN or inf is traced to where it first appears in the learner's arrays and the
line that made it (``floating_point``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gradparity import engine, floating_point, judge
from gradparity.backends import REGISTRY, resolve
from gradparity.backends.worker import describe
from gradparity.conventions import CONVENTIONS, Answer, Calls, ConventionError, find, layer_globals
from gradparity.core import datasets
from gradparity.core.cases import Case, make_case
from gradparity.core.compare import (ComparisonContext, Tolerance, compare, finite_difference_tolerance, tolerance,
                                     unmeasured_check)
from gradparity.core.errors import GradparityError, SpecError
from gradparity.core.gradcheck import STEP, numerical_gradients
from gradparity.core.mistakes import Derivation, Mistake, recognise
from gradparity.core.network import HIDDEN_ACTIVATIONS, LOSSES, NetworkSpec, spec_from_params
from gradparity.core.record import finite
from gradparity.core.reference import initial_params
from gradparity.core.results import CHECK_SCHEMA, BackendResult, Check, CheckDocument, Corroboration, NetworkRecord
from gradparity.notebook import (SKIPPED_IMPORTS, CodeCell, definitions, exec_definitions, learner_traceback,
                                 load_definitions)
from gradparity.runner import Progress

LEARNER = "your backprop"
GROUND_TRUTH = "finite-diff"  # computed here, in process
FRAMEWORKS = tuple(name for name in REGISTRY if name not in ("numpy", GROUND_TRUTH))  # numpy runs the reference
TRACED = re.compile(r"d?A\d+")  # the learner's arrays beside the gradients where a NaN is traced (dA1, A2, ...)


OWN_HIDDEN = ((4,), (5, 3), (6, 4, 3))  # the tool's own networks: 1, 2 and 3 hidden layers
AUTO = "auto"
DEFINITIONS_ONLY = "__gradparity_definitions_only__"  # set on a module whose top-level code could not run


class BackpropError(GradparityError):
    """The learner's function could not be loaded, called or read; ``traceback`` holds the
    learner's own traceback where their code raised."""

    def __init__(self, message: str, learner_traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = learner_traceback


class DepthNotHandled(GradparityError):
    """The learner's code handles networks of another depth only (it never reads the layers
    beyond its own, or reads layers the network does not have)."""


@dataclass
class NetworkCheck:
    """The learner's cost and gradients on one network against the reference: one check per
    quantity (cost, then dW[L], db[L], ..., dW1, db1), the first wrong gradient from the
    output, the mistakes recognised (for the cost and for the first wrong gradient, in that
    order), the shapes the learner's value has where it differs from the reference's, how the
    network was chosen (``read_from``), and the corroboration: per source (central
    differences of the learner's own cost, each framework) its status and, per quantity,
    whether the learner's value agrees with that source's."""

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
    read_from: str = "options"

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

    @property
    def explanation(self) -> str | None:
        """Why central differences and the reference tell different stories: they difference
        the learner's own cost. Gradients the reference rejects and they accept differentiate
        the learner's cost, which is not the reference's; gradients the reference accepts and
        they reject are right for the reference's cost, not for the learner's."""
        cells = self.corroboration.get(GROUND_TRUTH, {}).get("quantities", {})
        wrong_but_own = [name for name in self.wrong if cells.get(name, {}).get("verdict") == "agrees"]
        right_but_not_own = [name for name, cell in cells.items()
                             if name not in self.wrong and cell["verdict"] == "differs"]
        if wrong_but_own:
            return (f"central differences of your own cost agree with your {', '.join(wrong_but_own)}: your backprop "
                    "differentiates the cost it computes, " + ("and that cost is not the reference's" if "cost" in
                                                               self.wrong else "within the differences' looser tolerance"))
        if right_but_not_own and "cost" in self.wrong:
            return (f"your {', '.join(right_but_not_own)} agree with the reference but not with central differences of "
                    "your own cost: they are the gradients of the reference's cost, and your cost is not")
        return None

    def message(self) -> str:
        """The assert_close style account of the first wrong quantity, the wrong ones and the hint."""
        if self.passed:
            return f"{self.function} agrees with the reference on the cost and every gradient ({self.dtype})"
        first = next(check for check in self.checks if check.quantity == (self.first_wrong or "cost"))
        lines = [first.message or f"{first.quantity} of {LEARNER} is wrong",
                 f"Wrong: {', '.join(self.wrong)}; the first wrong gradient counted from the output: "
                 f"{self.first_wrong or 'none (only the cost)'}"]
        return "\n".join(lines + [f"Hint: {mistake.hint}" for mistake in self.mistakes.values()])

    def record(self) -> NetworkRecord:
        """This network's record of the ``gradparity-check/2`` document."""
        return NetworkRecord(
            self.verdict, self.wrong, self.first_wrong, self.hint, self.mistake.pattern if self.mistake else None,
            {name: mistake.hint for name, mistake in self.mistakes.items()}, self.shapes, self.explanation,
            self.function, self.network, self.read_from, self.data, self.dtype, self.m, self.checks,
            {name: Corroboration.from_dict(source) for name, source in self.corroboration.items()}, self.notes)


@dataclass
class BackpropCheck:
    """A learner's code checked on one network or several: the convention it was called in
    and the functions called, one ``NetworkCheck`` per network, and notes on the code as a
    whole (globals set, pieces missing, depths it does not handle). Its verdict, wrong
    quantities and hint are those of the first network that fails (else the first)."""

    convention: str
    called: list[str]
    source: str
    networks: list[NetworkCheck]
    code_notes: list[str] = field(default_factory=list)

    @property
    def focus(self) -> NetworkCheck:
        """The first network that fails, else the first."""
        return next((network for network in self.networks if not network.passed), self.networks[0])

    @property
    def dtype(self) -> str:
        return self.focus.dtype

    @property
    def checks(self) -> list[Check]:
        return self.focus.checks

    @property
    def corroboration(self) -> dict[str, dict]:
        return self.focus.corroboration

    @property
    def mistakes(self) -> dict[str, Mistake]:
        return self.focus.mistakes

    @property
    def notes(self) -> list[str]:
        """The notes on the code as a whole, then the focus network's."""
        return self.code_notes + self.focus.notes

    @property
    def passed(self) -> bool:
        return all(network.passed for network in self.networks)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def wrong(self) -> list[str]:
        return self.focus.wrong

    @property
    def first_wrong(self) -> str | None:
        return self.focus.first_wrong

    @property
    def mistake(self) -> Mistake | None:
        return self.focus.mistake

    @property
    def hint(self) -> str | None:
        return self.focus.hint

    def message(self) -> str:
        """The focus network's account, the network named when there are several."""
        if len(self.networks) == 1 or self.passed:
            return self.focus.message()
        return f"on the {self.focus.network} network: {self.focus.message()}"

    def record(self) -> CheckDocument:
        """The ``gradparity-check/2`` document: the verdict and, from the focus network,
        wrong/first_wrong/hint/pattern, then every network's record."""
        focus = self.focus.record()
        return CheckDocument(CHECK_SCHEMA, self.verdict, None, None, self.convention, self.called, self.source,
                             self.dtype, focus.wrong, focus.first_wrong, focus.hint, focus.pattern, self.code_notes,
                             [network.record() for network in self.networks])

    def to_dict(self) -> dict:
        """The ``gradparity-check/2`` document as JSON holds it."""
        return self.record().to_dict()

    def _repr_html_(self) -> str:
        """How Jupyter shows the check: verdict, table of quantities, hint (``reports.check_view``,
        imported here: it imports rich, which ``import gradparity`` does not)."""
        from gradparity.reports.check_view import check_html

        return check_html(self.record())

    def _repr_markdown_(self) -> str:
        from gradparity.reports.check_view import check_markdown

        return check_markdown(self.record())



def error_document(error: GradparityError, calls: Calls | None = None, source: str | None = None) -> CheckDocument:
    """The ``gradparity-check/2`` document of a check that could not be made: verdict
    ``error``, the one-line message and the learner's traceback where their code raised."""
    return CheckDocument(CHECK_SCHEMA, "error", str(error), getattr(error, "traceback", None),
                         calls.convention.name if calls else None, called_names(calls) if calls else [], source,
                         None, [], None, None, None, [], [])


@dataclass(frozen=True)
class CheckOptions:
    """How ``check`` checks: the network's hidden ``activation`` and ``loss`` (``auto``: the
    network read from the learner's own cost), the ``dtype``, the frameworks in ``backends``
    (each in its own worker process; None: every installed one, () none) and the
    ``convention`` to force (None: found by names and signatures)."""

    activation: str = AUTO
    loss: str = AUTO
    dtype: str = "float64"
    backends: Iterable[str] | None = ()
    convention: str | None = None


def check(code: Callable | Mapping | types.ModuleType, X: np.ndarray | None = None, Y: np.ndarray | None = None,
          parameters: Mapping[str, np.ndarray] | None = None, **options: Any) -> BackpropCheck:
    """Check a learner's backprop against the reference and central differences of its own
    cost, and against frameworks. ``code`` is ``backprop(X, Y, parameters) -> (cost, grads)``
    or a namespace — a module, or a notebook's ``globals()`` — holding the functions of one of
    the conventions. With ``parameters``, on that network (X and Y required); without, on the
    tool's own networks of 1, 2 and 3 hidden layers, on X and Y or the flower data. The keyword
    ``options`` are the fields of ``CheckOptions``: ``activation=``, ``loss=``, ``dtype=``,
    ``backends=`` and ``convention=``."""
    given = CheckOptions(**options)
    activation, loss, dtype = given.activation, given.loss, given.dtype
    calls = learner_calls(code, given.convention)
    if parameters is not None:
        if X is None or Y is None:
            raise SpecError("parameters need their data: give X and Y too")
        params = {name: np.asarray(value, np.float64) for name, value in parameters.items()}
        spec = spec_from_params(params, default(activation, "sigmoid"), default(loss, default_loss(np.asarray(Y))))
        cases = [make_case("your-network", "your data", (np.asarray(X), np.asarray(Y)), params, spec, dtype)]
    elif (X is None) != (Y is None):
        raise SpecError("give X and Y together, or neither for the flower data")
    else:
        data = datasets.load_dataset("flower") if X is None else (np.asarray(X), np.asarray(Y))
        cases = own_networks(data, "flower" if X is None else "your data", (activation, loss), dtype)
    return check_code(calls, cases, frameworks(None) if given.backends is None else list(given.backends),
                      network=(activation, loss), fixed=parameters is not None)


def assert_backprop_matches(code: Callable | Mapping | types.ModuleType, X: np.ndarray | None = None,
                            Y: np.ndarray | None = None, parameters: Mapping[str, np.ndarray] | None = None,
                            **options: Any) -> None:
    """None when ``check`` (with the same arguments and keyword ``options``) passes; else
    AssertionError naming the first wrong gradient, the mismatch (as torch.testing.assert_close)
    and the hint."""
    result = check(code, X, Y, parameters, **options)
    if not result.passed:
        raise AssertionError(result.message())


def default(choice: str, otherwise: str) -> str:
    """An ``activation``/``loss`` option: ``otherwise`` where it is ``auto``."""
    return otherwise if choice == AUTO else choice


def default_loss(Y: np.ndarray) -> str:
    """The loss a network on labels ``Y`` has unless told: softmax-ce for one-hot classes, bce otherwise."""
    return "softmax-ce" if one_hot(Y) else "bce"


def one_hot(Y: np.ndarray) -> bool:
    """Whether ``Y`` holds one-hot columns of more than one class."""
    return Y.shape[0] > 1 and bool(np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=0) == 1))


@dataclass(frozen=True)
class Initialisation:
    """How the tool's own networks start: the hidden layer sizes of each network and the
    initialisation (by default the document's ``randn * 0.01``, seed 2)."""

    hidden: Iterable[tuple[int, ...]] = OWN_HIDDEN
    init: str = "seed"
    seed: int | None = None


def own_networks(data: tuple[np.ndarray, np.ndarray], name: str, network: tuple[str, str], dtype: str,
                 start: Initialisation = Initialisation()) -> list[Case]:
    """The tool's own networks on ``data`` (X, Y), called ``name``: one per entry of
    ``start.hidden``, with the hidden activation and loss of ``network`` (``auto``: sigmoid,
    and the loss the labels imply)."""
    X, Y = data
    activation, loss = network
    cases = []
    for sizes in start.hidden:
        spec = NetworkSpec((X.shape[0], *sizes, Y.shape[0]), default(activation, "sigmoid"),
                           default(loss, default_loss(Y)))
        params = initial_params(spec, start.init, start.seed, "float64")
        cases.append(make_case("-".join(map(str, spec.layer_sizes)), name, data, params, spec, dtype))
    return cases


def learner_calls(code: Callable | Mapping | types.ModuleType, convention: str | None = None,
                  function: str | None = None, source: str | None = None) -> Calls:
    """The learner's functions in the convention they follow: a function is a ``backprop``;
    a module or a namespace is searched (``conventions.find``)."""
    if isinstance(code, types.ModuleType):
        return find(vars(code), source or code.__name__, convention, function)
    if isinstance(code, Mapping):
        return find(dict(code), source or "the namespace given", convention, function)
    if callable(code):
        name = function_name(code)
        return find({name: code}, source or name, convention or "backprop", name)
    raise SpecError(f"check takes a function, a module or a namespace of functions, not a {type(code).__name__}")


def called_names(calls: Calls) -> list[str]:
    """The names of the learner's functions a check calls, in the convention's order."""
    return [calls.names[role.part] for role in calls.convention.roles if role.part in calls.names]


def check_code(calls: Calls, cases: list[Case], backends: list[str], progress: Progress | None = None,
               network: tuple[str, str] = (AUTO, AUTO), fixed: bool = True, source: str | None = None) -> BackpropCheck:
    """Call the learner's code on every case, read the network each computes (unless
    ``network`` fixes it), then compare, recognise and corroborate. A case whose depth the
    code does not handle is left out and said, unless ``fixed`` (the user's own network)."""
    answers, unhandled = [], []
    for case in cases:
        try:
            answers.append(learner_answer(calls, case))
        except DepthNotHandled as error:
            if fixed or len(cases) == 1:
                raise BackpropError(f"your code cannot compute this network: {error}") from None
            unhandled.append(f"{sizes(case)} ({error})")
        except BackpropError as error:
            if not answers:
                raise
            raise BackpropError(f"on the {sizes(case)} network: {error}", error.traceback) from None
    if not answers:
        raise BackpropError(f"your code computes none of the networks: {'; '.join(unhandled)}")
    notes = code_notes(calls, answers)
    if unhandled:
        notes.append(f"your code handles {answers[0][0].spec.depth} layers only: checked on "
                     f"{', '.join(sizes(case) for case, _ in answers)}, not on {'; '.join(unhandled)}")
    readings = [read_network(answer, case, *network) for case, answer in answers]
    checked = [case for case, _ in readings]
    outcomes = framework_outcomes(checked, backends, progress)
    networks = [network_check(calls, case, answer, read_from, outcome)
                for (case, read_from), (_, answer), outcome in zip(readings, answers, outcomes)]
    return BackpropCheck(calls.convention.name, called_names(calls), source or "", networks, notes)


def sizes(case: Case) -> str:
    """A network's layer sizes, ``2-5-3-1``."""
    return "-".join(map(str, case.spec.layer_sizes))


@dataclass
class LearnerAnswer:
    """The learner's numbers on one case: cost (None without a cost function), gradients
    ``dW1, db1, ...``, the other arrays it returned (``A1``, ``dA1``, ...), the notes on the
    call, the globals set for it, and the trail of its arrays and floating-point events where
    a NaN is traced."""

    cost: float | None
    grads: dict[str, np.ndarray]
    extras: dict[str, np.ndarray]
    notes: list[str]
    globals_set: list[str]
    trail: floating_point.Trail


def learner_answer(calls: Calls, case: Case) -> tuple[Case, LearnerAnswer]:
    """Call the learner's code on ``case``; DepthNotHandled where it handles another depth."""
    with layer_globals(calls, list(case.spec.layer_sizes)) as globals_set:
        cost, grads, extras, notes, trail = call_backprop(calls, case)
    return case, LearnerAnswer(cost, grads, extras, notes, globals_set, trail)


def code_notes(calls: Calls, answers: list[tuple[Case, LearnerAnswer]]) -> list[str]:
    """What the check supplied that the learner's code lacks: a cost function, globals, arguments."""
    notes = [calls.namespace[DEFINITIONS_ONLY]] if DEFINITIONS_ONLY in calls.namespace else []
    if SKIPPED_IMPORTS in calls.namespace:
        notes.append(f"your code imports {', '.join(calls.namespace[SKIPPED_IMPORTS])}, which cannot be imported "
                     "here: those imports were left out")
    if "cost" not in calls.functions and any(role.part == "cost" for role in calls.convention.roles):
        names = next(role.names for role in calls.convention.roles if role.part == "cost")
        notes.append(f"your code has no cost function (looked for {', '.join(names[:3])}): the cost is not checked, "
                     "and the network is read from the forward pass and the gradients")
    set_globals = sorted({name for _, answer in answers for name in answer.globals_set})
    if set_globals:
        notes.append(f"your code reads the network's layer sizes from the global {', '.join(set_globals)}: "
                     "each network's own sizes were put there for its check")
    for what, value in calls.filled.items():
        notes.append(f"{what} was given {value}")
    return notes


def network_check(calls: Calls, case: Case, answer: LearnerAnswer, read_from: str, outcome: dict | None) -> NetworkCheck:
    """The learner's answer on ``case`` held against the reference, recognised and corroborated."""
    reference = judge.reference_result(case)
    answers = {"cost": answer.cost, **answer.grads}
    right = {"cost": reference.evaluation.cost,
             **{f"d{name}": value for name, value in reference.evaluation.gradients.items()}}
    checks = [cost_check(answer.cost, right["cost"], case, reference)] + \
        [held_against(quantity, answers[quantity], right[quantity], case, reference) for quantity in gradient_order(case)]
    result = NetworkCheck(", ".join(called_names(calls)), case.spec.describe(), case.description, case.dtype, case.m,
                          checks, notes=answer.notes, read_from=read_from, shapes=differing_shapes(answers, right))
    derivation = Derivation.of(case.params, case.X, case.Y, case.spec)
    for quantity in filter(None, ["cost" if "cost" in result.wrong else None, result.first_wrong]):
        mistake = other_network(answer.cost, case) if quantity == "cost" else None
        mistake = mistake or recognise(quantity, answers[quantity], derivation)
        if mistake:
            result.mistakes[quantity] = answer.trail.explain(quantity, mistake)
        if mistake and mistake.whole_network:
            break  # another network's cost: its gradients differ too, for no mistake of their own
    if read_from == "default" and answer.cost is not None:
        result.notes.append(closest_network(answer.cost, case))
    result.corroboration = {GROUND_TRUTH: own_cost_agreement(calls, answer, case, reference)}
    if outcome is not None:
        result.corroboration |= {name: framework_cell(answers, case, reference, backend)
                                 for name, backend in outcome.items()}
    return result


def other_network(cost: float | None, case: Case) -> Mistake | None:
    """The network whose reference cost the learner's cost matches within the tolerance,
    where it is another than the one checked: the hint names it and the options that check it
    (closer than ``core.mistakes`` can tell: at the document's x0.01 initialisation the
    candidates' costs differ by about 1e-5 relative)."""
    if cost is None:
        return None
    agreeing = [candidate for candidate, reference, check in candidate_costs(cost, case) if check.verdict == "pass"]
    others = [candidate.spec for candidate in agreeing if candidate.spec != case.spec]
    if len(others) != 1:
        return None
    spec = others[0]
    return Mistake("other-network", f"the cost is that of a {spec.describe()} network, not {case.spec.describe()}: "
                                    f"does your code use {spec.hidden_activation} and {spec.loss}? (then check it with "
                                    f"--activation {spec.hidden_activation} --loss {spec.loss}, or leave both out: "
                                    "auto reads the network from your cost)", whole_network=True)


def candidate_costs(cost: float, case: Case) -> list[tuple[Case, judge.ReferenceResult, Check]]:
    """Every candidate network of the case's layers (``candidate_specs``), its reference, and
    the learner's cost held against the reference's cost of that network."""
    candidates = [replace(case, spec=spec) for spec in candidate_specs(case, AUTO, AUTO)]
    references = [judge.reference_result(candidate) for candidate in candidates]
    return [(candidate, reference, held_against("cost", cost, reference.evaluation.cost, candidate, reference))
            for candidate, reference in zip(candidates, references)]


def differing_shapes(answers: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, dict[str, list[int]]]:
    """The learner's shape and the reference's for every quantity whose shapes differ."""
    return {quantity: {"got": list(np.shape(value)), "reference": list(np.shape(right[quantity]))}
            for quantity, value in answers.items() if value is not None and np.shape(value) != np.shape(right[quantity])}


def cost_check(cost: float | None, expected: float, case: Case, reference: judge.ReferenceResult) -> Check:
    """The learner's cost against the reference's; unmeasured where the code computes none."""
    if cost is None:
        return unmeasured_check("cost", "cost", "your code computes no cost", quantity_tolerance("cost", case))
    return held_against("cost", cost, expected, case, reference)


def read_network(answer: LearnerAnswer, case: Case, activation: str, loss: str) -> tuple[Case, str]:
    """The network the learner's code computes, among the candidates (every hidden
    activation and loss the options leave open and the labels allow) for the case's layers
    and parameters: the one whose reference cost the learner's cost matches within the
    tolerance; else the one that most of the learner's output and gradients match; else the
    case's own (the document's network). With how it was read."""
    if AUTO not in (activation, loss):
        return case, "options"
    open_specs = candidate_specs(case, activation, loss)
    if answer.cost is not None:
        by_cost = [candidate for candidate, _, check in candidate_costs(answer.cost, case)
                   if check.verdict == "pass" and candidate.spec in open_specs]
        if len(by_cost) == 1:
            return by_cost[0], "cost"
    candidates = [replace(case, spec=spec) for spec in open_specs]
    scores = [agreement_count(answer, candidate, judge.reference_result(candidate)) for candidate in candidates]
    best = max(scores)
    if best > 0 and scores.count(best) == 1:
        return candidates[scores.index(best)], "forward pass and gradients"
    return case, "default"


def closest_network(cost: float, case: Case) -> str:
    """The candidate network whose reference cost is closest to the learner's, in words."""
    candidate, _, check = min(candidate_costs(cost, case), key=lambda entry: entry[2].rel_error)
    return f"its cost matches no candidate network; the closest is {candidate.spec.describe()} (relative difference " \
           f"{check.rel_error:.1e})"


def candidate_specs(case: Case, activation: str, loss: str) -> list[NetworkSpec]:
    """The networks of the case's layer sizes the options leave open: every hidden activation
    (where there is a hidden layer) and every loss the labels allow (softmax-ce for one-hot
    classes only), the case's own first."""
    sizes = case.spec.layer_sizes
    activations = HIDDEN_ACTIVATIONS if activation == AUTO else (activation,)
    losses = [name for name in (LOSSES if loss == AUTO else (loss,)) if name != "softmax-ce" or one_hot(case.Y)]
    specs = [NetworkSpec(sizes, hidden, name) for hidden in activations for name in losses]
    return sorted(specs, key=lambda spec: spec != case.spec)


def agreement_count(answer: LearnerAnswer, case: Case, reference: judge.ReferenceResult) -> int:
    """How many of the learner's output activations and gradients agree with the reference of ``case``."""
    output = answer.extras.get(f"A{case.spec.depth}")
    count = 0
    if output is not None and np.shape(output) == reference.evaluation.activations[-1].shape:
        tol = tolerance("activations", case.dtype, case.spec, case.m)
        count += compare("output", "activations", np.asarray(output, np.float64), reference.evaluation.activations[-1],
                         ComparisonContext(case.dtype, tol, LEARNER)).verdict == "pass"
    right = {f"d{name}": value for name, value in reference.evaluation.gradients.items()}
    return count + sum(held_against(quantity, answer.grads[quantity], right[quantity], case, reference).verdict == "pass"
                       for quantity in gradient_order(case))


def gradient_order(case: Case) -> list[str]:
    """``dW[L], db[L], ..., dW1, db1``: the order backprop computes them in."""
    return [f"d{kind}{layer}" for layer in range(case.spec.depth, 0, -1) for kind in ("W", "b")]


def held_against(quantity: str, got: object, expected: object, case: Case, reference: judge.ReferenceResult) -> Check:
    """The learner's ``quantity`` compared with ``expected`` under ``learner_context``."""
    return held_under(quantity, got, expected, learner_context(quantity, case, reference))


def held_under(quantity: str, got: object, expected: object, context: ComparisonContext) -> Check:
    """The learner's ``quantity`` compared with ``expected`` under ``context``."""
    kind = "cost" if quantity == "cost" else "gradients"
    return compare(quantity, kind, np.asarray(got), np.asarray(expected, np.float64), context)


def learner_context(quantity: str, case: Case, reference: judge.ReferenceResult) -> ComparisonContext:
    """The terms the learner's ``quantity`` is judged under: the tolerance a backend gets for it
    on this case, gradients with the reference's term magnitudes."""
    kind = "cost" if quantity == "cost" else "gradients"
    magnitude = None if quantity == "cost" else reference.magnitudes[quantity[1:]]
    return ComparisonContext(case.dtype, quantity_tolerance(kind, case), LEARNER, magnitude=magnitude)


def quantity_tolerance(kind: str, case: Case) -> Tolerance:
    """The tolerance a backend gets for ``kind`` on this case."""
    return tolerance(kind, case.dtype, case.spec, case.m, override=case.tolerance.get(kind))


def function_name(backprop: Callable) -> str:
    """The function's name (of the wrapped function for a functools.partial)."""
    return getattr(backprop, "__name__", None) or getattr(getattr(backprop, "func", None), "__name__", "backprop")


def call_backprop(calls: Calls, case: Case) -> tuple[float | None, dict[str, np.ndarray], dict[str, np.ndarray],
                                                     list[str], floating_point.Trail]:
    """Call the learner's code on copies of the case's arrays, watching numpy's floating-point
    flags (``floating_point.watched_call``), and read its answer: the cost as a float (None
    where the code has no cost function), the gradients ``dW1, db1, ...`` as arrays, the other
    arrays it returned, notes (inputs changed in place, another dtype returned, keys ignored)
    and the trail of its arrays and flags, where a NaN is traced. BackpropError when it raises
    or its answer cannot be read; DepthNotHandled where it handles networks of another depth."""
    name = called_names(calls)[-1]  # the function that returns the gradients
    inputs = {"X": case.X, "Y": case.Y, **case.params}
    copies = {key: value.copy() for key, value in inputs.items()}
    try:
        parameters = {key: copies[key] for key in case.params}
        answer, events = floating_point.watched_call(calls.convention.assemble, calls, copies["X"], copies["Y"],
                                                     parameters)
    except ConventionError:
        raise
    except KeyError as error:
        missing_layer = error.args[0] if error.args and isinstance(error.args[0], str) else ""
        if missing_layer[:1] in ("W", "b") and missing_layer[1:].isdigit() and missing_layer not in case.params:
            raise DepthNotHandled(f"it reads {missing_layer}, which this network does not have") from None
        raise BackpropError(f"{raiser(error, calls)} raised {describe(error)}", learner_traceback(error)) from error
    except Exception as error:
        raise BackpropError(f"{raiser(error, calls)} raised {describe(error)}{missing_import(error, calls)}",
                            learner_traceback(error)) from error
    pair = answer.returned
    check_depth(calls, case, pair)
    cost, grads = read_answer(pair, name, gradient_order(case), needs_cost=answer.raw is not None)
    notes = [f"{name} changed its input {key} in place (it was given a copy)"
             for key, value in inputs.items() if not np.array_equal(copies[key], value)]
    returned = sorted({str(value.dtype) for value in grads.values()} - {case.dtype})
    if returned:
        notes.append(f"{name} returned {', '.join(returned)} gradients for {case.dtype} inputs")
    ignored = sorted(set(pair[1]) - set(grads) - set(answer.extras), key=str)
    if ignored:
        notes.append(f"ignored keys of grads: {', '.join(map(str, ignored))}")
    traced = {key: value for key, value in {**pair[1], **answer.extras}.items()
              if isinstance(key, str) and TRACED.fullmatch(key) and isinstance(value, np.ndarray)
              and value.dtype.kind in "biuf"}
    trail = floating_point.Trail.of(cost, {**traced, **grads}, case.spec.depth, events)
    return cost, grads, answer.extras, notes, trail


def missing_import(error: Exception, calls: Calls) -> str:
    """Where a name the learner's code lacks may have come from: an import that was left out."""
    skipped = calls.namespace.get(SKIPPED_IMPORTS)
    if not isinstance(error, NameError) or not skipped:
        return ""
    return f"; perhaps it comes from {' or '.join(skipped)}, which cannot be imported here"


def raiser(error: BaseException, calls: Calls) -> str:
    """The learner's function (of those the check calls) in whose call ``error`` was raised."""
    called = called_names(calls)
    frames = traceback.extract_tb(error.__traceback__)
    return next((frame.name for frame in frames if frame.name in called), ", ".join(called))


def shallower(pair: object, case: Case) -> int | None:
    """k where the gradients returned are those of the first k < L layers exactly, else None."""
    grads = pair[1] if isinstance(pair, (tuple, list)) and len(pair) == 2 else None
    if not isinstance(grads, Mapping):
        return None
    depth = case.spec.depth
    layers = [layer for layer in range(1, depth + 1) if f"dW{layer}" in grads and f"db{layer}" in grads]
    deeper = [f"d{kind}{layer}" for kind in "Wb" for layer in range(len(layers) + 1, depth + 1)]
    if layers and layers == list(range(1, len(layers) + 1)) and len(layers) < depth and not any(
            key in grads for key in deeper):
        return len(layers)
    return None


def check_depth(calls: Calls, case: Case, pair: Any) -> None:
    """DepthNotHandled where the code returns the gradients of its first k layers only and
    never reads the others (its gradients stay the same when they change): code written for
    networks of k layers. Where they do change, the code reads every layer but leaves some
    out of its gradients: that is its own error, not a depth it does not handle."""
    k = shallower(pair, case)
    if k is None:
        return
    moved = {name: value * 2 + 1 if int(name[1:]) > k else value.copy() for name, value in case.params.items()}
    with np.errstate(all="ignore"):  # the first call, watched, said what there is to say
        answer = calls.convention.assemble(calls, case.X.copy(), case.Y.copy(), moved)
    again = answer.returned
    if all(np.array_equal(np.asarray(again[1][key]), np.asarray(pair[1][key])) for key in pair[1] if key[:2] in ("dW", "db")):
        raise DepthNotHandled(f"it returns the gradients of {k} of its {case.spec.depth} layers and never reads the others")


def read_answer(answer: object, name: str, expected: list[str],
                needs_cost: bool = True) -> tuple[float | None, dict[str, np.ndarray]]:
    """``(cost, grads)`` read as a float and ``{"dW1": array, ...}``; BackpropError naming what
    is wrong otherwise. The cost may be None where ``needs_cost`` is false (the code has no
    cost function)."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        what = f"a {type(answer).__name__}" + (f" of length {len(answer)}" if isinstance(answer, (tuple, list)) else "")
        raise BackpropError(f"{name} returned {what}; it must return (cost, grads)")
    cost, grads = answer
    if isinstance(cost, Mapping) and not isinstance(grads, Mapping):
        raise BackpropError(f"{name} returned (grads, cost): return cost, grads")
    if cost is None and not needs_cost:
        cost_value = None
    else:
        cost_array = numeric(cost, f"the cost {name} returned")
        if cost_array.size != 1:
            raise BackpropError(f"the cost {name} returned has shape {cost_array.shape}; it must be one number")
        cost_value = float(cost_array.reshape(()))
    if not isinstance(grads, Mapping):
        raise BackpropError(f"{name} returned grads as a {type(grads).__name__}; it must be a dict "
                            "{'dW1': ..., 'db1': ..., ...}")
    missing = [key for key in expected if key not in grads]
    if missing:
        raise BackpropError(f"{name} returned grads without {', '.join(missing)} "
                            f"(its keys: {', '.join(map(str, grads)) or 'none'})")
    return cost_value, {key: numeric(grads[key], f"grads['{key}']") for key in expected}


def numeric(value: object, what: str) -> np.ndarray:
    """``value`` as an array of numbers, or BackpropError."""
    try:
        array = np.asarray(value)
    except Exception as error:
        raise BackpropError(f"{what} cannot be read as an array: {describe(error)}") from None
    if array.dtype.kind not in "biuf":
        raise BackpropError(f"{what} is a {type(value).__name__} of dtype {array.dtype}, not an array of numbers")
    return array


def own_cost_agreement(calls: Calls, answer: LearnerAnswer, case: Case, reference: judge.ReferenceResult) -> dict:
    """The learner's gradients against central differences of the learner's own cost, in
    float64: dJ/dθ_k ≈ (J(θ + h e_k) - J(θ - h e_k)) / 2h on the entries the reference's
    finite differences check (those whose step crosses no ReLU kink)."""
    if answer.cost is None:
        return {"status": "skipped", "reason": "your code computes no cost to difference", "quantities": {}}
    tol = finite_difference_tolerance(quantity_tolerance("gradients", case), answer.cost, STEP)
    _, masks = numerical_gradients(case.params, case.X, case.Y, case.spec)
    try:
        with layer_globals(calls, list(case.spec.layer_sizes)):
            differences = own_cost_differences(calls, case, masks)
    except Exception as error:  # the learner's cost raised on a nearby point
        return {"status": "error", "reason": f"your cost raised {describe(error)} on a perturbed parameter",
                "quantities": {}}
    agreement = {}
    for quantity in gradient_order(case):
        mask = masks[quantity[1:]]
        context = replace(learner_context(quantity, case, reference), tol=tol, mask=mask)
        check = (held_under(quantity, answer.grads[quantity], differences[quantity[1:]], context)
                 if mask.any() else unmeasured_check(quantity, "gradients", "every entry sits at a ReLU kink", tol))
        agreement[quantity] = cell(check)
    return {"status": "pass", "reason": "central differences of your own cost in float64 (h = 1e-6)",
            "quantities": agreement}


def own_cost_differences(calls: Calls, case: Case, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Central differences of the learner's cost for the entries in ``masks`` (NaN elsewhere)."""
    params = {name: np.asarray(value, np.float64) for name, value in case.params.items()}
    X, Y = np.asarray(case.X, np.float64), np.asarray(case.Y, np.float64)

    def cost_at(name: str, index: tuple, shift: float) -> float:
        moved = {key: value.copy() for key, value in params.items()}
        moved[name][index] += shift
        with np.errstate(all="ignore"):  # the first call, watched, said what there is to say
            answer = calls.convention.assemble(calls, X.copy(), Y.copy(), moved)
        return float(np.asarray(answer.returned[0], np.float64).reshape(()))

    differences = {}
    for name, mask in masks.items():
        numerical = np.full(mask.shape, np.nan)
        for index in zip(*np.nonzero(mask)):
            numerical[index] = (cost_at(name, index, STEP) - cost_at(name, index, -STEP)) / (2 * STEP)
        differences[name] = numerical
    return differences


def frameworks(names: list[str] | None) -> list[str]:
    """The frameworks ``names`` asks for (``keras`` expands; None: all of them); SpecError for
    an unknown name or a backend that is not a framework."""
    chosen = resolve(names) if names else list(FRAMEWORKS)
    others = [name for name in chosen if name not in FRAMEWORKS]
    if others:
        raise SpecError(f"{', '.join(others)} is not a framework: the reference and finite differences always "
                        f"run; choose from {', '.join(FRAMEWORKS)}")
    return [name for name in FRAMEWORKS if name in chosen]


def framework_outcomes(cases: list[Case], backends: list[str], progress: Progress | None) -> list[dict | None]:
    """Run the frameworks on the cases (each in its own worker, cost and gradients only: no
    training); per case, each framework's result (None per case where none is asked for)."""
    if not backends:
        return [None] * len(cases)
    options = engine.RunOptions(backends=frameworks(backends), include_arrays=True, trajectories=False)
    return [result.backends for result in engine.run(cases, options, progress).results]


def framework_cell(answers: dict[str, object], case: Case, reference: judge.ReferenceResult,
                   outcome: BackendResult) -> dict:
    """One framework's column: its own status against the reference and, per quantity,
    whether the learner's value agrees with the framework's."""
    if outcome.status in ("error", "skipped"):
        return {"status": outcome.status, "reason": outcome.reason, "quantities": {}}
    own = {check.quantity: check for check in outcome.checks}
    theirs = {"cost": outcome.cost, **{f"d{name}": value for name, value in outcome.gradients.items()}}
    agreement = {}
    for quantity in ["cost", *gradient_order(case)]:
        check = held_against(quantity, answers[quantity], theirs[quantity], case, reference)
        agreement[quantity] = cell(check, own.get(quantity))
    return {"status": outcome.status, "reason": outcome.reason, "quantities": agreement}


def cell(check: Check, source_check: Check | None = None) -> dict:
    """``agrees`` (within the tolerance), ``differs``, or ``deviates``: the source itself is
    off the reference on this quantity (``source_check``, its own check) and the learner's value
    is no farther from it than twice the reference's, so it sides with the reference;
    ``unmeasured`` where nothing could be compared. With the relative error."""
    if check.total == 0:
        verdict = "unmeasured"
    elif check.verdict == "pass":
        verdict = "agrees"
    elif source_check and source_check.verdict != "pass" and \
            check.max_abs_error <= 2 * (finite(source_check.max_abs_error) or 0.0):
        verdict = "deviates"
    else:
        verdict = "differs"
    error = finite(check.rel_error)
    return {"verdict": verdict, "rel_error": error}


def load_code(target: str, convention: str | None = None) -> tuple[Calls, str]:
    """The learner's functions that ``target`` names — ``FILE.py``, ``FILE.ipynb``,
    ``package.module``, each optionally ``:FUNCTION`` (a backprop function) — in the
    convention they follow (``convention`` forces one), and the source in words.
    BackpropError, with the learner's traceback, when the code cannot be loaded."""
    location, _, function = target.rpartition(":") if ":" in target else (target, "", "")
    if function and not function.isidentifier():
        raise BackpropError(f"{target!r} does not name a function: give FILE.py:FUNCTION or package.module:FUNCTION")
    if location.endswith(".ipynb"):
        module = load_definitions(Path(location))
    elif location.endswith(".py") or "/" in location:
        module = import_file(Path(location))
    else:
        module = import_module(location)
    if function and not callable(getattr(module, function, None)):
        what = getattr(module, function, None)
        if what is not None:
            raise BackpropError(f"{location}:{function} is not a function (it is of type {type(what).__name__})")
        raise BackpropError(f"{location} defines no {function}; it defines {', '.join(defined_functions(module)) or 'no function'}")
    return learner_calls(module, convention, function or None, location), location


def import_module(location: str) -> types.ModuleType:
    """Import ``package.module``; BackpropError when it is not there or raises."""
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name != location.split(".")[0] and error.name != location:
            raise BackpropError(f"importing {location} raised {describe(error)}", learner_traceback(error)) from None
        raise BackpropError(f"no module named {location} (run from the folder that holds it, or give FILE.py)") from None
    except Exception as error:
        raise BackpropError(f"importing {location} raised {describe(error)}", learner_traceback(error)) from None


def defined_functions(module: types.ModuleType) -> list[str]:
    """The public functions ``module`` itself defines."""
    return sorted(key for key, value in vars(module).items() if callable(value) and not key.startswith("_")
                  and getattr(value, "__module__", None) == module.__name__)


def import_file(path: Path) -> types.ModuleType:
    """Import a learner's .py file as a module (its folder first on sys.path, for its own
    imports). Where its top-level code raises (a training run on data that is not here), its
    definitions alone are taken, as from a notebook, and ``DEFINITIONS_ONLY`` says so."""
    if not path.is_file():
        raise BackpropError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        failure = BackpropError(f"importing {path} raised {describe(error)}", learner_traceback(error))
        module = definitions_only(path, failure)
        setattr(module, DEFINITIONS_ONLY, f"importing {path.name} ran its top-level code, which raised "
                                          f"{describe(error)}; its definitions alone were checked")
    return module


def definitions_only(path: Path, failure: BackpropError) -> types.ModuleType:
    """The module of the file's definitions alone (imports, functions, classes, literal
    constants: ``notebook.definitions``); ``failure`` where they cannot be run either."""
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    try:
        exec_definitions(definitions(CodeCell(1, path.read_text()), str(path)), str(path), module)
    except (Exception, SystemExit):
        raise failure from None
    return module
