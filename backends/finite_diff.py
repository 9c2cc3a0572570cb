"""Central finite differences in float64: the ground truth, as a backend (cost and gradients)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from gradparity.backends.contract import Evaluation, SecondOrder, Trajectory
from gradparity.core.cases import Case
from gradparity.core.gradcheck import numerical_gradients
from gradparity.core.reference import cost, forward
from gradparity.core.second_order import numerical_second_order


class Adapter:
    """Differences the float64 cost (and, along V, its gradients and activations); gives no
    activations of its own, trajectory or timings."""

    provides = ("cost", "gradients")
    role = "ground truth"
    second_order_modes = {"central-differences": ("tangents", "hvp")}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name

    def compile_seconds(self) -> float:
        """NumPy compiles nothing."""
        return 0.0

    def version(self) -> str:
        return f"central differences, numpy {np.__version__}"

    def flags(self) -> dict[str, str]:
        return {"precision": "float64 always", "step": "1e-6"}

    def evaluate(self, case: Case) -> Evaluation:
        X, Y = case.X.astype(np.float64), case.Y.astype(np.float64)
        params = {name: value.astype(np.float64) for name, value in case.params.items()}
        cache = forward(params, X, case.spec)
        gradients, masks = numerical_gradients(params, X, Y, case.spec)
        J = cost(cache.ZL, cache.A[-1], Y, case.spec.loss)
        return Evaluation(J, gradients, [], "float64", checked=masks)

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """``second_order.numerical_second_order``: J̇, Ȧ[l] and H V by central differences along V
        in float64, over the examples whose ReLU inputs keep their signs within the step."""
        found = numerical_second_order(case.params, case.X, case.Y, case.spec, case.along())
        return SecondOrder(found.cost, found.Adot, found.hvp, "float64", found.examples)

    def train(self, case: Case) -> Trajectory:
        raise NotImplementedError("finite differences give no training trajectory")

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": "finite differences are a check, not a training step"}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        raise NotImplementedError("finite differences are a check, not a training step")
