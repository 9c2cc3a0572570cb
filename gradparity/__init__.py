"""gradparity: proof that a hand-derived NumPy backprop and the autodiff of JAX, PyTorch,
TensorFlow and Keras compute the same costs and gradients, and a report of how closely.

The public API, for scripts and tests::

    import gradparity

    cases = [gradparity.build_case("seed-2layer", "float64")]
    document = gradparity.run(cases, gradparity.RunOptions(backends=["jax", "torch"]))
    gradparity.write_report(document, "my-report")
    gradparity.shutdown()  # the backends' workers, kept warm for the next run, end now (else at exit)

    # a learner's own backprop(X, Y, parameters) -> (cost, grads), in one line of a pytest test
    gradparity.assert_backprop_matches(backprop, X, Y, parameters, activation="sigmoid", loss="bce")

    # a learner's functions in any of the forms of gradparity.conventions, in a notebook
    gradparity.check(globals())          # the course's L_model_forward/..., the document's forward/...

    # second order by hand (the R-operator): J̇, the tangents Ȧ[l] and H V along a direction V
    case = gradparity.build_case("tanh")
    tangents, hvp = gradparity.hessian_vector_product(case.params, case.X, case.Y, case.spec,
                                                      gradparity.default_direction(case.spec))
    options = gradparity.RunOptions(order=2)   # every framework's second-order modes too
    options = gradparity.RunOptions(executor="ray", ray_address="auto")  # each backend a Ray actor

    gradparity.shutdown()                # end the framework workers kept warm between calls

Everything else stays importable from its module: ``gradparity.core`` (the reference, network
spec, datasets, cases, comparison maths; NumPy only), ``gradparity.backends`` (one module per
framework), ``gradparity.reports`` (renderers of a result document), and the application
layer here (``cli``, ``engine``, ``runner``, ``bench``).
"""

from pkgutil import extend_path

# Started at the repository's root, Python (python -m, -c, pytest) and editors find the
# repository's gradparity/ folder first, and it lacks core/, backends/ and reports/; the installed
# gradparity/ (the tree of links that `make` installs) has them, and this adds it to the folders
# where gradparity.core, gradparity.backends and gradparity.reports are looked for.
__path__ = extend_path(__path__, __name__)

from gradparity.backends import BackendEntry  # noqa: E402  (after __path__, which it needs)
from gradparity.core.cases import CATALOGUE, Case, build_case, make_case
from gradparity.core.errors import GradparityError
from gradparity.core.network import NetworkSpec
from gradparity.core.optimizers import Training
from gradparity.core.reference import initial_params
from gradparity.core.second_order import default_direction, hessian_vector_product
from gradparity.engine import RunOptions, run
from gradparity.learner import BackpropCheck, BackpropError, assert_backprop_matches, check
from gradparity.reports import validate_document, write_report
from gradparity.runner import shutdown

__version__ = "0.1.0"  # the one place of the version: pyproject.toml reads it from here

__all__ = ["CATALOGUE", "BackendEntry", "BackpropCheck", "BackpropError", "Case", "GradparityError", "NetworkSpec",
           "RunOptions", "Training", "__version__", "assert_backprop_matches", "build_case", "check",
           "default_direction", "hessian_vector_product", "initial_params", "make_case", "run", "shutdown",
           "validate_document", "write_report"]
