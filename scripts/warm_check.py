"""The second ``gradparity.check`` in one process against the first: the first starts every
framework's worker, the later ones reuse those workers and what they compiled (``runner``
keeps them warm). The check is the tutorial's: the example learner function
(``examples/backprop.py``) on the tool's own networks (2-4-1, 2-5-3-1 and 2-6-4-3-1 on the
flower data, the network read from its cost), in float64, against every installed framework.

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from backprop import backprop  # noqa: E402  (examples/ is not a package)

def timed_check() -> float:
    """Wall seconds of one check against every framework; exits when it does not pass or a
    framework did not answer (a fast call that computed nothing would prove nothing)."""
    started = time.perf_counter()
    result = gradparity.check(backprop, backends=None)
    seconds = time.perf_counter() - started
    failed = [f"{network.network}, {name}: {cell['status']} {cell['reason']}" for network in result.networks
              for name, cell in network.corroboration.items() if cell["status"] not in ("pass", "known_deviation")]
    if not result.passed or failed:
        sys.exit("warm_check: the check did not pass everywhere: " + "; ".join(failed or [result.message()]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="later calls timed (default: 3)")
    args = parser.parse_args()
    first = timed_check()
    later = statistics.median(timed_check() for _ in range(args.repeats))
    print(f"first check:  {first:6.2f} s  (starts every framework's worker)")
    print(f"later checks: {later:6.2f} s  (median of {args.repeats}, the warm workers reused)")
    print(f"ratio:        {later / first:6.3f}  (later / first)")


if __name__ == "__main__":
    main()
