"""The mutation catalogue: classic mistakes of a hand-derived backprop, each a small edit of
the correct implementation in ``examples/backprop.py`` (the learner's example the tutorial
walks through), with the network it shows on, the first wrong gradient it must be caught at
(counted from the output) and the pattern of ``core.mistakes`` it should be recognised as."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradparity.core.network import NetworkSpec
from gradparity.core.reference import initial_params

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "backprop.py"
M = 7  # examples: odd and unequal to every width, so that no wrong shape passes for a right one


@dataclass(frozen=True)
class Mutant:
    """One mistake: the edits (old text -> new text, each old text found exactly once in the
    correct source), the network (layer sizes, hidden activation, loss), the first wrong
    quantity the check must name (None: only the cost is wrong) and the expected pattern."""

    name: str
    edits: tuple[tuple[str, str], ...]
    first_wrong: str | None
    pattern: str
    hidden: str = "sigmoid"
    loss: str = "bce"
    sizes: tuple[int, ...] = (3, 5, 4, 1)

    def source(self) -> str:
        """The example's source with the edits applied; AssertionError where an old text is
        not found exactly once (a mutant that would silently be the correct code)."""
        text = EXAMPLE.read_text()
        for old, new in self.edits:
            assert text.count(old) == 1, f"mutant {self.name!r}: {old!r} occurs {text.count(old)} times"
            text = text.replace(old, new)
        return text

    def backprop(self):
        """The mutated ``backprop(X, Y, parameters)`` for this mutant's activation and loss."""
        namespace: dict = {"__name__": f"mutant_{self.name}"}
        exec(compile(self.source(), f"<mutant {self.name}>", "exec"), namespace)
        return functools.partial(namespace["backprop"], hidden=self.hidden, loss=self.loss)

    def network(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Seeded data (X standard normal; labels for the loss) and xavier parameters."""
        return network(self.sizes, self.hidden, self.loss)


def network(sizes: tuple[int, ...], hidden: str, loss: str, m: int = M, seed: int = 0):
    """X (n0, m) standard normal, Y labels fitting ``loss`` and xavier parameters, seeded."""
    generator = np.random.default_rng(seed)
    X = generator.standard_normal((sizes[0], m))
    if loss == "softmax-ce":
        Y = np.eye(sizes[-1])[:, generator.integers(0, sizes[-1], m)]
    else:
        Y = generator.integers(0, 2, (sizes[-1], m)).astype(np.float64)
    return X, Y, initial_params(NetworkSpec(sizes, hidden, loss), "xavier", seed=seed + 1)


OUTPUT = "return (AL - Y) / m"
DW = 'grads["dW" + str(l)] = np.dot(dZ, A_prev.T)'
DB = 'grads["db" + str(l)] = np.sum(dZ, axis=1, keepdims=True)'
MSE = "return 2 * (AL - Y) * AL * (1 - AL) / Y.size"

MUTANTS = (
    Mutant("missing 1/m", ((OUTPUT, "return AL - Y"),), "dW3", "missing-1/m"),
    Mutant("1/m twice", ((DW, DW + " / X.shape[1]"),), "dW3", "1/m-twice"),
    Mutant("wrong sign", ((OUTPUT, "return (Y - AL) / m"),), "dW3", "sign"),
    Mutant("db over the wrong axis", ((DB, DB.replace("axis=1", "axis=0")),), "db3", "sum-axis-0",
           sizes=(3, 5, 4, 2)),  # with one output unit, summing over it changes nothing: "not summed"
    Mutant("db not summed", ((DB, 'grads["db" + str(l)] = dZ'),), "db3", "not-summed"),
    Mutant("db without keepdims", ((DB, DB.replace(", keepdims=True", "")),), "db3", "keepdims"),
    Mutant("db left at zero", ((DB, 'grads["db" + str(l)] = np.zeros_like(parameters["b" + str(l)])'),), "db3", "zeros"),
    Mutant("dW without the transpose of A", ((DW, 'grads["dW" + str(l)] = np.dot(A_prev, dZ.T)'),), "dW3", "transposed"),
    Mutant("A[l] for A[l-1]", ((DW, 'grads["dW" + str(l)] = np.dot(dZ, A.T)'),), "dW3", "A-for-A_prev"),
    Mutant("W not transposed", (("np.dot(parameters[\"W\" + str(l)].T, dZ)", "np.dot(parameters[\"W\" + str(l)], dZ)"),),
           "dW2", "W-not-transposed", sizes=(4, 4, 4, 4)),
    Mutant("sigmoid' = A(1 + A)", (("return A * (1 - A)", "return A * (1 + A)"),), "dW2", "derivative-form"),
    Mutant("sigmoid' taken at A", (("return A * (1 - A)", 'return activate(A, "sigmoid") * (1 - activate(A, "sigmoid"))'),),
           "dW2", "derivative-at-A"),
    Mutant("tanh' = 1 - A", (("return 1 - A ** 2", "return 1 - A"),), "dW2", "derivative-form", hidden="tanh"),
    Mutant("tanh' from Z", (("return 1 - A ** 2", "return 1 - Z ** 2"),), "dW2", "derivative-of-Z", hidden="tanh"),
    Mutant("derivative left out", (("dZ = dA_prev * derivative(Z_prev, A_prev, hidden)", "dZ = dA_prev"),), "dW2",
           "derivative-missing", hidden="tanh"),
    Mutant("relu' read after an in-place overwrite", (("return np.maximum(0, Z)", "return np.maximum(Z, 0, out=Z)"),
                                                     ("(Z > 0)", "(Z >= 0)")), "dW2", "derivative-missing", hidden="relu"),
    Mutant("softmax dZ without Y", ((OUTPUT, "return AL / m"),), "dW3", "Y-not-subtracted", hidden="relu",
           loss="softmax-ce", sizes=(3, 5, 4, 3)),
    Mutant("bce dZ times sigmoid' again", ((OUTPUT, "return (AL - Y) * AL * (1 - AL) / m"),), "dW3", "derivative-twice"),
    Mutant("bce dA for dZ", ((OUTPUT, "return (-Y / AL + (1 - Y) / (1 - AL)) / m"),), "dW3", "dA-for-dZ"),
    Mutant("mse without its factor 2", ((MSE, MSE.replace("return 2 * ", "return ")),), "dW3", "factor-1/2", loss="mse"),
    Mutant("mse averaged over m only", ((MSE, MSE.replace("/ Y.size", "/ Y.shape[1]")),), "dW3", "mean-over-outputs",
           hidden="tanh", loss="mse", sizes=(3, 5, 4, 2)),
    Mutant("cost without 1/m", (("(1 - Y) * np.log(1 - AL)) / m", "(1 - Y) * np.log(1 - AL))"),), None, "missing-1/m"),
)
