"""The NumPy reference behind the contract: ``core.reference`` forward, backward and ``train``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from gradparity.backends.contract import Evaluation, Primitives, SecondOrder, Trajectory
from gradparity.backends.layout import check_device, dtype_name
from gradparity.core import reference, second_order
from gradparity.core.optimizers import OPTIMIZERS, OptimizerState, step as update
from gradparity.core.errors import GradparityError

if TYPE_CHECKING:
    from gradparity.core.cases import Case

PRIMITIVES = Primitives("from gradparity.core import reference, second_order", "np.asarray({array}, dtype=np.{dtype})", "out", {
    "matmul": "out = np.dot(tx, ty)",
    "add": "out = tx + ty",
    **{name: f"out = reference.activate(tx, {name!r})" for name in ("sigmoid", "tanh", "relu", "softmax")},
    **{f"{name}_grad": f"out = reference.activation_derivative(reference.activate(tx, {name!r}), {name!r})"
       for name in ("sigmoid", "tanh", "relu")},
    **{f"{name}_grad2": f"out = second_order.activation_second_derivative(reference.activate(tx, {name!r}), {name!r}) * tx"
       for name in ("sigmoid", "tanh", "relu")},
    "transpose_matmul": "out = np.dot(tx.T, ty)",
    "sum": "out = tx.sum(axis=1, keepdims=True)",
    "log": "out = np.log(tx)",
    "mean": "out = np.mean(tx)",
})


class Adapter:
    """The hand-derived backprop of ``core.reference``, on the CPU only: the control that
    checks the harness (no bit lost across the process boundary), not the maths."""

    role = "control"
    optimizers = {name: name for name in OPTIMIZERS}
    second_order_modes = {"r-operator": ("tangents", "hvp")}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        if check_device(device) != "cpu":
            raise GradparityError("cuda requested but NumPy runs on the CPU only")

    def compile_seconds(self) -> float:
        """NumPy compiles nothing."""
        return 0.0

    def version(self) -> str:
        return f"numpy {np.__version__}"

    def flags(self) -> dict[str, str]:
        """The BLAS NumPy was built with: it decides how matrix products are summed."""
        blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
        return {"blas": f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()}

    def evaluate(self, case: Case) -> Evaluation:
        """``reference.cost_and_gradients``: J, dJ/dW, dJ/db and ``[A1, ..., AL]``."""
        J, grads, cache = reference.cost_and_gradients(case.params, case.X, case.Y, case.spec)
        return Evaluation(J, grads, cache.A[1:], dtype_name(grads["W1"].dtype))

    def train(self, case: Case) -> Trajectory:
        """``reference.train``: the reference optimizers on the case's batches."""
        result = reference.train(case.params, case.X, case.Y, case.spec, case.training)
        return Trajectory(result.costs, result.params, dtype_name(result.params["W1"].dtype))

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """``second_order.hessian_vector_product``: J̇, ``[Ȧ1, ..., ȦL]`` and H V by the R-operator."""
        tangents, hvp = second_order.hessian_vector_product(case.params, case.X, case.Y, case.spec, case.along())
        return SecondOrder(tangents.cost, tangents.Adot[1:], hvp, dtype_name(hvp["W1"].dtype))

    def primitives(self) -> Primitives:
        """The reference's own operations (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        return {"eager": None, "compiled": "NumPy has no compiler"}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One reference step (forward, backward, in-place update by ``core.optimizers.step``) on the
        full batch, on a private copy of the params."""
        if mode != "eager":
            raise GradparityError(f"numpy cannot time mode {mode!r}: {self.bench_modes().get(mode, 'unknown mode')}")
        params = {name: value.copy() for name, value in case.params.items()}
        state = OptimizerState.zeros(params)

        def step() -> None:
            _J, grads, _cache = reference.cost_and_gradients(params, case.X, case.Y, case.spec)
            update(params, grads, state, case.training)

        return step
