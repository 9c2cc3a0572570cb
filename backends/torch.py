"""PyTorch behind the contract: autograd for the gradients, ``torch.optim`` for training.

Second order along the case's direction V, four ways: ``func.jvp`` and ``forward-ad`` push V
forward (``torch.func.jvp``; ``torch.autograd.forward_ad`` dual tensors) for J̇ and the
tangents Ȧ[l]; ``fwd-over-rev`` (``torch.func.jvp`` of ``torch.func.grad``) and
``double-backward`` (``torch.autograd.grad`` with ``create_graph=True``, then the gradient of
<∇J, V>) give H V.

``torch.optim.SGD`` (with ``momentum``: buf = mu buf + g, W -= lr buf, the reference's
momentum) and ``torch.optim.Adam`` (bias-corrected m^ and v^, eps added to sqrt(v^):
Kingma & Ba's Algorithm 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd import forward_ad

from gradparity.backends.contract import (Evaluation, Primitives, SecondOrder, Trajectory, Unsupported,
                                          differentiable_ops, second_order_ops)
from gradparity.backends.layout import check_device, dtype_name, no_gpu, step_batches
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec

if TYPE_CHECKING:
    from gradparity.core.cases import Case
    from gradparity.core.optimizers import Training

Tensors = dict[str, torch.Tensor]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softmax": lambda Z: torch.softmax(Z, dim=0),
}

GRADIENT = """t = tx.clone().requires_grad_(True)
out = torch.autograd.grad(torch.sum({f}), t)[0]"""
# H(tx) tx of sum({f}) as ``fwd-over-rev`` computes H V: torch.func.jvp of torch.func.grad, along tx
HVP = """out = torch.func.jvp(torch.func.grad(lambda t: torch.sum({f})), (tx,), (tx,))[1]"""
# the activations of ``ACTIVATIONS`` and the losses of ``cost`` (over the logits, or the output for mse)
DIFFERENTIABLE = {
    "sigmoid": "torch.sigmoid({x})", "tanh": "torch.tanh({x})", "relu": "torch.relu({x})",
    "bce": "F.binary_cross_entropy_with_logits({x}, ty, reduction='sum') / {x}.shape[1]",
    "softmax_ce": "F.cross_entropy({x}.T, ty.T, reduction='sum') / {x}.shape[1]",
    "mse": "F.mse_loss({x}, ty)",
}
PREAMBLE = """import torch
import torch.nn.functional as F"""
PRIMITIVES = Primitives(PREAMBLE, "torch.tensor({array}, dtype=torch.{dtype})", "out.detach().numpy()", {
    "matmul": "out = tx @ ty",
    "add": "out = tx + ty",
    "softmax": "out = torch.softmax(tx, dim=0)",
    "transpose_matmul": "out = tx.T @ ty",
    "sum": "out = torch.sum(tx, dim=1, keepdim=True)",
    "log": "out = torch.log(tx)",
    "mean": "out = torch.mean(tx)",
    "cast_scalar": "out = s * torch.ones((), dtype=torch.{dtype})",
    **differentiable_ops(GRADIENT, DIFFERENTIABLE),
    **second_order_ops(HVP, DIFFERENTIABLE),
})


def select_device(device: str, allow_tf32: bool) -> torch.device:
    """The torch device for ``cpu``/``cuda``; on cuda TF32 is switched off unless allowed."""
    if check_device(device) == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise no_gpu("torch")
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    return torch.device("cuda")


def compile_seconds() -> float:
    """Nothing is compiled: every operation runs eagerly (``torch.compile`` is bench's alone)."""
    return 0.0


def flags() -> dict[str, str]:
    """Threads, determinism and the TF32 switches of this process."""
    return {
        "num_threads": str(torch.get_num_threads()),
        "deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()),
        "cuda.matmul.allow_tf32": str(torch.backends.cuda.matmul.allow_tf32),
        "cudnn.allow_tf32": str(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def forward(params: Tensors, X: torch.Tensor, spec: NetworkSpec) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g[l](Z[l]); returns ``[A1, ..., AL]`` and ZL."""
    activations, A, Z = [], X, X
    for layer in range(1, spec.depth + 1):
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]
        A = ACTIVATIONS[spec.activation(layer)](Z)
        activations.append(A)
    return activations, Z


def cost(ZL: torch.Tensor, AL: torch.Tensor, Y: torch.Tensor, loss: str) -> torch.Tensor:
    """J of ``core.reference.cost`` from torch's stable losses: bce = BCE-with-logits summed
    over all nL*m outputs / m; softmax-ce = cross_entropy(ZL^T, Y^T) summed / m (probability
    targets, one row per example); mse = mean((AL - Y)^2) over nL*m."""
    m = Y.shape[1]
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(ZL, Y, reduction="sum") / m
    if loss == "softmax-ce":
        return F.cross_entropy(ZL.T, Y.T, reduction="sum") / m
    return F.mse_loss(AL, Y)


def objective(params: Tensors, X: torch.Tensor, Y: torch.Tensor, spec: NetworkSpec) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(J, [A1, ..., AL]) of one forward pass."""
    activations, ZL = forward(params, X, spec)
    return cost(ZL, activations[-1], Y, spec.loss), activations


def optimizer(training: Training, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The torch.optim optimizer of ``training``: SGD, SGD with momentum, or Adam."""
    if training.optimizer == "sgd":
        return torch.optim.SGD(params, lr=training.learning_rate)
    if training.optimizer == "momentum":
        return torch.optim.SGD(params, lr=training.learning_rate, momentum=training.momentum)
    return torch.optim.Adam(params, lr=training.learning_rate, betas=(training.beta1, training.beta2),
                            eps=training.epsilon)


def jvp_by_func(params: Tensors, direction: Tensors, X: torch.Tensor, Y: torch.Tensor, spec: NetworkSpec) -> SecondOrder:
    """``torch.func.jvp`` of ``objective`` at the parameters along V: (J̇, [Ȧ1, ..., ȦL])."""
    _values, (J_dot, A_dots) = torch.func.jvp(lambda p: objective(p, X, Y, spec), (params,), (direction,))
    return tangents_answer(J_dot, A_dots)


def jvp_by_dual_tensors(params: Tensors, direction: Tensors, X: torch.Tensor, Y: torch.Tensor,
                        spec: NetworkSpec) -> SecondOrder:
    """``objective`` on dual tensors (``torch.autograd.forward_ad``), each parameter's tangent
    its part of V; J̇ and Ȧ[l] are the tangents of J and A[l]."""
    with forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(value, direction[name]) for name, value in params.items()}
        J, activations = objective(duals, X, Y, spec)
        return tangents_answer(forward_ad.unpack_dual(J).tangent,
                               [forward_ad.unpack_dual(A).tangent for A in activations])


def hvp_forward_over_reverse(params: Tensors, direction: Tensors, X: torch.Tensor, Y: torch.Tensor,
                             spec: NetworkSpec) -> SecondOrder:
    """H V = d/dr ∇J(θ + rV) at r = 0: ``torch.func.jvp`` of ``torch.func.grad(J)`` along V."""
    gradient = torch.func.grad(lambda p: objective(p, X, Y, spec)[0])
    _gradients, hvp = torch.func.jvp(gradient, (params,), (direction,))
    return hvp_answer(hvp)


def hvp_double_backward(params: Tensors, direction: Tensors, X: torch.Tensor, Y: torch.Tensor,
                        spec: NetworkSpec) -> SecondOrder:
    """H V = ∇<∇J, V>: ``torch.autograd.grad(J, θ, create_graph=True)``, then the gradient of
    the sum of g ⊙ V over every parameter (``params`` are leaves that require grad)."""
    names = list(params)
    J, _activations = objective(params, X, Y, spec)
    gradients = torch.autograd.grad(J, [params[name] for name in names], create_graph=True)
    along = sum(torch.sum(gradient * direction[name]) for name, gradient in zip(names, gradients))
    hvp = torch.autograd.grad(along, [params[name] for name in names])
    return hvp_answer(dict(zip(names, hvp)))


def tangents_answer(J_dot: torch.Tensor, A_dots: list[torch.Tensor]) -> SecondOrder:
    """J̇ as a float and the Ȧ[l] as NumPy, with the narrowest dtype among them."""
    return SecondOrder(cost_tangent=J_dot.item(), tangents=[to_numpy(A) for A in A_dots],
                       dtype_used=narrowest_dtype([J_dot, *A_dots]))


def hvp_answer(hvp: Tensors) -> SecondOrder:
    """H V as NumPy keyed ``W1, b1, ...``, with the narrowest dtype among its tensors."""
    return SecondOrder(hvp={name: to_numpy(value) for name, value in hvp.items()},
                       dtype_used=narrowest_dtype(list(hvp.values())))


def narrowest_dtype(tensors: list[torch.Tensor]) -> str:
    """The name of the narrowest dtype among ``tensors`` (a float32 among float64s shows)."""
    return dtype_name(min((tensor.dtype for tensor in tensors), key=lambda dtype: dtype.itemsize))


# mode -> (what it computes, the function computing it from params, V, X, Y and the spec)
# torch's forward-AD formula of mse_loss_backward divides a zero tangent (the target's) in place
ZERO_TENSOR_DEFECT = "ZeroTensors are immutable"
SECOND_ORDER: dict[str, tuple[tuple[str, ...], Callable[..., SecondOrder]]] = {
    "func.jvp": (("tangents",), jvp_by_func),
    "forward-ad": (("tangents",), jvp_by_dual_tensors),
    "fwd-over-rev": (("hvp",), hvp_forward_over_reverse),
    "double-backward": (("hvp",), hvp_double_backward),
}


class Adapter:
    """PyTorch autograd and ``torch.optim`` on the reference network."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam", "adam-hat": "adam"}
    second_order_modes = {mode: computes for mode, (computes, _function) in SECOND_ORDER.items()}

    def __init__(self, name: str, device: str = "cpu", allow_tf32: bool = False) -> None:
        self.name = name
        self.device = select_device(device, allow_tf32)

    def version(self) -> str:
        return f"torch {torch.__version__}"

    def compile_seconds(self) -> float:
        return compile_seconds()

    def flags(self) -> dict[str, str]:
        return flags()

    def _tensors(self, case: Case) -> tuple[Tensors, torch.Tensor, torch.Tensor]:
        """Leaf parameter tensors that require grad, X and Y, all on the device."""
        on_device = lambda array: torch.tensor(array, device=self.device)  # noqa: E731 - copies
        params = {name: on_device(value).requires_grad_() for name, value in case.params.items()}
        return params, on_device(case.X), on_device(case.Y)

    def evaluate(self, case: Case) -> Evaluation:
        """J.backward() once; gradients are the leaves' ``.grad``."""
        params, X, Y = self._tensors(case)
        J, activations = objective(params, X, Y, case.spec)
        J.backward()
        grads = {name: value.grad for name, value in params.items()}
        return Evaluation(
            J.item(), {name: to_numpy(grad) for name, grad in grads.items()},
            [to_numpy(A) for A in activations], dtype_name(grads["W1"].dtype),
        )

    def second_order(self, case: Case, mode: str) -> SecondOrder:
        """Mode ``mode`` of ``SECOND_ORDER`` along ``case.direction``; an op torch cannot
        differentiate that way (its NotImplementedError, or the known defect of mse_loss under
        forward-over-reverse, ``ZERO_TENSOR_DEFECT``) makes the mode Unsupported, with the reason."""
        if mode not in SECOND_ORDER:
            raise GradparityError(f"unknown second-order mode {mode!r}; choose one of {', '.join(SECOND_ORDER)}")
        params, X, Y = self._tensors(case)
        if mode != "double-backward":  # torch.func and dual tensors need no autograd graph
            params = {name: value.detach() for name, value in params.items()}
        direction = {name: torch.tensor(value, device=self.device) for name, value in case.along().items()}
        try:
            return SECOND_ORDER[mode][1](params, direction, X, Y, case.spec)
        except NotImplementedError as error:
            raise Unsupported(f"torch {mode}: {str(error).splitlines()[0]}") from error
        except RuntimeError as error:
            if ZERO_TENSOR_DEFECT not in str(error):
                raise
            raise Unsupported(f"torch {torch.__version__} {mode}: F.mse_loss's forward-mode double backward raises "
                              f"'{ZERO_TENSOR_DEFECT}' (pytorch/pytorch#123996; F.mse_loss(reduction='sum') and "
                              "double-backward are unaffected)") from error

    def train(self, case: Case) -> Trajectory:
        """``training_step`` on each of the case's batches in order; J is recorded before each update."""
        params, _X, _Y = self._tensors(case)
        step = training_step(objective, optimizer(case.training, list(params.values())), params, case.spec)
        costs = [step(X, Y) for X, Y in step_batches(case, lambda array: torch.tensor(array, device=self.device))]
        return Trajectory(
            [J.item() for J in costs], {name: to_numpy(value) for name, value in params.items()},
            dtype_name(params["W1"].dtype),
        )

    def primitives(self) -> Primitives:
        """The operations of ``forward``, ``cost`` and the update step, as source (``PRIMITIVES``)."""
        return PRIMITIVES

    def bench_modes(self) -> dict[str, str | None]:
        """Eager always; compiled is ``torch.compile``, which on the CPU needs a C++ compiler
        (the first timed call compiles, so a broken toolchain fails there)."""
        try:
            from torch._inductor import cpp_builder  # finds the compiler; compiles nothing

            cpp_builder.get_cpp_compiler()
        except Exception as error:  # noqa: BLE001 - any failure means no compiled mode
            return {"eager": None, "compiled": f"torch.compile unavailable: {error}"}
        return {"eager": None, "compiled": None}

    def bench_step(self, case: Case, mode: str) -> Callable[[], None]:
        """One training step; ``compiled`` runs the forward and loss through ``torch.compile``
        (its backward through AOTAutograd) and the optimizer step eagerly."""
        if mode not in ("eager", "compiled"):
            raise GradparityError(f"unknown bench mode {mode!r}; choose eager or compiled")
        params, X, Y = self._tensors(case)
        loss_fn = torch.compile(objective, dynamic=False) if mode == "compiled" else objective
        step = training_step(loss_fn, optimizer(case.training, list(params.values())), params, case.spec)
        synchronize = torch.cuda.synchronize if self.device.type == "cuda" else lambda: None

        def timed() -> None:
            step(X, Y)
            synchronize()

        return timed


def training_step(loss_fn: Callable, optimizer: torch.optim.Optimizer, params: Tensors,
                  spec: NetworkSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A callable (X, Y) -> J doing zero_grad, J = loss on the batch, J.backward(),
    optimizer.step(); J is taken before the update."""

    def step(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad()
        J, _activations = loss_fn(params, X, Y, spec)
        J.backward()
        optimizer.step()
        return J.detach()

    return step


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy copy of ``tensor`` on the host, in the dtype torch computed."""
    return tensor.detach().cpu().numpy()
