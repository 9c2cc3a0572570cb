"""The second ``gradparity.check`` in one process against the first: the first starts every
framework's worker, the later ones reuse those workers and what they compiled (``runner``
keeps them warm). The check is the README's: the example learner function
(``examples/backprop.py``) on the flower data and the document's 2-4-1 sigmoid network, in
float64, against every installed framework.

    python scripts/warm_check.py [--repeats N]

Prints the first call's wall seconds, the median of ``--repeats`` later calls and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gradparity
from gradparity.core.datasets import load_dataset
from gradparity.core.network import NetworkSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from backprop import backprop  # noqa: E402  (examples/ is not a package)

SPEC = NetworkSpec((2, 4, 1), "sigmoid", "bce")


def timed_check(X, Y, parameters: dict) -> float:
    """Wall seconds of one check against every framework; exits when it does not pass or a
    framework did not answer (a fast call that computed nothing would prove nothing)."""
    started = time.perf_counter()
    result = gradparity.check(backprop, X, Y, parameters, activation="sigmoid", loss="bce", backends=None)
    seconds = time.perf_counter() - started
    failed = [f"{name}: {cell['status']} {cell['reason']}" for name, cell in result.corroboration.items()
              if cell["status"] not in ("pass", "known_deviation")]
    if not result.passed or failed:
        sys.exit("warm_check: the check did not pass everywhere: " + "; ".join(failed or [result.message()]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="later calls timed (default: 3)")
    args = parser.parse_args()
    X, Y = load_dataset("flower")
    parameters = gradparity.initial_params(SPEC)
    first = timed_check(X, Y, parameters)
    later = statistics.median(timed_check(X, Y, parameters) for _ in range(args.repeats))
    print(f"first check:  {first:6.2f} s  (starts every framework's worker)")
    print(f"later checks: {later:6.2f} s  (median of {args.repeats}, the warm workers reused)")
    print(f"ratio:        {later / first:6.3f}  (later / first)")


if __name__ == "__main__":
    main()
