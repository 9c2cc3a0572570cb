"""gradparity: proof that a hand-derived NumPy backprop and the autodiff of JAX, PyTorch,
TensorFlow and Keras compute the same costs and gradients, and a report of how closely.

The public API, for scripts and tests::

    import gradparity

    cases = [gradparity.build_case("seed-2layer", "float64")]
    document = gradparity.run(cases, gradparity.RunOptions(backends=["jax", "torch"]))
    gradparity.write_report(document, "my-report")

Everything else stays importable from its module: ``gradparity.core`` (the reference, network
spec, datasets, cases, comparison maths; NumPy only), ``gradparity.backends`` (one module per
framework), ``gradparity.reports`` (renderers of a result document), and the application
layer here (``cli``, ``engine``, ``runner``, ``bench``).
"""

from gradparity.backends import BackendEntry
from gradparity.core.cases import CATALOGUE, Case, build_case, make_case
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec
from gradparity.core.optimizers import Training
from gradparity.core.reference import initial_params
from gradparity.engine import RunOptions, run
from gradparity.reports import validate_document, write_report

__version__ = "0.1.0"  # the one place of the version: pyproject.toml reads it from here

__all__ = ["CATALOGUE", "BackendEntry", "Case", "GradparityError", "NetworkSpec", "RunOptions", "Training",
           "__version__", "build_case", "initial_params", "make_case", "run", "validate_document", "write_report"]
