"""Time to verdict: ``gradparity run`` on the default catalogue next to its floor, importing
every backend's framework stack in workers two at a time (as the runner schedules them, with
nothing to compute). Both are measured here, in one session, so their ratio holds on any machine.

    python scripts/time_to_verdict.py [--repeats N] [--backends LIST]

A run is timed cold (an empty compilation cache: every program compiled) and then warm
(``--repeats`` more runs reusing the programs the cold run compiled, the median reported);
the import floor is the median of ``--repeats`` measurements. For each, where the workers'
time went (the run's own time line: set-up, compile, compute and probes summed over the
workers), next to the worker time that twice the imports allows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gradparity.backends import REGISTRY, missing_requirement, resolve
from gradparity.reports.digest import time_line
from gradparity.runner import WorkerRun, run_backends, shutdown


PARALLEL = 2  # workers at a time, as ``gradparity run`` schedules them on this 2-core machine


def import_seconds(backends: list[str]) -> float:
    """Wall seconds for workers that only load their backend (framework imports and set-up),
    ``PARALLEL`` at a time; the workers are stopped afterwards, so that each measurement starts them."""
    entries = {name: REGISTRY[name] for name in backends}
    started = time.perf_counter()
    outcomes = run_backends(WorkerRun([], {"threads": 1}, timeout=600, parallel=PARALLEL), entries)
    seconds = time.perf_counter() - started
    shutdown()
    failed = [f"{name}: {outcome.reason}" for name, outcome in outcomes.items() if outcome.status != "ok"]
    if failed:
        sys.exit("time_to_verdict: a backend did not load: " + "; ".join(failed))
    return seconds


def timed_run(backends: list[str], cache: str) -> tuple[float, dict]:
    """Wall seconds of ``gradparity run --backends ...`` (the default catalogue, both dtypes) in
    a fresh process, with ``cache`` as its compilation cache, and the ``run`` section of its document."""
    path = os.path.join(cache, "run.json")
    command = [sys.executable, "-m", "gradparity", "run", "--backends", ",".join(backends), "--json", path]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GRADPARITY_CACHE_DIR": cache})
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"time_to_verdict: gradparity run exited {finished.returncode}:\n{finished.stdout[-2000:]}{finished.stderr[-2000:]}")
    with open(path, encoding="utf-8") as file:
        return seconds, json.load(file)["run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs and import measurements (default: 3)")
    parser.add_argument("--backends", default="all", help="comma-separated backends (default: all installed)")
    args = parser.parse_args()
    backends = [name for name in resolve(args.backends.split(",")) if not missing_requirement(REGISTRY[name])]
    imports = statistics.median(import_seconds(backends) for _ in range(args.repeats))
    with tempfile.TemporaryDirectory(prefix="gradparity-cache-") as cache:
        cold, cold_run = timed_run(backends, cache)
        warm_runs = sorted((timed_run(backends, cache) for _ in range(args.repeats)), key=lambda run: run[0])
    warm, warm_run = warm_runs[len(warm_runs) // 2]
    print(f"backends: {', '.join(backends)} ({PARALLEL} workers at a time)")
    print(f"imports:  {imports:6.1f} s  (median of {args.repeats})")
    print(f"run cold: {cold:6.1f} s  = {cold / imports:.1f}x the imports (every program compiled)")
    print(f"run warm: {warm:6.1f} s  = {warm / imports:.1f}x the imports (median of {args.repeats}, "
          "compiled programs reused)")
    print(f"twice the imports allows {2 * imports:.1f} s wall, {PARALLEL * 2 * imports:.0f} s of worker time; "
          "the workers spent")
    print(f"  cold: {time_line(cold_run)}")
    print(f"  warm: {time_line(warm_run)}")


if __name__ == "__main__":
    main()
