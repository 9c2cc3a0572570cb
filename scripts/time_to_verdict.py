"""Time to verdict: ``gradparity run`` on the default catalogue next to its floor, importing
every backend's framework stack in workers two at a time (as the runner schedules them, with
nothing to compute). Both are measured here, in one session, so their ratio holds on any machine.

    python scripts/time_to_verdict.py [--repeats N] [--backends LIST]

A run is timed cold (an empty compilation cache: every program compiled) and then warm
(``--repeats`` more runs reusing the programs the cold run compiled, the median reported);
the import floor is the median of ``--repeats`` measurements.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gradparity.backends import REGISTRY, missing_requirement, resolve
from gradparity.runner import run_backends


def import_seconds(backends: list[str], parallel: int = 2) -> float:
    """Wall seconds for workers that only load their backend (framework imports and set-up),
    ``parallel`` at a time."""
    entries = {name: REGISTRY[name] for name in backends}
    started = time.perf_counter()
    outcomes = run_backends([], entries, {"threads": 1}, timeout=600, parallel=parallel)
    failed = [f"{name}: {outcome.reason}" for name, outcome in outcomes.items() if outcome.status != "ok"]
    if failed:
        sys.exit("time_to_verdict: a backend did not load: " + "; ".join(failed))
    return time.perf_counter() - started


def run_seconds(backends: list[str], cache: str) -> float:
    """Wall seconds of ``gradparity run --backends ...`` (the default catalogue, both dtypes) in
    a fresh process, with ``cache`` as its compilation cache."""
    command = [sys.executable, "-m", "gradparity", "run", "--backends", ",".join(backends)]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GRADPARITY_CACHE_DIR": cache})
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"time_to_verdict: gradparity run exited {finished.returncode}:\n{finished.stdout[-2000:]}{finished.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs and import measurements (default: 3)")
    parser.add_argument("--backends", default="all", help="comma-separated backends (default: all installed)")
    args = parser.parse_args()
    backends = [name for name in resolve(args.backends.split(",")) if not missing_requirement(REGISTRY[name])]
    imports = statistics.median(import_seconds(backends) for _ in range(args.repeats))
    with tempfile.TemporaryDirectory(prefix="gradparity-cache-") as cache:
        cold = run_seconds(backends, cache)
        warm = statistics.median(run_seconds(backends, cache) for _ in range(args.repeats))
    print(f"backends: {', '.join(backends)} (2 workers at a time)")
    print(f"imports:  {imports:6.1f} s  (median of {args.repeats})")
    print(f"run cold: {cold:6.1f} s  = {cold / imports:.1f}x the imports (every program compiled)")
    print(f"run warm: {warm:6.1f} s  = {warm / imports:.1f}x the imports (median of {args.repeats}, "
          "compiled programs reused)")


if __name__ == "__main__":
    main()
