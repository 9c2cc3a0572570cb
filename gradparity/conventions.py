"""How a learner's code is called: the conventions ``gradparity check`` knows, as data.

A convention names the functions a learner writes (each a ``Role``: the names it goes by and
the values it takes) and how ``backprop(X, Y, parameters) -> (cost, grads)`` is assembled from
them. A learner's function is bound by its parameters' names (``AL``, ``caches``, ``X``, ...,
with their usual spellings in ``ARGUMENTS``), or by position in the convention's own order
when its names are its own; arguments a learner's code commonly adds (``learning_rate``,
``layers_dims``, ...) are filled from ``EXTRAS`` and said. Adding a convention is adding an
entry to ``CONVENTIONS``:

    backprop   backprop(X, Y, parameters) -> (cost, grads)
    course     L_model_forward(X, parameters) -> (AL, caches); compute_cost(AL, Y);
               L_model_backward(AL, Y, caches) -> grads (also the 2-layer forward_propagation,
               backward_propagation(parameters, cache, X, Y); extra keys such as dA1 kept aside)
    document   forward(X, b, W, layer_number) -> [A0, ..., An]; cal_cost(An, Y);
               backward(W, A, Y, layer_number) -> (db, dW), lists with a leading 0

The cost is optional where a convention has one of its own: without it the cost is not
checked (the network is then read from the forward pass and the gradients).
"""

from __future__ import annotations

import contextlib
import dis
import inspect
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradparity.core.errors import GradparityError

ARGUMENTS = {
    "X": ("X", "x", "A0", "X_train", "inputs", "data"),
    "Y": ("Y", "y", "Y_train", "labels", "targets"),
    "parameters": ("parameters", "params", "parameter", "param", "theta"),
    "AL": ("AL", "A_L", "Al", "aL", "al", "A_last", "A2", "a2", "A3", "a3", "An", "A", "Yhat", "Y_hat", "y_hat",
           "yhat", "output", "outputs", "predictions", "probs"),
    "caches": ("caches", "cache", "forward_cache", "memory"),
    "b": ("b", "B", "biases"),
    "W": ("W", "weights"),
    "A": ("A", "As", "activations"),
    "layer_number": ("layer_number", "n", "L", "layers", "num_layers", "n_layers", "layer_num", "number_of_layers"),
}
LAYER_SIZES = ("layers_dims", "layer_dims", "layers_dim", "layer_dim", "layer_sizes", "layers_sizes", "dims",
               "layers")
EXTRAS = {"learning_rate": 0.0, "lr": 0.0, "lambd": 0.0, "lambda_": 0.0, "keep_prob": 1.0, "print_cost": False}


class ConventionError(GradparityError):
    """The learner's code fits no convention, fits two, or cannot be called as its convention says."""


@dataclass(frozen=True)
class Role:
    """One function of a convention: the names it is looked for under, the values it takes
    in the convention's order (``ARGUMENTS`` keys), and others it may ask for by name."""

    part: str
    names: tuple[str, ...]
    takes: tuple[str, ...]
    optional: bool = False
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What the learner's functions computed for one network: the cost (None where the code
    has no cost function), the gradients under their own keys, and the other arrays they
    returned on the way (``A1``, ..., ``dA1``, ...)."""

    cost: object
    grads: object
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    raw: object = None  # a backprop's answer as it came, read by the caller

    @property
    def returned(self) -> Any:
        """``(cost, grads)`` as the learner's code gave them (unread: ``learner.read_answer`` reads them)."""
        return self.raw if self.raw is not None else (self.cost, self.grads)


Assemble = Callable[["Calls", np.ndarray, np.ndarray, dict], Answer]


@dataclass(frozen=True)
class Convention:
    """A way learners write backprop: its roles and how they make ``backprop``."""

    name: str
    summary: str
    roles: tuple[Role, ...]
    assemble: Assemble

    def role(self, part: str) -> Role:
        return next(role for role in self.roles if role.part == part)


class Calls:
    """The learner's functions of one convention, called with the values they take by name;
    ``layer_sizes`` is what the code's own layer-size arguments and globals are given."""

    def __init__(self, convention: Convention, names: dict[str, str], namespace: dict) -> None:
        self.convention, self.names, self.namespace = convention, names, namespace
        self.functions: dict[str, Callable] = {part: namespace[name] for part, name in names.items()}
        self.layer_sizes: list[int] = []
        self.filled: dict[str, str] = {}  # "L_model_backward's learning_rate" -> "0.0"

    def has(self, part: str) -> bool:
        return part in self.functions

    def __call__(self, part: str, **values: object) -> object:
        function = self.functions[part]
        arguments = bind(function, self.names[part], self.convention.role(part), values, self.layer_sizes)
        if isinstance(arguments, str):
            raise ConventionError(arguments)
        for name, value in arguments.items():
            kind = argument_kind(name, tuple(values))
            if kind is None:
                self.filled[f"{self.names[part]}'s {name}"] = "the layer sizes" if value is self.layer_sizes else repr(value)
        return function(*arguments.values())


