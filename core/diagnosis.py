"""Diagnosis of a backend that fails or deviates: which single operations are responsible,
what the pattern of its failing checks says, and a standalone reproducer.

An op probe runs one operation of the network (``OPS``) through a framework's own API on the
case's arrays in the asked dtype and compares it with its NumPy definition in float64:

    error = max|out - expected| / max|expected|      (normwise relative error; for a
            reduction the denominator is its largest term magnitude, ``TERM_MAGNITUDES``)
    it deviates when out's dtype is not the asked dtype, or error > 16 eps(dtype) sqrt(n),

n being the length of the op's reduction (1 for elementwise ops), so a reduction may round
like a sum of n terms but no more. The framework's side is Python source
(``backends.contract.Primitives``); the probe and the reproducer are the same source, so the
reproducer fails exactly where the probe deviates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gradparity.core.network import NetworkSpec
from gradparity.core.record import finite
from gradparity.core.reference import Params, forward, output_delta
from gradparity.core.results import Check

SCALAR = 0.9  # a Python float that float32 cannot hold: 0.9 -> 0.8999999761581421
REPRODUCER_SLICE = (slice(0, 4), slice(0, 8))  # rows x columns of each array in a reproducer

# op name -> its NumPy definition over float64 arrays x, y and the Python float s
OPS: dict[str, str] = {
    "matmul": "x @ y",
    "add": "x + y",
    "sigmoid": "1 / (1 + np.exp(-x))",
    "tanh": "np.tanh(x)",
    "relu": "np.maximum(x, 0)",
    "softmax": "np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0)",
    "sigmoid_grad": "1 / (1 + np.exp(-x)) * (1 - 1 / (1 + np.exp(-x)))",
    "tanh_grad": "1 - np.tanh(x) ** 2",
    "relu_grad": "(x > 0) * 1.0",
    "transpose_matmul": "x.T @ y",
    "sum": "x.sum(axis=1, keepdims=True)",
    "log": "np.log(x)",
    "mean": "np.mean(x)",
    "bce": "np.sum(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))) / x.shape[1]",
    "bce_probabilities": "-np.sum(y * np.log(x) + (1 - y) * np.log(1 - x)) / x.shape[1]",
    "softmax_ce": "-np.sum(y * (x - x.max(axis=0) - np.log(np.exp(x - x.max(axis=0)).sum(axis=0)))) / x.shape[1]",
    "softmax_ce_probabilities": "-np.sum(y * np.log(x)) / x.shape[1]",
    "mse": "np.mean((x - y) ** 2)",
    "bce_grad": "(1 / (1 + np.exp(-x)) - y) / x.shape[1]",
    "softmax_ce_grad": "(np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0) - y) / x.shape[1]",
    "mse_grad": "2 * (x - y) / x.size",
    "cast_scalar": "np.float64(s)",
    # second order: the Hessian of the summed op at x times x, H(x) x (``contract.second_order_ops``),
    # written without cancellation: sigma' = e^-|x| / (1 + e^-|x|)^2, 1 - 2 sigma = -tanh(x / 2), 1 - tanh^2 = 1 / cosh^2
    "sigmoid_grad2": "-np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2 * np.tanh(x / 2) * x",
    "tanh_grad2": "-2 * np.tanh(x) / np.cosh(x) ** 2 * x",
    "relu_grad2": "0.0 * x",
    "bce_grad2": "np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2 * x / x.shape[1]",
    "softmax_ce_grad2": "(lambda a: (a * x - a * (a * x).sum(axis=0)) / x.shape[1])"
                        "(np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0))",
    "mse_grad2": "2 * x / x.size",
}

# op name -> the magnitude of the terms each output entry sums, where that is not the output
# itself: a reduction that cancels is judged against its terms, as ``core.compare`` does
TERM_MAGNITUDES: dict[str, str] = {
    "matmul": "np.abs(x) @ np.abs(y)",
    "transpose_matmul": "np.abs(x).T @ np.abs(y)",
    "sum": "np.abs(x).sum(axis=1, keepdims=True)",
    "mean": "np.mean(np.abs(x))",
    # a framework differentiates g' = s(1 - s), 1 - t^2, ...: terms of size 1 that cancel to g'' (as the reference's do)
    "sigmoid_grad2": "(lambda s: s * (1 + s) * (1 + 2 * s))(1 / (1 + np.exp(-x))) * np.abs(x)",
    "tanh_grad2": "2 * np.abs(np.tanh(x)) * (1 + np.tanh(x) ** 2) * np.abs(x)",
    "bce_grad2": "(lambda s: s * (1 + s))(1 / (1 + np.exp(-x))) * np.abs(x) / x.shape[1]",
    "softmax_ce_grad2": "(lambda a: (a * np.abs(x) + a * (a * np.abs(x)).sum(axis=0)) / x.shape[1])"
                        "(np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0))",
}


@dataclass
class ProbeInput:
    """One op to probe: its inputs (arrays in the asked dtype, or the float ``s``) and n."""

    op: str
    inputs: dict[str, np.ndarray | float]
    n: int


def probe_plan(params: Params, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
               second_order: bool = False) -> list[ProbeInput]:
    """Every op the network uses, on the case's own arrays: layer 1's product and bias add; the
    hidden activation with its derivative on every hidden layer's pre-activations; the output
    activation; the backward product
    W[L]^T dZ[L] and bias sum; log of A[L], mean of Z[L], the loss and its derivative (with
    respect to the logits Z[L], or to A[L] for mse); a Python scalar's cast. With
    ``second_order``, the second derivatives too: g'' of the hidden activation and the loss's
    Hessian, each times its input (the ``_grad2`` ops)."""
    cache = forward(params, X, spec)
    L, m = spec.depth, X.shape[1]
    W1, WL, ZL, AL = params["W1"], params[f"W{L}"], cache.ZL, cache.A[-1]
    dZL = output_delta(AL.copy(), Y, spec.loss)
    loss = spec.loss.replace("-", "_")
    loss_input = AL if spec.loss == "mse" else ZL  # the logits, where the loss is computed from them
    plan = [ProbeInput("matmul", {"x": W1, "y": X}, X.shape[0]),
            ProbeInput("add", {"x": W1 @ X, "y": params["b1"]}, 1)]
    if L > 1:  # every hidden layer's pre-activations, in one row: a tie at a kink in any layer is probed
        hidden_Z = np.concatenate([np.ravel(cache.Z[layer]) for layer in range(1, L)])[None, :]
        hidden = spec.hidden_activation
        plan += [ProbeInput(hidden, {"x": hidden_Z}, 1), ProbeInput(f"{hidden}_grad", {"x": hidden_Z}, 1)]
    plan += [
        ProbeInput(spec.output_activation, {"x": ZL}, ZL.shape[0] if spec.output_activation == "softmax" else 1),
        ProbeInput("transpose_matmul", {"x": WL, "y": dZL}, WL.shape[0]),
        ProbeInput("sum", {"x": dZL}, m),
        ProbeInput("log", {"x": AL}, 1),
        ProbeInput("mean", {"x": ZL}, ZL.size),  # generic values (a softmax's columns sum to 1)
        ProbeInput(loss, {"x": loss_input, "y": Y}, AL.size),
        ProbeInput(f"{loss}_grad", {"x": loss_input, "y": Y}, 1),
        ProbeInput(f"{loss}_probabilities", {"x": AL, "y": Y}, AL.size),
        ProbeInput("cast_scalar", {"s": SCALAR}, 1),
    ]
    if second_order:
        if L > 1:
            plan.append(ProbeInput(f"{spec.hidden_activation}_grad2", {"x": hidden_Z}, 1))
        plan.append(ProbeInput(f"{loss}_grad2", {"x": loss_input, "y": Y}, ZL.shape[0] if loss == "softmax_ce" else 1))
    return [probe for probe in plan if probe.op in OPS]


def op_tolerance(dtype: str, n: int) -> float:
    """16 eps(dtype) sqrt(n): a few ulps, growing like the rounding of an n-term sum."""
    return float(16 * np.finfo(dtype).eps * np.sqrt(max(n, 1)))


def probe_source(primitives, probe: ProbeInput, dtype: str, standalone: bool = False) -> str:
    """The source that runs ``probe.op`` through the framework and measures it against NumPy:
    it leaves ``got``, ``expected`` and ``error`` and ends in two asserts (dtype, error).
    ``standalone`` writes the float64 inputs in as literals (a reproducer); otherwise they
    must be in the namespace already, as float64 arrays x, y and the float s."""
    tolerance = op_tolerance(dtype, probe.n)
    source = primitives.ops[probe.op].strip().replace("{dtype}", dtype)
    used = [name for name in probe.inputs
            if re.search(rf"\bt{name}\b", source) or re.search(rf"\b{name}\b", OPS[probe.op])]
    lines = [primitives.preamble.strip(), "import numpy as np"]
    if standalone:
        lines += [f"{name} = {literal(probe.inputs[name])}" for name in used]
    lines += [f"t{name} = " + primitives.tensor.format(array=name, dtype=dtype) for name in used if name != "s"]
    lines += [
        source,
        f"got = np.asarray({primitives.numpy})",
        f"expected = {OPS[probe.op]}",
        f"scale = float(np.max({TERM_MAGNITUDES.get(probe.op, 'np.abs(expected)')}))",
        "error = float(np.max(np.abs(got - expected))) / max(scale, 1e-300)",
        f'assert got.dtype == np.{dtype}, f"{dtype} in, {{got.dtype}} out"',
        f'assert error <= {tolerance:.3g}, f"relative error {{error:.3g}} (up to {tolerance:.3g} allowed in {dtype})"',
    ]
    return "\n".join(lines) + "\n"


def literal(value: np.ndarray | float) -> str:
    """Python source for a float or a float array, exact: every float written with repr."""
    if isinstance(value, float):
        return repr(value)
    rows = np.atleast_2d(np.asarray(value, np.float64))
    body = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in rows)
    return f"np.array([{body}])"


def small(probe: ProbeInput) -> ProbeInput:
    """The probe on the top-left 4 x 8 corner of every array (products keep matching inner
    dimensions), for a reproducer short enough to paste into an issue."""
    inputs = {name: value if isinstance(value, float) else np.asarray(value)[REPRODUCER_SLICE]
              for name, value in probe.inputs.items()}
    return ProbeInput(probe.op, inputs, probe.n)


def fitted_factor(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """The least-squares c with a ~ c b, c = <a, b> / <b, b>, and the relative residual
    |a - c b| / |a| (0 for a zero a: c = 0 exactly); None when the shapes differ, b is zero or
    a is not finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm = float(np.vdot(b, b))
    if a.shape != b.shape or norm == 0 or not np.isfinite(a).all():
        return None
    factor = float(np.vdot(a, b)) / norm
    size = float(np.linalg.norm(a))
    return factor, float(np.linalg.norm(a - factor * b)) / size if size else 0.0


