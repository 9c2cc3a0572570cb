"""autograd's known deviations from the reference (``gradparity.core.deviations.KnownDeviation``):
each names the op whose probe singles it out, and bounds measured where it shows."""

from __future__ import annotations

from gradparity.core.deviations import KnownDeviation

TIE_SPLIT = (
    "autograd differentiates np.maximum(x, y) at a tie x == y as half a step to each argument "
    "(autograd/numpy/numpy_vjps.py balanced_eq: (x == ans) / (1 + (x == y)), in its VJP and its JVP), so a ReLU "
    "written np.maximum(z, 0), as autograd's examples write it, has derivative 0.5 at z = 0 where the reference, "
    "torch, JAX and TensorFlow take 0: a hidden layer whose pre-activations are exactly 0 passes half of its "
    "gradient back, and its tangents and H V with it."
)
TIE_MEASURED = (
    "each bound is the relative error measured on parity_tests/test_parity.py's zero-logits case (every Z2 and "
    "logit exactly 0), the same in float64 and float32, first order and every second-order mode "
    "(gradparity.engine.run([zero_logits_case(dtype)], RunOptions(backends=['autograd'], order=2))), plus 10%, "
    "rounded up to two digits; db2, trajectory b2, Adot2, HV b2 and HV W3 are exactly 0 in the reference, so any "
    "other value is an infinite relative error (autograd's db2 is -0.25: half of W3^T dZ3 summed over the 8 "
    "examples); quantities it leaves untouched are not covered."
)
REFERENCE_ZERO = float("inf")

DEVIATIONS = (
    KnownDeviation("autograd-relu-tie-split", "autograd", "zero-logits", "*", ("relu_grad",), TIE_SPLIT, TIE_MEASURED,
                   (("db2", REFERENCE_ZERO), ("trajectory cost", 0.11), ("trajectory b2", REFERENCE_ZERO),
                    ("trajectory W3", 0.0049), ("trajectory b3", 0.037), ("Jdot", 0.26), ("Adot2", REFERENCE_ZERO),
                    ("Adot3", 0.26), ("HV b2", REFERENCE_ZERO), ("HV W3", REFERENCE_ZERO), ("HV b3", 0.26))),
)
