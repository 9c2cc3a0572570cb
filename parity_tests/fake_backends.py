"""Backends that misbehave on purpose, injected through the API to test isolation and
failure reporting. Each wraps the real reference and breaks one thing."""

from __future__ import annotations

import os
import time

import numpy as np

from gradparity.backends.numpy import Adapter as ReferenceAdapter


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


class BrokenImport:
    def __init__(self, *args, **kwargs):
        raise ImportError("this framework failed to import on purpose")


