"""Backends that misbehave on purpose, injected through the API to test isolation and
failure reporting. Each wraps the real reference and breaks one thing."""

from __future__ import annotations

import ctypes
import os
import resource
import time

import numpy as np

from gradparity.backends.numpy import Adapter as NumpyAdapter


class ReferenceAdapter(NumpyAdapter):
    """The reference as an injected framework (not the numpy control), to be broken below."""

    role = "framework"


class WrongGradient(ReferenceAdapter):
    """Scales dW1 by (1 + 1e-6): a bug every check of dW1 must catch."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.gradients["W1"] = evaluation.gradients["W1"] * (1 + 1e-6)
        return evaluation


class SilentFloat32(ReferenceAdapter):
    """Computes in float32 whatever dtype was asked, as Keras on JAX without x64 does."""

    def evaluate(self, case):
        from dataclasses import replace

        cast = {name: value.astype(np.float32) for name, value in case.params.items()}
        return super().evaluate(replace(case, X=case.X.astype(np.float32), Y=case.Y.astype(np.float32), params=cast))


class Crash(ReferenceAdapter):
    """Kills its own process in the middle of the first case."""

    def evaluate(self, case):
        os._exit(3)


class Segfault(ReferenceAdapter):
    """Reads address 0 in the middle of the first case, as a crash in native code does."""

    def evaluate(self, case):
        ctypes.string_at(0)


class Hang(ReferenceAdapter):
    """Never answers."""

    def evaluate(self, case):
        time.sleep(3600)


class Raises(ReferenceAdapter):
    """Raises on the case named 'single-example' only."""

    def evaluate(self, case):
        if case.name == "single-example":
            raise RuntimeError("boom on purpose")
        return super().evaluate(case)


class TellsItsProcess(ReferenceAdapter):
    """Writes its process id to the file ``$GRADPARITY_TEST_PID_FILE`` when it is loaded, so that
    a test can kill that process from outside, as a lost node would."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with open(os.environ["GRADPARITY_TEST_PID_FILE"], "w") as handle:
            handle.write(str(os.getpid()))


class DiesWhenLoaded:
    """Kills its own process while it is being loaded: a backend that can never start."""

    def __init__(self, *args, **kwargs):
        os._exit(3)


class BrokenImport:
    def __init__(self, *args, **kwargs):
        raise ImportError("this framework failed to import on purpose")




def float32_dot(a, b):
    """np.dot through float32, returned in the inputs' dtype: a silent, unregistered downcast."""
    return np.matmul(np.asarray(a, np.float32), np.asarray(b, np.float32)).astype(np.result_type(a, b))


class Float32Matmul(ReferenceAdapter):
    """The reference with every matrix product in float32 (np.dot replaced in its own worker)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        np.dot = float32_dot


class MissingGradient(ReferenceAdapter):
    """Returns no db2."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        del evaluation.gradients["b2"]
        return evaluation


class MissingTrajectoryParameter(ReferenceAdapter):
    """Its trajectory lacks W1."""

    def train(self, case):
        trajectory = super().train(case)
        del trajectory.params["W1"]
        return trajectory


class NoActivations(ReferenceAdapter):
    """Claims activations but returns none."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.activations = []
        return evaluation


class FirstActivationOnly(ReferenceAdapter):
    """Returns A1 alone."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.activations = evaluation.activations[:1]
        return evaluation


class NoTrajectory(ReferenceAdapter):
    """Claims a trajectory but returns None."""

    def train(self, case):
        return None


class EmptyArrays(ReferenceAdapter):
    """Returns empty arrays for every gradient."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.gradients = {name: np.empty((0,)) for name in evaluation.gradients}
        return evaluation


class MaskedFloat32(ReferenceAdapter):
    """float32 gradients with a mask marking every entry computed, in whatever dtype was asked."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.gradients = {name: value.astype(np.float32) for name, value in evaluation.gradients.items()}
        evaluation.checked = {name: np.ones(value.shape, bool) for name, value in evaluation.gradients.items()}
        return evaluation