def argument_kind(name: str, kinds: tuple[str, ...]) -> str | None:
    """The kind of value (``X``, ``AL``, ...) a parameter called ``name`` asks for among ``kinds``."""
    return next((kind for kind in kinds if name in ARGUMENTS[kind]), None)


def required_parameters(function: Callable) -> list[str] | None:
    """The names of the parameters a call must give (positional, without a default); None
    when the signature cannot be read."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    return [parameter.name for parameter in signature.parameters.values()
            if parameter.default is inspect.Parameter.empty and
            parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def bind(function: Callable, called: str, role: Role, values: Mapping[str, object],
         layer_sizes: list[int]) -> dict | str:
    """The arguments of ``function`` for ``role`` in order, by parameter name: a value the
    convention has (``values``), a layer-size list, an ``EXTRAS`` default; else, when the
    function takes exactly as many as the role, ``values`` in the role's order. A string
    saying why not where neither fits."""
    required = required_parameters(function)
    if required is None:
        return f"the signature of {called} cannot be read"
    arguments: dict[str, object] = {}
    for name in required:
        kind = argument_kind(name, tuple(values))
        if kind is not None:
            arguments[name] = values[kind]
        elif name in LAYER_SIZES:
            arguments[name] = layer_sizes
        elif name in EXTRAS:
            arguments[name] = EXTRAS[name]
        else:
            break
    else:
        return arguments
    if len(required) == len(role.takes) and all(kind in values for kind in role.takes):
        return {name: values[kind] for name, kind in zip(required, role.takes)}
    shown = f"{called}({', '.join(required)})"
    return (f"{shown} takes {', '.join(name for name in required if name not in arguments)}, which the {role.part} "
            f"function of this form is not given: it takes ({', '.join(role.takes)})")


def fits(function: object, role: Role) -> bool:
    """Whether ``function`` can play ``role``: callable and bindable to the role's values."""
    return callable(function) and not isinstance(bind(function, "", role, dict.fromkeys(role.takes + role.also), []),
                                                 str)


# ---- assembling backprop(X, Y, parameters) from each convention's functions ----

def assemble_backprop(calls: Calls, X: np.ndarray, Y: np.ndarray, parameters: dict) -> Answer:
    """``backprop(X, Y, parameters) -> (cost, grads)`` as it is; its answer read as it comes."""
    return Answer(None, None, raw=calls("backprop", X=X, Y=Y, parameters=parameters))


def assemble_course(calls: Calls, X: np.ndarray, Y: np.ndarray, parameters: dict) -> Answer:
    """``AL, caches = L_model_forward(X, parameters)``; ``cost = compute_cost(AL, Y)``;
    ``grads = L_model_backward(AL, Y, caches)``; the ``dA`` keys of grads kept aside."""
    forward = calls.names["forward"]
    output = calls("forward", X=X, parameters=parameters)
    if not (isinstance(output, tuple) and len(output) == 2):
        raise ConventionError(f"{forward} returned {shape_of(output)}; the course form returns (AL, caches)")
    AL, caches = output
    values = {"AL": AL, "Y": Y, "caches": caches, "X": X, "parameters": parameters}
    cost = calls("cost", AL=AL, Y=Y, parameters=parameters) if calls.has("cost") else None
    grads = calls("backward", **values)
    extras = {f"A{len(calls.layer_sizes) - 1}": AL}
    if isinstance(grads, Mapping):
        extras |= {key: value for key, value in grads.items() if isinstance(key, str) and key.startswith("dA")}
    return Answer(cost, grads, extras)