def scale_factor(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float | None:
    """The common factor c with actual = c * expected for every gradient (least squares per
    array, the factors agreeing to 1e-6 and c at least 1e-4 away from 1), or None."""
    factors = []
    for name, b in expected.items():
        fit = fitted_factor(actual.get(name, np.nan), b)
        if fit is None or fit[1] > 1e-6:
            return None
        factors.append(fit[0])
    if not factors or abs(factors[0] - 1) < 1e-4 or max(factors) - min(factors) > 1e-6 * abs(factors[0]):
        return None
    return factors[0]


def read_pattern(failing: list[Check], asked: str, factor: float | None) -> str:
    """One sentence read from the failing checks; a relative error that is zero or not finite
    counts as unmeasured, ranked last and read as infinite."""
    quantities = [check.quantity for check in failing]
    worst = max(failing, key=lambda check: finite(check.rel_error) or 0.0)
    relative = finite(worst.rel_error) or float("inf")
    layers = sorted(int(q[1:]) for q in quantities if q.startswith("A") and q[1:].isdigit())
    if factor is not None:
        return (f"every gradient is {factor:.6g} x the reference: a scalar differs "
                "(the 1/m of the mean, a loss weight or the learning rate), not an operation")
    if "dtype" in quantities:
        return f"it returned arrays in another dtype than the {asked} asked"
    if asked == "float64" and 1e-10 < relative < 1e-3:
        return (f"errors of the size of float32 rounding (worst {worst.quantity} at {relative:.2g}) "
                "in a float64 run: an operation computes in float32")
    if layers:
        return f"errors start at A{layers[0]}: look at layer {layers[0]}'s operations"
    if all(q.startswith("trajectory") for q in quantities):
        return "one evaluation agrees but training does not: the update step differs"
    return f"{len(quantities)} quantities fail, worst {worst.quantity} at {relative:.2g} relative"