class EmptyMask(ReferenceAdapter):
    """Marks no gradient entry as computed."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        evaluation.checked = {name: np.zeros(value.shape, bool) for name, value in evaluation.gradients.items()}
        return evaluation


class NotAnEvaluation(ReferenceAdapter):
    """Answers with a tuple instead of an Evaluation: comparing it raises."""

    def evaluate(self, case):
        evaluation = super().evaluate(case)
        return (evaluation.cost, evaluation.gradients)


class Noisy(ReferenceAdapter):
    """Logs to file descriptor 2 as a framework's C++ code does, then raises on every case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        os.write(2, b"I0000 00:00:1 cpu_feature_guard.cc:210] a framework's C++ log line\n")

    def evaluate(self, case):
        raise RuntimeError("noisy and broken on purpose")


class SgdOnly(ReferenceAdapter):
    """An adapter whose framework has plain gradient descent only (the contract's default)."""

    optimizers = {"sgd": "sgd"}


class AlgorithmOneAdam(ReferenceAdapter):
    """Runs Kingma & Ba's Algorithm 1 whichever Adam is asked, and says so."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam", "adam-hat": "adam"}

    def train(self, case):
        from dataclasses import replace

        forms = {"adam-hat": "adam"}
        return super().train(replace(case, training=case.training.in_form(
            forms.get(case.training.optimizer, case.training.optimizer))))


class MislabelledAdam(AlgorithmOneAdam):
    """Runs Algorithm 1 but claims the efficient form: its trajectory must part from the reference's."""

    optimizers = {"sgd": "sgd", "momentum": "momentum", "adam": "adam", "adam-hat": "adam-hat"}


class ImportsOptionally(ReferenceAdapter):
    """Imports scikit-learn when it can, as Keras does, and says in its flags whether it could."""

    def flags(self):
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return {"sklearn": "hidden"}
        return {"sklearn": "imported"}


def refaulted_pages(nbytes: int = 64 * 2**20) -> tuple[int, int]:
    """(minor page faults, pages) of a block of ``nbytes`` filled by C's malloc and memset just
    after one of the same size was filled and freed: 0 faults when the freed memory is reused."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    faults = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(nbytes)
        ctypes.memset(block, 1, nbytes)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        libc.free(block)
    return faults[1], nbytes // resource.getpagesize()


class CountsRefaults(ReferenceAdapter):
    """Says in its flags how many pages of a freed and reallocated block were faulted in afresh."""

    def flags(self):
        refaulted, pages = refaulted_pages()
        return {"refaulted_pages": str(refaulted), "pages": str(pages)}


class SaysWhichCase(ReferenceAdapter):
    """Writes the case's name to its output (as a framework's logging does), then dies on the
    case named 'single-example' only."""

    def evaluate(self, case):
        os.write(2, f"serving {case.name}\n".encode())
        if case.name == "single-example":
            os._exit(3)
        return super().evaluate(case)


class SecondOrderModes(ReferenceAdapter):
    """Second-order modes broken one way each: ``right`` is the R-operator itself, ``zeros``
    answers H V = 0, ``gradient`` answers the gradient for H V (a first-order quantity),
    ``float32`` computes its tangents in float32, ``raises`` raises, ``absent`` is a mode the
    framework lacks here, ``no-tangents`` computes tangents but returns none, ``nudged`` scales
    H V's W1 block by 1 + 1e-9 (a bug the float64 tolerance must catch)."""

    second_order_modes = {"right": ("tangents", "hvp"), "zeros": ("hvp",), "gradient": ("hvp",),
                          "float32": ("tangents",), "raises": ("hvp",), "absent": ("hvp",), "no-tangents": ("tangents",), "nudged": ("hvp",)}

    def second_order(self, case, mode):
        from dataclasses import replace

        from gradparity.backends.contract import SecondOrder, Unsupported

        if mode == "raises":
            raise RuntimeError("second order on purpose")
        if mode == "absent":
            raise Unsupported("this framework has no such mode here")
        if mode == "float32":
            cast = lambda array: array.astype(np.float32)  # noqa: E731
            case = replace(case, X=cast(case.X), Y=cast(case.Y), params={k: cast(v) for k, v in case.params.items()},
                           direction={k: cast(v) for k, v in case.direction.items()})
        answer = super().second_order(case, "r-operator")
        if mode == "zeros":
            return SecondOrder(hvp={name: np.zeros_like(value) for name, value in answer.hvp.items()})
        if mode == "gradient":
            return SecondOrder(hvp=self.evaluate(case).gradients)
        if mode == "no-tangents":
            return SecondOrder()
        if mode == "nudged":
            answer.hvp["W1"] = answer.hvp["W1"] * (1 + 1e-9)
        return answer