def assemble_document(calls: Calls, X: np.ndarray, Y: np.ndarray, parameters: dict) -> Answer:
    """The document's lists: ``W = [0, W1, ..., Wn]``, ``b = [0, b1, ..., bn]``;
    ``A = forward(X, b, W, n)``; ``cost = cal_cost(A[n], Y)``; ``db, dW = backward(W, A, Y, n)``."""
    n = len(calls.layer_sizes) - 1
    W = [0, *(parameters[f"W{layer}"] for layer in range(1, n + 1))]
    b = [0, *(parameters[f"b{layer}"] for layer in range(1, n + 1))]
    names = calls.names
    A = calls("forward", X=X, b=b, W=W, layer_number=n)
    if not (isinstance(A, (list, tuple)) and len(A) == n + 1):
        raise ConventionError(f"{names['forward']} returned {shape_of(A)}; the document's forward returns "
                              f"the list [A0, A1, ..., A{n}] ({n + 1} arrays for {n} layers)")
    cost = calls("cost", AL=A[n], Y=Y) if calls.has("cost") else None
    answer = calls("backward", W=W, A=A, Y=Y, layer_number=n)
    if not (isinstance(answer, tuple) and len(answer) == 2 and
            all(isinstance(part, (list, tuple)) and len(part) == n + 1 for part in answer)):
        raise ConventionError(f"{names['backward']} returned {shape_of(answer)}; the document's backward "
                              f"returns (db, dW), two lists [0, d1, ..., d{n}] of {n + 1} entries")
    db, dW = answer
    grads = {f"d{kind}{layer}": gradient[layer] for layer in range(1, n + 1) for kind, gradient in (("W", dW), ("b", db))}
    return Answer(cost, grads, {f"A{layer}": A[layer] for layer in range(1, n + 1)})


def shape_of(value: object) -> str:
    """A returned value in words: ``a tuple of 3``, ``a list of 2``, ``a ndarray``."""
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


FORWARD_NAMES = ("L_model_forward", "model_forward", "L_forward", "forward_propagation", "forward_prop",
                 "forward_pass", "full_forward_propagation", "deep_forward", "forward")
BACKWARD_NAMES = ("L_model_backward", "model_backward", "L_backward", "backward_propagation", "back_propagation",
                  "backward_prop", "back_prop", "backprop", "backward_pass", "full_backward_propagation",
                  "deep_backward", "backward")
COST_NAMES = ("compute_cost", "cost_function", "compute_loss", "cross_entropy_cost", "cost", "calc_cost",
              "calculate_cost", "cal_cost", "loss")

CONVENTIONS = (
    Convention("backprop", "backprop(X, Y, parameters) -> (cost, grads)",
               (Role("backprop", ("backprop",), ("X", "Y", "parameters")),), assemble_backprop),
    Convention("course", "L_model_forward(X, parameters) -> (AL, caches); compute_cost(AL, Y); "
                         "L_model_backward(AL, Y, caches) -> grads",
               (Role("forward", FORWARD_NAMES, ("X", "parameters")),
                Role("cost", COST_NAMES, ("AL", "Y"), optional=True, also=("parameters",)),
                Role("backward", BACKWARD_NAMES, ("AL", "Y", "caches"), also=("X", "parameters"))), assemble_course),
    Convention("document", "forward(X, b, W, layer_number) -> A; cal_cost(An, Y); "
                           "backward(W, A, Y, layer_number) -> (db, dW)",
               (Role("forward", ("forward",), ("X", "b", "W", "layer_number")),
                Role("cost", ("cal_cost", "compute_cost", "cost"), ("AL", "Y"), optional=True),
                Role("backward", ("backward",), ("W", "A", "Y", "layer_number"))), assemble_document),
)
NAMES = tuple(convention.name for convention in CONVENTIONS)


def convention_named(name: str) -> Convention:
    """The convention called ``name``; ConventionError naming the choices otherwise."""
    for convention in CONVENTIONS:
        if convention.name == name:
            return convention
    raise ConventionError(f"unknown convention {name!r}; choose from {', '.join(NAMES)}")


def found_roles(convention: Convention, namespace: Mapping[str, object]) -> dict[str, str]:
    """The name of the learner's function for each role of ``convention`` found in
    ``namespace``: the first of the role's names that is defined there, in any case
    (``l_model_forward``), and fits."""
    spelled = {name.lower(): name for name in namespace if isinstance(name, str)}
    found = {}
    for role in convention.roles:
        names = [spelled[name.lower()] for name in role.names if name.lower() in spelled]
        name = next((name for name in names if fits(namespace[name], role)), None)
        if name is not None:
            found[role.part] = name
    return found


def complete(convention: Convention, found: dict[str, str]) -> bool:
    return all(role.part in found for role in convention.roles if not role.optional)


