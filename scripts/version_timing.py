"""How long a cross-version run takes, from nothing cached and from the cached environment:

    python scripts/version_timing.py [--backends jax==0.4.30,jax] [--repeats 3]

runs ``gradparity run --backends BACKENDS --case seed-2layer --case tf-document`` REPEATS times
in each of three states, each time from a new working folder: ``nothing cached`` (new
gradparity and uv cache folders: uv downloads every package), ``uv's downloads cached`` (a new
gradparity cache folder: the environment is made from uv's cache) and ``environment cached``
(the folder of the first state's run again, its environment ready). Prints the median and the
range of the command's wall seconds and of making the environment in each state, then how far
the versions are apart on the last run (the document's ``versions``)."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRADPARITY = str(Path(sys.executable).with_name("gradparity"))
CASES = ("--case", "seed-2layer", "--case", "tf-document")
READY = re.compile(r"environment ready in ([\d.]+) s")


def timed_run(backends: str, cache: Path, uv_cache: Path, folder: Path) -> tuple[float, float | None, dict]:
    """One run: its wall seconds, the seconds its environment took to make (None: it was
    ready) and its document."""
    environment = {**os.environ, "GRADPARITY_CACHE_DIR": str(cache), "UV_CACHE_DIR": str(uv_cache)}
    started = time.perf_counter()
    done = subprocess.run([GRADPARITY, "run", "--backends", backends, *CASES, "--json", "run.json"], cwd=folder,
                          capture_output=True, text=True, env=environment)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"gradparity run failed ({done.returncode}): {done.stderr.strip()}")
    made = READY.search(done.stderr)
    return seconds, float(made.group(1)) if made else None, json.loads((folder / "run.json").read_text())


def summary(values: list[float]) -> str:
    """``median s (min-max)``."""
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax==0.4.30,jax")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gradparity-versions-") as scratch:
        root = Path(scratch)
        warm_uv = root / "uv-warm"
        states: dict[str, list[tuple[float, float | None, dict]]] = {"nothing cached": [], "uv's downloads cached": [],
                                                                     "environment cached": []}
        for repeat in range(args.repeats):
            cold = root / f"cold-{repeat}"
            for name, cache, uv_cache in (("nothing cached", cold, root / f"uv-{repeat}"),
                                          ("uv's downloads cached", root / f"built-{repeat}", warm_uv),
                                          ("environment cached", cold, warm_uv)):
                folder = Path(tempfile.mkdtemp(dir=root))
                states[name].append(timed_run(args.backends, cache, uv_cache, folder))
    print(f"gradparity run --backends {args.backends} {' '.join(CASES)}: {args.repeats} runs per state, median (range)")
    print("| state | the command | making the environment |")
    print("|---|---|---|")
    for name, runs in states.items():
        made = [seconds for _, seconds, _ in runs if seconds is not None]
        print(f"| {name} | {summary([seconds for seconds, _, _ in runs])} | {summary(made) if made else 'none'} |")
    document = states["environment cached"][-1][2]
    print(f"\nframeworks: {document['environment']['frameworks']}")
    for comparison in document["versions"]:
        identical = [gap["quantity"] for gap in comparison["quantities"] if gap["differing"] == 0]
        worst = max(comparison["quantities"], key=lambda gap: gap["ulps"])
        ops = [op["op"] for op in comparison["ops"] if not op["identical"]]
        print(f"{comparison['case']} {comparison['dtype']}: {len(identical)} of {len(comparison['quantities'])} "
              f"quantities bit-identical; most apart {worst['quantity']} {worst['ulps']:.3g} ulp; "
              f"ops that differ: {', '.join(ops) or 'none'}")


if __name__ == "__main__":
    main()