def find(namespace: dict, source: str, forced: str | None = None, function: str | None = None) -> Calls:
    """The learner's functions in ``namespace`` (a module's or a notebook's definitions) and
    the convention they follow: ``function`` (``FILE:FUNCTION``) is a ``backprop``; ``forced``
    (``--convention``) is the one looked for; otherwise the one convention whose required
    functions are all there. ConventionError when none or two fit, saying what ``source``
    defines and what was looked for."""
    if function is not None:
        convention = convention_named(forced or "backprop")
        if not fits(namespace.get(function), convention.roles[0]):
            raise ConventionError(f"{source}:{function} is not a function of the form {convention.summary}")
        return Calls(convention, {convention.roles[0].part: function}, namespace)
    candidates = [convention_named(forced)] if forced else list(CONVENTIONS)
    roles = {convention.name: found_roles(convention, namespace) for convention in candidates}
    fitting = [convention for convention in candidates if complete(convention, roles[convention.name])]
    if len(fitting) > 1:
        both = "; ".join(f"{convention.name} ({', '.join(roles[convention.name].values())})"
                         for convention in fitting)
        raise ConventionError(f"{source} follows two conventions at once: {both}; choose one with --convention "
                              f"NAME (or FILE:FUNCTION for a backprop function)")
    if not fitting:
        raise ConventionError(not_found(namespace, source, candidates, roles))
    convention = fitting[0]
    return Calls(convention, roles[convention.name], namespace)


def not_found(namespace: Mapping[str, object], source: str, candidates: list[Convention],
              roles: dict[str, dict[str, str]]) -> str:
    """One line: what ``source`` defines, the conventions looked for, and what a convention
    that was partly there lacks."""
    defined = sorted(name for name, value in namespace.items() if inspect.isfunction(value) and not name.startswith("_"))
    partial = [(convention, roles[convention.name]) for convention in candidates
               if any(role.part in roles[convention.name] for role in convention.roles if not role.optional)]
    if partial:
        convention, found = partial[0]
        missing = [role.names[0] for role in convention.roles if role.part not in found and not role.optional]
        return (f"{source} has {', '.join(found.values())} of the {convention.name} form but no "
                f"{' or '.join(missing)} (the {convention.name} form: {convention.summary})")
    looked = "; ".join(f"{convention.name}: {convention.summary}" for convention in candidates)
    return (f"{source} defines {', '.join(defined) or 'no function'}, and none of the forms gradparity check knows: "
            f"{looked}")


@contextlib.contextmanager
def layer_globals(calls: Calls, layer_sizes: list[int]) -> Iterator[list[str]]:
    """Run the learner's code with ``layer_sizes`` wherever it reads a network's size: its
    layer-size arguments and the globals its functions read that hold a list of layer sizes
    (``layers_dims = [12288, 20, 7, 1]``) or are read without being defined (under one of the
    names of ``LAYER_SIZES``), restored afterwards. Yields what it set, in words."""
    calls.layer_sizes[:] = layer_sizes
    missing = object()
    saved = [(space, name, space.get(name, missing)) for space, name in size_globals(calls)]
    for space, name, _ in saved:
        space[name] = list(layer_sizes)
    try:
        yield [name if value is not missing else f"{name} (not defined)" for _, name, value in saved]
    finally:
        for space, name, value in saved:
            if value is missing:
                space.pop(name, None)
            else:
                space[name] = value


def is_size_list(value: object) -> bool:
    """A list or tuple of at least two positive ints: a network's layer sizes."""
    return (isinstance(value, (list, tuple)) and len(value) >= 2 and
            all(isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0 for size in value))


def size_globals(calls: Calls) -> list[tuple[dict, str]]:
    """The globals holding layer sizes that the learner's functions read, directly or
    through the functions of their own modules they call (the names their code loads as
    globals, nested code included), with the globals dictionary each is read from."""
    seen: set = set()
    found: list[tuple[dict, str]] = []
    pending = [function for function in calls.functions.values() if inspect.isfunction(function)]
    while pending:
        function = pending.pop()
        if function.__code__ in seen:
            continue
        seen.add(function.__code__)
        space = function.__globals__
        for name in sorted(global_names(function.__code__)):
            value = space.get(name)
            if inspect.isfunction(value) and value.__module__ == function.__module__:
                pending.append(value)
            elif (is_size_list(value) or (name in LAYER_SIZES and name not in space)) and \
                    all(space is not other or name != known for other, known in found):
                found.append((space, name))
    return found


def global_names(code: types.CodeType) -> set[str]:
    """The global names a code object and the code nested in it read (not attribute names)."""
    names = {instruction.argval for instruction in dis.get_instructions(code)
             if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for constant in code.co_consts:
        if inspect.iscode(constant):
            names |= global_names(constant)
    return names
